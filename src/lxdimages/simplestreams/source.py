"""Reading a simplestreams image server (``https://``) or a local tree."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import httpx

from ..exceptions import ClientConnectionFailed, InvalidStream, SimplestreamsError
from ..progress import ProgressCallback, ProgressMeter
from ..streams import CHUNK_SIZE, VerifiedWriter
from ..transport import DEFAULT_TIMEOUT, TLSVerify, ssl_context
from .model import (
    INDEX_PATH,
    ImageType,
    StreamImage,
    images_of,
    load_json,
    parse_index,
    parse_products,
    resolve,
)

if TYPE_CHECKING:
    from ..client import Client
    from ..images import Image
    from ..operations import Operation

__all__ = ["SimplestreamsSource"]


class SimplestreamsSource:
    """A simplestreams image server: list, resolve, download and relay its images.

    ``location`` is an ``https://`` URL (``verify`` as for ``Client``: ``True``,
    a CA or pinned certificate file, or ``False``) or a local tree's directory.
    """

    def __init__(
        self,
        location: str | os.PathLike[str],
        *,
        verify: TLSVerify = True,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        text = os.fspath(location)
        self._http: httpx.Client | None = None
        self.root: Path | None = None
        if text.startswith(("https://", "http://")):
            self.url = text.rstrip("/")
            transport = httpx.HTTPTransport(
                verify=ssl_context(verify, None) if text.startswith("https://") else False
            )
            self._http = httpx.Client(transport=transport, timeout=timeout, trust_env=False)
        else:
            self.root = Path(text)
            self.url = self.root.resolve().as_uri()
        self._images: list[StreamImage] | None = None

    def __repr__(self) -> str:
        return f"<SimplestreamsSource {self.url}>"

    def __enter__(self) -> SimplestreamsSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    # -- raw files ------------------------------------------------------------

    @contextmanager
    def open(self, path: str, offset: int = 0) -> Iterator[Iterator[bytes]]:
        """The bytes of ``path`` (relative to the server's root), from ``offset``, streamed."""
        if ".." in Path(path).parts or path.startswith("/"):
            raise InvalidStream(f"the index names a path outside the tree: {path!r}")
        if self.root is not None:
            try:
                handle = (self.root / path).open("rb")
            except FileNotFoundError:
                raise InvalidStream(f"{self.url}: {path} is missing from the tree") from None
            with handle:
                handle.seek(offset)
                yield iter(lambda: handle.read(CHUNK_SIZE), b"")
            return
        assert self._http is not None
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        url = f"{self.url}/{path}"
        try:
            with self._http.stream("GET", url, headers=headers) as response:
                if response.status_code == 404:
                    raise InvalidStream(f"{url}: the index names a file the server does not have")
                if response.status_code >= 400:
                    raise SimplestreamsError(f"{url}: HTTP {response.status_code}")
                if offset and response.status_code != 206:
                    raise SimplestreamsError(
                        f"{url}: the server does not resume (no Range support)"
                    )
                yield response.iter_bytes(CHUNK_SIZE)
        except httpx.TransportError as error:
            raise ClientConnectionFailed(f"cannot fetch {url}: {error}") from error

    def read(self, path: str) -> bytes:
        with self.open(path) as chunks:
            return b"".join(chunks)

    # -- images ---------------------------------------------------------------

    def products(self) -> dict[str, Any]:
        """The raw products of every products file the index names, merged."""
        merged: dict[str, Any] = {}
        for path in parse_index(self.read(INDEX_PATH)):
            data = self.read(path)
            parse_products(data, path)  # validates before anything is used
            merged.update(load_json(data, path)["products"])
        return merged

    def images(self, *, refresh: bool = False) -> list[StreamImage]:
        """Every image the server offers (read once, then cached; ``refresh`` re-reads)."""
        if self._images is None or refresh:
            self._images = images_of(self.products())
        return self._images

    def get(
        self,
        name: str,
        *,
        architecture: str | None = None,
        image_type: ImageType = "container",
    ) -> StreamImage:
        """The image an alias or fingerprint (prefix) names, resolved as a daemon would."""
        return resolve(self.images(), name, architecture=architecture, image_type=image_type)

    def export_to(self, image: StreamImage, directory: str | os.PathLike[str]) -> list[Path]:
        """Download the image's files into ``directory``, verified, all or nothing."""
        writer = VerifiedWriter(directory, image.fingerprint)
        try:
            for file in image.files:
                with self.open(file.path) as chunks:
                    writer.write(file.name, chunks)
            return writer.commit(f"{self.url} {image.fingerprint}")
        finally:
            writer.discard()

    @overload
    def copy(
        self,
        image: StreamImage,
        client: Client,
        *,
        public: bool = ...,
        aliases: Sequence[str] = ...,
        wait: Literal[True] = ...,
        progress: ProgressCallback | None = ...,
    ) -> Image: ...

    @overload
    def copy(
        self,
        image: StreamImage,
        client: Client,
        *,
        public: bool = ...,
        aliases: Sequence[str] = ...,
        wait: Literal[False],
        progress: ProgressCallback | None = ...,
    ) -> Operation[Image]: ...

    def copy(
        self,
        image: StreamImage,
        client: Client,
        *,
        public: bool = False,
        aliases: Sequence[str] = (),
        wait: bool = True,
        progress: ProgressCallback | None = None,
    ) -> Image | Operation[Image]:
        """Relay the image into a daemon through this process, for daemons that
        cannot reach the server themselves. The daemon's fingerprint must equal
        the server's.
        """
        alias_list = [{"name": name, "description": ""} for name in aliases]
        client.images._check_aliases_free(list(aliases))
        meter = ProgressMeter(progress, "relay", image.size)
        with ExitStack() as files:
            metadata = meter.count(files.enter_context(self.open(image.metadata.path)))
            rootfs = None
            if image.rootfs is not None:
                rootfs = meter.count(files.enter_context(self.open(image.rootfs.path)))
            operation = client.images._relay_in(
                metadata,
                rootfs,
                image_type=image.type,
                fingerprint=image.fingerprint,
                filename=(image.rootfs or image.metadata).name,
                length=image.metadata.size,
                public=public,
                aliases=alias_list,
            )
        meter.finish()
        return operation.wait(progress=progress) if wait else operation
