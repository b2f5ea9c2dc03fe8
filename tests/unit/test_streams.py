"""Streaming helpers: multipart export parsing, verified writes, safe names."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lxdimages.exceptions import FingerprintMismatch
from lxdimages.streams import (
    ChunkReader,
    VerifiedWriter,
    iter_export_parts,
    iter_source,
    safe_filename,
)


def multipart(boundary: str, parts: list[tuple[str, str, bytes]]) -> bytes:
    body = b""
    for name, filename, data in parts:
        body += (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_export_parts_streamed_in_any_chunking(chunk: int) -> None:
    meta, rootfs = b"M" * 1000, bytes(range(256)) * 40
    body = multipart("xyz", [("metadata", "meta-f.tar.xz", meta), ("rootfs", "f.squashfs", rootfs)])
    chunks = (body[i : i + chunk] for i in range(0, len(body), chunk))
    got = [
        (part.name, part.filename, b"".join(part.chunks))
        for part in iter_export_parts("multipart/form-data; boundary=xyz", chunks)
    ]
    assert got == [("metadata", "meta-f.tar.xz", meta), ("rootfs", "f.squashfs", rootfs)]


def test_export_parts_needs_a_boundary() -> None:
    with pytest.raises(ValueError, match="boundary"):
        list(iter_export_parts("multipart/form-data", iter([b""])))


def test_chunk_reader_hashes_what_passes() -> None:
    digest = hashlib.sha256()
    reader = ChunkReader(iter([b"abc", b"", b"def"]), digest)
    assert b"".join(reader) == b"abc"  # an empty chunk ends the stream, like EOF
    assert digest.hexdigest() == hashlib.sha256(b"abc").hexdigest()


def test_iter_source_kinds(tmp_path: Path) -> None:
    path = tmp_path / "img.tar.gz"
    path.write_bytes(b"x" * 3000)
    chunks, name, size = iter_source(path)
    assert (b"".join(chunks), name, size) == (b"x" * 3000, "img.tar.gz", 3000)
    chunks, name, size = iter_source(b"abc")
    assert (b"".join(chunks), name, size) == (b"abc", None, 3)
    with path.open("rb") as handle:
        handle.read(1000)
        chunks, name, size = iter_source(handle)
        assert (len(b"".join(chunks)), name, size) == (2000, "img.tar.gz", 2000)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("meta-abc.tar.gz", "meta-abc.tar.gz"),
        ("../../etc/passwd", "passwd"),
        ("/abs/path/x.squashfs", "x.squashfs"),
        ("..\\..\\evil", "evil"),
        ("..", "fallback"),
        ("", "fallback"),
    ],
)
def test_safe_filename(given: str, expected: str) -> None:
    assert safe_filename(given, "fallback") == expected


def test_verified_writer_commits_only_a_match(tmp_path: Path) -> None:
    good = hashlib.sha256(b"onetwo").hexdigest()
    writer = VerifiedWriter(tmp_path, good)
    writer.write("a", [b"one"])
    writer.write("b", [b"two"])
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == []
    paths = writer.commit("test")
    assert [p.read_bytes() for p in paths] == [b"one", b"two"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_verified_writer_leaves_nothing_on_mismatch(tmp_path: Path) -> None:
    writer = VerifiedWriter(tmp_path, "0" * 64)
    writer.write("a", [b"data"])
    with pytest.raises(FingerprintMismatch):
        writer.commit("test")
    writer.discard()
    assert list(tmp_path.iterdir()) == []
