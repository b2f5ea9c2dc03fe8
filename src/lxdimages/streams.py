"""Moving image bytes without holding them: upload readers, export parts, verified files.

An image is read and written in chunks; sha256 runs over the bytes as they pass,
so verification costs no second pass and no memory.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from queue import Queue
from typing import IO, Any

from python_multipart.multipart import MultipartParser, parse_options_header

from .exceptions import FingerprintMismatch

__all__ = [
    "CHUNK_SIZE",
    "BackgroundHash",
    "ChunkReader",
    "ExportPart",
    "ImageData",
    "VerifiedWriter",
    "iter_export_parts",
    "safe_filename",
]

CHUNK_SIZE = 1024 * 1024

#: What ``create`` takes as image data: bytes, a path, or a binary file object.
ImageData = bytes | str | os.PathLike[str] | IO[bytes]


class BackgroundHash:
    """A sha256 computed on its own thread while the caller moves the bytes.

    hashlib releases the GIL on buffers over 2 KiB, so hashing runs on another
    core beside the caller's socket and file I/O instead of after it. At most
    ``depth`` chunks wait for the hasher, which bounds the memory it holds.
    """

    def __init__(self, start: Any | None = None, depth: int = 4) -> None:
        self._hash = start if start is not None else hashlib.sha256()
        self._queue: Queue[list[bytes] | None] = Queue(maxsize=depth)
        # Chunks are handed over in batches of about a MiB: one thread hand-off
        # per 64 KiB socket read would cost more than the hashing saves.
        self._batch: list[bytes] = []
        self._batched = 0
        self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            for chunk in batch:
                self._hash.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._batch.append(chunk)
        self._batched += len(chunk)
        if self._batched >= CHUNK_SIZE:
            self._queue.put(self._batch)
            self._batch, self._batched = [], 0

    def close(self) -> None:
        """Stop the thread (idempotent); the hash then holds every chunk given."""
        if self._thread.is_alive():
            if self._batch:
                self._queue.put(self._batch)
                self._batch, self._batched = [], 0
            self._queue.put(None)
            self._thread.join()

    def hexdigest(self) -> str:
        self.close()
        return str(self._hash.hexdigest())

    def copy(self) -> Any:
        """A hashlib object holding the hash so far (e.g. to start a combined hash)."""
        self.close()
        return self._hash.copy()


class ChunkReader:
    """A read-only binary file over an iterator of chunks, counted into a running hash.

    HTTP libraries read request bodies through ``read(n)``; this hands them the
    source's chunks without copying them together, and never seeks.
    """

    def __init__(self, chunks: Iterable[bytes], hasher: Any | None = None) -> None:
        self._chunks = iter(chunks)
        self._pending = b""
        self._hasher = hasher

    def read(self, size: int = -1) -> bytes:
        data = self._pending or next(self._chunks, b"")
        self._pending = b""
        if size >= 0 and len(data) > max(size, CHUNK_SIZE):
            data, self._pending = data[:CHUNK_SIZE], data[CHUNK_SIZE:]
        if data and self._hasher is not None:
            self._hasher.update(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK_SIZE):
            yield chunk


def iter_source(data: ImageData) -> tuple[Iterator[bytes], str | None, int | None]:
    """Chunks of ``data``, its file name when it is a path, and its length when known."""
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        chunks = (bytes(view[i : i + CHUNK_SIZE]) for i in range(0, len(view), CHUNK_SIZE))
        return chunks, None, len(view)
    if isinstance(data, str | os.PathLike):
        path = Path(data)
        return _iter_path(path), path.name, path.stat().st_size
    name = getattr(data, "name", None)
    size = None
    with suppress(AttributeError, OSError, ValueError):
        size = os.fstat(data.fileno()).st_size - data.tell()
    filename = Path(name).name if isinstance(name, str) else None
    return _iter_fileobj(data), filename, size


def _iter_path(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from _iter_fileobj(handle)


def _iter_fileobj(handle: IO[bytes]) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK_SIZE):
        yield chunk


@dataclass
class ExportPart:
    """One part of a split image's export: its form name, file name and bytes."""

    name: str
    filename: str
    chunks: Iterator[bytes]


def iter_export_parts(content_type: str, chunks: Iterable[bytes]) -> Iterator[ExportPart]:
    """Split a ``multipart/form-data`` export into its parts, streaming.

    Each part's ``chunks`` must be consumed before the next part is asked for.
    """
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise ValueError(f"multipart export without a boundary: {content_type!r}")
    events: deque[tuple[str, Any]] = deque()
    headers: dict[bytes, bytes] = {}
    header: list[bytes] = [b"", b""]

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def on_header_end() -> None:
        headers[header[0].strip().lower()] = header[1].strip()
        header[0] = header[1] = b""

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        events.append(
            (
                "begin",
                (
                    disposition.get(b"name", b"").decode(),
                    disposition.get(b"filename", b"").decode(),
                ),
            )
        )
        headers.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        events.append(("data", data[start:end]))

    def on_part_end() -> None:
        events.append(("end", None))

    parser = MultipartParser(
        boundary,
        callbacks={
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    source = iter(chunks)

    def next_event() -> tuple[str, Any] | None:
        while not events:
            chunk = next(source, None)
            if chunk is None:
                parser.finalize()
                return events.popleft() if events else None
            parser.write(chunk)
        return events.popleft()

    def part_data() -> Iterator[bytes]:
        while (event := next_event()) is not None and event[0] == "data":
            yield event[1]

    while (event := next_event()) is not None:
        if event[0] == "begin":
            name, filename = event[1]
            yield ExportPart(name, filename, part_data())


def safe_filename(name: str, fallback: str) -> str:
    """A file name from a server, reduced to a plain name inside the target directory."""
    base = Path(name.replace("\\", "/")).name
    return base if base not in ("", ".", "..") else fallback


class VerifiedWriter:
    """Write files into a directory, all or nothing, checking one sha256 over them all.

    Each file is written under a temporary name beside its target and renamed into
    place only once every file is written and the hash matches; on any failure all
    temporary files are removed, so no partial image is ever left behind.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        expected_sha256: str,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.expected = expected_sha256.lower()
        self.hasher = BackgroundHash()
        self._progress = progress
        self._pending: list[tuple[Path, Path]] = []

    def write(self, filename: str, chunks: Iterable[bytes]) -> None:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (renamed in commit)
            dir=self.directory, prefix=f".{filename}.", suffix=".partial", delete=False
        )
        self._pending.append((Path(handle.name), self.directory / filename))
        with handle:
            for chunk in chunks:
                self.hasher.update(chunk)
                handle.write(chunk)
                if self._progress is not None:
                    self._progress(len(chunk))

    def commit(self, what: str) -> list[Path]:
        """Check the hash, then move every file into place; return their paths."""
        actual = self.hasher.hexdigest()
        if actual != self.expected:
            raise FingerprintMismatch(self.expected, actual, what)
        for temporary, final in self._pending:
            os.replace(temporary, final)
        return [final for _, final in self._pending]

    def discard(self) -> None:
        self.hasher.close()
        for temporary, _ in self._pending:
            with suppress(FileNotFoundError):
                temporary.unlink()
        self._pending.clear()
