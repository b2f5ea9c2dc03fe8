"""Images: ``client.images`` and the ``Image`` objects it returns."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, overload

from python_multipart.multipart import parse_options_header

from . import exceptions as exc
from .operations import Operation
from .progress import ProgressCallback, ProgressMeter
from .protocol import (
    API,
    ApiRequest,
    format_timestamp,
    image_path,
    image_post,
    image_put_body,
    parse_timestamp,
    remote_image_source,
    rootfs_part_name,
    upload_headers,
)
from .streams import (
    BackgroundHash,
    ChunkReader,
    ImageData,
    VerifiedWriter,
    iter_export_parts,
    iter_source,
    safe_filename,
)

if TYPE_CHECKING:
    import httpx

    from .client import Client

__all__ = ["CopyMode", "Image", "ImageManager"]

CopyMode = Literal["auto", "pull", "relay"]


class Image:
    """One image on a daemon, with the attributes the daemon reports.

    Writable attributes (``public``, ``auto_update``, ``properties``, ``expires_at``,
    ``profiles``) are changed on the object and persisted with ``save()``.
    """

    def __init__(self, client: Client, record: Mapping[str, Any]) -> None:
        self.client = client
        self._load(record)

    def _load(self, record: Mapping[str, Any]) -> None:
        self._record = dict(record)
        self.fingerprint: str = str(record.get("fingerprint", ""))
        self.aliases: list[dict[str, str]] = [dict(a) for a in record.get("aliases") or []]
        self.architecture: str = str(record.get("architecture", ""))
        self.auto_update: bool = bool(record.get("auto_update", False))
        self.cached: bool = bool(record.get("cached", False))
        self.filename: str = str(record.get("filename") or "")
        self.properties: dict[str, str] = dict(record.get("properties") or {})
        self.public: bool = bool(record.get("public", False))
        self.size: int = int(record.get("size") or 0)
        self.type: str = str(record.get("type") or "container")
        self.profiles: list[str] = list(record.get("profiles") or [])
        self.project: str = str(record.get("project") or self.client.project or "default")
        self.update_source: dict[str, Any] | None = (
            dict(record["update_source"]) if record.get("update_source") else None
        )
        self.created_at: datetime | None = parse_timestamp(record.get("created_at"))
        self.expires_at: datetime | None = parse_timestamp(record.get("expires_at"))
        self.last_used_at: datetime | None = parse_timestamp(record.get("last_used_at"))
        self.uploaded_at: datetime | None = parse_timestamp(record.get("uploaded_at"))

    def __repr__(self) -> str:
        names = ",".join(a["name"] for a in self.aliases)
        return f"<Image {self.fingerprint[:12]} {self.type} aliases=[{names}]>"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Image)
            and other.fingerprint == self.fingerprint
            and other.client is self.client
        )

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    @property
    def path(self) -> str:
        return image_path(self.fingerprint)

    def _writable(self) -> dict[str, Any]:
        return {
            "public": self.public,
            "auto_update": self.auto_update,
            "properties": dict(self.properties),
            "expires_at": format_timestamp(self.expires_at),
            "profiles": list(self.profiles),
        }

    def sync(self) -> Image:
        """Re-read the image from the daemon, dropping unsaved changes."""
        self._load(self.client.request(ApiRequest("GET", self.path)).metadata)
        return self

    def save(self) -> None:
        """Persist the writable attributes.

        If the image changed on the daemon since this object read it, nothing is
        written and ``Conflict`` is raised; the write itself carries the ETag, so a
        change that lands between the check and the write is a conflict too.
        """
        envelope = self.client.request(ApiRequest("GET", self.path))
        current = image_put_body(envelope.metadata)
        if _normalised(current) != _normalised(image_put_body(self._record)):
            raise exc.Conflict(
                f"image {self.fingerprint} changed on the daemon since it was read",
                412,
                request=f"PUT {self.path}",
            )
        headers = {"If-Match": envelope.etag} if envelope.etag else {}
        self.client.request(ApiRequest("PUT", self.path, json=self._writable(), headers=headers))
        self.sync()

    # -- aliases ----------------------------------------------------------------

    def add_alias(self, name: str, description: str = "") -> None:
        """Create the alias ``name`` for this image; ``Conflict`` if it exists."""
        self.client.aliases.create(name, self.fingerprint, description)
        self.aliases.append({"name": name, "description": description})

    def delete_alias(self, name: str) -> None:
        """Delete the alias ``name``, which must point at this image (else ``NotFound``)."""
        alias = self.client.aliases.get(name)
        if alias.target != self.fingerprint:
            raise exc.NotFound(
                f"alias {name!r} points at {alias.target}, not at this image",
                404,
                request=f"DELETE {API}/images/aliases/{name}",
            )
        self.client.aliases.delete(name)
        self.aliases = [a for a in self.aliases if a["name"] != name]

    # -- export -----------------------------------------------------------------

    def _export_request(self) -> ApiRequest:
        return ApiRequest("GET", self.path + "/export")

    @contextmanager
    def _exported_files(
        self, progress: ProgressCallback | None
    ) -> Iterator[Iterator[tuple[str, Iterator[bytes]]]]:
        """The export as ``(file name, chunks)`` pairs, in fingerprint order, counted."""
        meter = ProgressMeter(progress, "export", self.size or None)
        with self.client.stream(self._export_request()) as response:
            # iter_raw: the daemons send exports uncompressed, and the raw stream
            # is twice as fast as re-chunked bytes.
            chunks = meter.count(response.iter_raw())
            if _is_multipart(response):
                parts = iter_export_parts(response.headers["content-type"], chunks)
                yield (
                    (safe_filename(part.filename, f"{part.name}-{self.fingerprint}"), part.chunks)
                    for part in parts
                )
            else:
                name = safe_filename(_disposition_filename(response), f"{self.fingerprint}.tar.gz")
                yield iter([(name, chunks)])
        meter.finish()

    def export(self, *, progress: ProgressCallback | None = None) -> IO[bytes]:
        """The image's tarball as a binary file object, positioned at its start.

        The bytes are streamed to an anonymous temporary file (never held in
        memory) and checked against the fingerprint before the file is returned.
        A split image is two files, which one file object cannot faithfully hold:
        for it ``SplitImageError`` is raised; use ``export_to``.
        """
        handle = tempfile.TemporaryFile()  # noqa: SIM115 (returned to the caller)
        hasher = BackgroundHash()
        try:
            with self._exported_files(progress) as files:
                for count, (_, chunks) in enumerate(files):
                    if count:
                        raise exc.SplitImageError(
                            f"image {self.fingerprint} is a split image (metadata + rootfs); "
                            "use export_to(directory) to get both files"
                        )
                    for chunk in chunks:
                        hasher.update(chunk)
                        handle.write(chunk)
            if hasher.hexdigest() != self.fingerprint:
                raise exc.FingerprintMismatch(
                    self.fingerprint, hasher.hexdigest(), f"export of {self.fingerprint}"
                )
        except BaseException:
            hasher.close()
            handle.close()
            raise
        handle.seek(0)
        return handle

    def export_to(
        self, directory: str | os.PathLike[str], *, progress: ProgressCallback | None = None
    ) -> list[Path]:
        """Write the image into ``directory`` as ``lxc image export`` names it.

        A unified image is one file; a split image is the metadata file then the
        rootfs file. The sha256 over what is written must equal the fingerprint,
        or nothing is left in ``directory``. Returns the paths written.
        """
        writer = VerifiedWriter(directory, self.fingerprint)
        try:
            with self._exported_files(progress) as files:
                for name, chunks in files:
                    writer.write(name, chunks)
            return writer.commit(f"export of {self.fingerprint}")
        finally:
            writer.discard()

    # -- copy and delete --------------------------------------------------------

    @overload
    def copy(
        self,
        new_client: Client,
        public: bool | None = ...,
        auto_update: bool | None = ...,
        wait: Literal[False] = ...,
        *,
        mode: CopyMode = ...,
        copy_aliases: bool = ...,
        progress: ProgressCallback | None = ...,
    ) -> Operation[Image]: ...

    @overload
    def copy(
        self,
        new_client: Client,
        public: bool | None = ...,
        auto_update: bool | None = ...,
        *,
        wait: Literal[True],
        mode: CopyMode = ...,
        copy_aliases: bool = ...,
        progress: ProgressCallback | None = ...,
    ) -> Image: ...

    def copy(
        self,
        new_client: Client,
        public: bool | None = None,
        auto_update: bool | None = None,
        wait: bool = False,
        *,
        mode: CopyMode = "auto",
        copy_aliases: bool = True,
        progress: ProgressCallback | None = None,
    ) -> Image | Operation[Image]:
        """Copy this image to the daemon of ``new_client`` (LXD or Incus, either way).

        ``pull``: the target fetches the image over HTTPS from this image's daemon
        (with a one-time secret for a private image, pinned to the source's
        certificate). ``relay``: the export is streamed through this process into
        the target. ``auto`` pulls when the source listens on HTTPS and, when
        waiting, relays if the pull fails. ``public``/``auto_update`` default to
        this image's settings; its aliases are copied unless ``copy_aliases=False``.
        ``progress`` gets the relayed bytes, or the target's download progress.
        """
        public = self.public if public is None else public
        auto_update = self.auto_update if auto_update is None else auto_update
        aliases = [dict(a) for a in self.aliases] if copy_aliases else []
        server = _https_url(self.client)
        if mode == "pull" and server is None:
            raise ValueError(
                f"pull copy impossible: {self.client.endpoint} does not listen on HTTPS "
                "(set core.https_address, or use mode='relay')"
            )
        new_client.images._check_aliases_free([a["name"] for a in aliases])
        if mode == "relay" or server is None:
            return self._relay(new_client, public, aliases, wait, progress)
        operation = self._pull(new_client, server, public, auto_update, aliases)
        if not wait:
            return operation
        try:
            return operation.wait(progress=progress)
        except exc.OperationFailed:
            if mode == "pull":
                raise
        return self._relay(new_client, public, aliases, True, progress)

    def copy_mode(self) -> Literal["pull", "relay"]:
        """How ``copy(mode="auto")`` starts: ``pull`` if this image's daemon listens on HTTPS."""
        return "relay" if _https_url(self.client) is None else "pull"

    def _pull(
        self,
        new_client: Client,
        server: str,
        public: bool,
        auto_update: bool,
        aliases: list[dict[str, str]],
    ) -> Operation[Image]:
        secret = None
        if not self.public:
            envelope = self.client.request(ApiRequest("POST", self.path + "/secret"))
            secret = str(self.client.operation(envelope.metadata).metadata["secret"])
        source = remote_image_source(
            server,
            # The API is the same either way; each target knows it by its own name.
            new_client.dialect.remote_protocol,
            fingerprint=self.fingerprint,
            certificate=self.client.server_certificate,
            secret=secret,
        )
        request = image_post(source, public=public, auto_update=auto_update, aliases=aliases)
        return new_client.images._start(request)

    def _relay(
        self,
        new_client: Client,
        public: bool,
        aliases: list[dict[str, str]],
        wait: bool,
        progress: ProgressCallback | None,
    ) -> Image | Operation[Image]:
        target = new_client.images
        meter = ProgressMeter(progress, "relay", self.size or None)
        with self.client.stream(self._export_request()) as response:
            chunks = meter.count(response.iter_raw())
            rootfs: Iterator[bytes] | None = None
            if _is_multipart(response):
                parts = iter_export_parts(response.headers["content-type"], chunks)
                chunks, rootfs = _next_part_chunks(parts), _next_part_chunks(parts)
            operation = target._relay_in(
                chunks,
                rootfs,
                image_type=self.type,
                fingerprint=self.fingerprint,
                filename=self.filename,
                length=self.size,
                public=public,
                aliases=aliases,
            )
        meter.finish()
        return operation.wait() if wait else operation

    @overload
    def delete(self, wait: Literal[False] = ...) -> Operation[None]: ...

    @overload
    def delete(self, wait: Literal[True]) -> None: ...

    def delete(self, wait: bool = False) -> Operation[None] | None:
        """Delete the image from the daemon."""
        envelope = self.client.request(ApiRequest("DELETE", self.path))
        operation: Operation[None] = Operation(self.client, envelope.metadata, lambda _: None)
        return operation.wait() if wait else operation


def _normalised(fields: Mapping[str, Any]) -> dict[str, Any]:
    normal = dict(fields)
    if "expires_at" in normal:
        normal["expires_at"] = parse_timestamp(normal["expires_at"])
    normal["properties"] = dict(normal.get("properties") or {})
    normal["profiles"] = list(normal.get("profiles") or [])
    return normal


def _is_multipart(response: httpx.Response) -> bool:
    return str(response.headers.get("content-type", "")).startswith("multipart/")


def _disposition_filename(response: httpx.Response) -> str:
    _, options = parse_options_header(str(response.headers.get("content-disposition", "")))
    return options.get(b"filename", b"").decode("utf-8", "replace")


def _next_part_chunks(parts: Iterator[Any]) -> Iterator[bytes]:
    """The next export part's bytes, fetched only when first read (parts stream in order)."""
    part = next(parts, None)
    if part is None:
        raise exc.LXDImagesError("split image export ended before both parts arrived")
    yield from part.chunks


def _https_url(client: Client) -> str | None:
    """Where another daemon can reach this client's daemon over HTTPS, if anywhere."""
    if not client.endpoint.is_unix:
        return client.endpoint.url
    for address in client.addresses:
        return f"https://{address}"
    return None


class ImageManager:
    """``client.images``: list, look up and create images on one daemon."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def all(self) -> list[Image]:
        """Every image, as full objects, in one request."""
        envelope = self._client.request(
            ApiRequest("GET", f"{API}/images", params={"recursion": "1"})
        )
        return [Image(self._client, record) for record in envelope.metadata or []]

    def get(self, fingerprint: str) -> Image:
        """The image with this fingerprint or unique fingerprint prefix.

        ``NotFound`` when none matches, ``AmbiguousFingerprint`` when several do.
        """
        if not fingerprint:
            raise ValueError("an empty fingerprint names no image")
        envelope = self._client.request(ApiRequest("GET", image_path(fingerprint)))
        return Image(self._client, envelope.metadata)

    def get_by_alias(self, alias: str) -> Image:
        """The image the alias points at."""
        return self.get(self._client.aliases.get(alias).target)

    def exists(self, name: str, alias: bool = False) -> bool:
        """Whether an image with this fingerprint (or, with ``alias=True``, alias) exists."""
        try:
            if alias:
                self.get_by_alias(name)
            else:
                self.get(name)
        except exc.NotFound:
            return False
        return True

    # -- create -------------------------------------------------------------------

    @overload
    def create(
        self,
        data: ImageData,
        public: bool = ...,
        wait: Literal[True] = ...,
        *,
        metadata: ImageData | None = ...,
        filename: str | None = ...,
        aliases: Sequence[str] = ...,
        properties: Mapping[str, str] | None = ...,
        progress: ProgressCallback | None = ...,
        verify: bool = ...,
    ) -> Image: ...

    @overload
    def create(
        self,
        data: ImageData,
        public: bool = ...,
        *,
        wait: Literal[False],
        metadata: ImageData | None = ...,
        filename: str | None = ...,
        aliases: Sequence[str] = ...,
        properties: Mapping[str, str] | None = ...,
        progress: ProgressCallback | None = ...,
        verify: bool = ...,
    ) -> Operation[Image]: ...

    def create(
        self,
        data: ImageData,
        public: bool = False,
        wait: bool = True,
        *,
        metadata: ImageData | None = None,
        filename: str | None = None,
        aliases: Sequence[str] = (),
        properties: Mapping[str, str] | None = None,
        progress: ProgressCallback | None = None,
        verify: bool = True,
    ) -> Image | Operation[Image]:
        """Upload an image, streaming it; return the new ``Image``.

        ``data`` is bytes, a path or a binary file object: the unified tarball, or
        with ``metadata`` the rootfs of a split image (squashfs or tarball for a
        container, a qcow2 disk for a VM). A path gives the default ``filename``.
        The daemon's fingerprint is checked against the sha256 of the bytes sent,
        computed beside the upload; ``verify=False`` skips that check (the unix
        socket's or TLS's own integrity still holds) and saves its CPU time.
        Aliases are created with the image; if one is taken, ``Conflict`` is raised
        before anything is uploaded.
        """
        alias_list = [{"name": name, "description": ""} for name in aliases]
        self._check_aliases_free(list(aliases))
        chunks, data_name, length = iter_source(data)
        meta_chunks, _, meta_length = (
            iter_source(metadata) if metadata is not None else (None, None, 0)
        )
        total = None if length is None or meta_length is None else length + meta_length
        meter = ProgressMeter(progress, "upload", total)
        chunks = meter.count(chunks)
        if meta_chunks is None:
            operation = self._upload(
                chunks,
                public=public,
                filename=filename or data_name,
                properties=properties,
                aliases=alias_list,
                length=length,
                verify=verify,
            )
        else:
            first = next(chunks, b"")
            operation = self._upload_split(
                meter.count(meta_chunks),
                _prepend(first, chunks),
                rootfs_name=rootfs_part_name(first),
                public=public,
                filename=filename or data_name,
                properties=properties,
                aliases=alias_list,
                verify=verify,
            )
        meter.finish()
        return operation.wait(progress=progress) if wait else operation

    def _check_aliases_free(self, names: Sequence[str]) -> None:
        for name in names:
            if self._client.aliases.exists(name):
                raise exc.Conflict(
                    f'Alias "{name}" already exists',
                    409,
                    request=f"alias check on {self._client.endpoint}",
                )

    def _relay_in(
        self,
        metadata: Iterable[bytes],
        rootfs: Iterable[bytes] | None,
        *,
        image_type: str,
        fingerprint: str,
        filename: str,
        length: int | None,
        public: bool,
        aliases: list[dict[str, str]],
    ) -> Operation[Image]:
        """Upload an image relayed from another server: unified (``metadata`` is the
        whole image, ``length`` bytes) or split; its fingerprint there is the check.
        """
        if rootfs is None:
            return self._upload(
                metadata,
                public=public,
                filename=filename,
                properties=None,
                aliases=aliases,
                length=length,
                expected=fingerprint,
            )
        return self._upload_split(
            metadata,
            rootfs,
            rootfs_name="rootfs.img" if image_type == "virtual-machine" else "rootfs",
            public=public,
            filename=filename,
            properties=None,
            aliases=aliases,
            expected=fingerprint,
        )

    def _upload(
        self,
        chunks: Iterable[bytes],
        *,
        public: bool,
        filename: str | None,
        properties: Mapping[str, str] | None,
        aliases: list[dict[str, str]],
        length: int | None,
        expected: str | None = None,
        verify: bool = True,
    ) -> Operation[Image]:
        hasher = _upload_hash(expected, verify)
        body = ChunkReader(chunks, hasher)
        headers = upload_headers(
            self._client.dialect, public=public, filename=filename, properties=properties
        )
        headers["Content-Type"] = "application/octet-stream"
        if length is not None:
            headers["Content-Length"] = str(length)
        try:
            envelope = self._client.request(
                ApiRequest("POST", f"{API}/images", headers=headers),
                content=iter(body),
                timeout=None,
            )
        finally:
            sent = hasher.hexdigest() if hasher is not None else None
        return self._operation(envelope.metadata, sent, aliases, expected)

    def _upload_split(
        self,
        metadata: Iterable[bytes],
        rootfs: Iterable[bytes],
        *,
        rootfs_name: str,
        public: bool,
        filename: str | None,
        properties: Mapping[str, str] | None,
        aliases: list[dict[str, str]],
        expected: str | None = None,
        verify: bool = True,
    ) -> Operation[Image]:
        hasher = _upload_hash(expected, verify)
        headers = upload_headers(
            self._client.dialect, public=public, filename=filename, properties=properties
        )
        # The daemons name a split image after its rootfs part's file name.
        files = {
            "metadata": ("metadata", ChunkReader(metadata, hasher), "application/octet-stream"),
            rootfs_name: (
                filename or rootfs_name,
                ChunkReader(rootfs, hasher),
                "application/octet-stream",
            ),
        }
        try:
            envelope = self._client.request(
                ApiRequest("POST", f"{API}/images", headers=headers), files=files, timeout=None
            )
        finally:
            sent = hasher.hexdigest() if hasher is not None else None
        return self._operation(envelope.metadata, sent, aliases, expected)

    def _operation(
        self,
        data: Mapping[str, Any],
        sent: str | None,
        aliases: list[dict[str, str]],
        expected: str | None,
    ) -> Operation[Image]:
        """The upload's operation; its result checks the fingerprint the daemon computed
        against the sha256 of the bytes sent (``sent``) and, for a relay, against
        the source's fingerprint.
        """

        def result(operation: Operation[Image]) -> Image:
            fingerprint = str(operation.metadata.get("fingerprint", ""))
            for wanted, what in ((sent, "the bytes sent"), (expected, "the source's image")):
                if wanted is not None and fingerprint != wanted:
                    self._discard(fingerprint)
                    raise exc.FingerprintMismatch(wanted, fingerprint, f"upload of {what}")
            return self._finish(fingerprint, aliases)

        return Operation(self._client, data, result)

    def _finish(self, fingerprint: str, aliases: list[dict[str, str]]) -> Image:
        """The new image, with its aliases; if an alias cannot be made, no image is left."""
        try:
            for alias in aliases:
                if not self._client.aliases.exists(alias["name"]):
                    self._client.aliases.create(alias["name"], fingerprint, alias["description"])
        except exc.LXDAPIException:
            self._discard(fingerprint)
            raise
        return self.get(fingerprint)

    def _discard(self, fingerprint: str) -> None:
        with suppress(exc.LXDAPIException):
            self.get(fingerprint).delete(wait=True)

    def _start(self, request: ApiRequest) -> Operation[Image]:
        """Start a daemon-side image creation; its operation's result is the new image."""
        envelope = self._client.request(request)
        aliases = list((request.json or {}).get("aliases") or [])

        def result(operation: Operation[Image]) -> Image:
            fingerprint = str(operation.metadata.get("fingerprint", ""))
            return self._finish(fingerprint, aliases)

        return Operation(self._client, envelope.metadata, result)

    @overload
    def create_from_simplestreams(
        self,
        server: str,
        alias: str,
        public: bool = ...,
        auto_update: bool = ...,
        wait: Literal[False] = ...,
        *,
        certificate: str | None = ...,
        progress: ProgressCallback | None = ...,
    ) -> Operation[Image]: ...

    @overload
    def create_from_simplestreams(
        self,
        server: str,
        alias: str,
        public: bool = ...,
        auto_update: bool = ...,
        *,
        wait: Literal[True],
        certificate: str | None = ...,
        progress: ProgressCallback | None = ...,
    ) -> Image: ...

    def create_from_simplestreams(
        self,
        server: str,
        alias: str,
        public: bool = False,
        auto_update: bool = False,
        wait: bool = False,
        *,
        certificate: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> Image | Operation[Image]:
        """Have the daemon fetch ``alias`` (or a fingerprint) from a simplestreams server.

        ``certificate`` (PEM text) pins the server's certificate for the daemon.
        """
        source = remote_image_source(server, "simplestreams", alias=alias, certificate=certificate)
        operation = self._start(image_post(source, public=public, auto_update=auto_update))
        return operation.wait(progress=progress) if wait else operation

    @overload
    def create_from_url(
        self,
        url: str,
        public: bool = ...,
        auto_update: bool = ...,
        wait: Literal[False] = ...,
        *,
        progress: ProgressCallback | None = ...,
    ) -> Operation[Image]: ...

    @overload
    def create_from_url(
        self,
        url: str,
        public: bool = ...,
        auto_update: bool = ...,
        *,
        wait: Literal[True],
        progress: ProgressCallback | None = ...,
    ) -> Image: ...

    def create_from_url(
        self,
        url: str,
        public: bool = False,
        auto_update: bool = False,
        wait: bool = False,
        *,
        progress: ProgressCallback | None = None,
    ) -> Image | Operation[Image]:
        """Have the daemon fetch an image from a direct-download URL.

        The daemon asks the URL first for ``LXD-Image-Hash``/``Incus-Image-Hash``
        and ``...-Image-URL`` headers and checks the server with its own trust roots.
        """
        source = {"type": "url", "url": url}
        operation = self._start(image_post(source, public=public, auto_update=auto_update))
        return operation.wait(progress=progress) if wait else operation


def _upload_hash(expected: str | None, verify: bool) -> BackgroundHash | None:
    """A hash of the bytes an upload sends, unless the source's fingerprint is known
    (the daemon's own fingerprint, compared with it, then proves the bytes) or the
    caller declined the check.
    """
    return BackgroundHash() if verify and expected is None else None


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest
