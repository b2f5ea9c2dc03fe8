"""Serving a simplestreams tree over HTTPS, with the direct-URL answers ``create_from_url`` reads.

Built on aiohttp, on uvloop's event loop (its TLS transport costs a fraction of
asyncio's, which otherwise bounds a single download's speed): static files (with
``Range`` and ``HEAD``) from the tree, and ``/direct/<alias-or-fingerprint>``
answering ``LXD-Image-Hash``/``LXD-Image-URL`` and their ``Incus-`` twins for a
unified image. Paths outside the tree and hidden files (locks, staging) are refused.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import uvloop
from aiohttp import web

from ..certificates import certificate_fingerprint, generate_self_signed
from ..exceptions import SimplestreamsError, StreamImageNotFound
from .model import INDEX_PATH, ImageType, StreamImage, resolve
from .publish import Tree

__all__ = ["ServerCertificate", "TreeServer", "make_app", "remote_add_commands"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ServerCertificate:
    """The certificate and key a server presents."""

    cert_path: Path
    key_path: Path

    @property
    def pem(self) -> str:
        return self.cert_path.read_text()

    @property
    def fingerprint(self) -> str:
        return certificate_fingerprint(self.pem)

    @classmethod
    def self_signed(cls, directory: str | os.PathLike[str], host: str) -> ServerCertificate:
        """The self-signed certificate kept in ``directory``, made on first use."""
        folder = Path(directory)
        pair = cls(folder / "server.crt", folder / "server.key")
        if not (pair.cert_path.exists() and pair.key_path.exists()):
            hosts = sorted({host, "127.0.0.1", "localhost"} - {"0.0.0.0", "::", ""})
            generate_self_signed(
                pair.cert_path, pair.key_path, common_name=f"lxdimages@{host}", hosts=hosts
            )
        return pair


class _DirectIndex:
    """The tree's images, re-read only when its index changes."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self._stamp: float | None = None
        self._images: list[StreamImage] = []

    def images(self) -> list[StreamImage]:
        index = self.tree.root / INDEX_PATH
        stamp = index.stat().st_mtime if index.exists() else None
        if stamp != self._stamp:
            self._images = self.tree.images()
            self._stamp = stamp
        return self._images


def make_app(root: str | os.PathLike[str], public_url: str | None = None) -> web.Application:
    """The aiohttp application serving ``root``; ``public_url`` overrides the origin
    written into direct-URL answers (behind a proxy).
    """
    tree = Tree(root)
    index = _DirectIndex(tree)

    @web.middleware
    async def refuse_hidden(request: web.Request, handler: Handler) -> web.StreamResponse:
        if any(part.startswith(".") for part in request.path.split("/") if part):
            raise web.HTTPNotFound()
        return await handler(request)

    async def direct(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        image_type: ImageType = (
            "virtual-machine" if request.query.get("type") == "virtual-machine" else "container"
        )
        try:
            image = resolve(
                index.images(),
                name,
                architecture=request.query.get("arch"),
                image_type=image_type,
            )
        except StreamImageNotFound as error:
            raise web.HTTPNotFound(text=f"{error}\n") from None
        if image.is_split:
            raise web.HTTPNotFound(
                text=f"{name} is a split image; a direct URL serves unified images only\n"
            )
        origin = (public_url or str(request.url.origin())).rstrip("/")
        headers: dict[str, str] = {}
        for prefix in ("LXD", "Incus"):
            headers[f"{prefix}-Image-Hash"] = image.fingerprint
            headers[f"{prefix}-Image-URL"] = f"{origin}/{image.metadata.path}"
        return web.Response(status=200, headers=headers)

    app = web.Application(middlewares=[refuse_hidden])
    app.router.add_route("GET", "/direct/{name:.+}", direct)
    app.router.add_route("HEAD", "/direct/{name:.+}", direct)
    # 1 MiB reads: over TLS (no sendfile) each chunk is read on a thread, then
    # encrypted on the loop; fewer, larger chunks keep up with nginx.
    app.router.add_static(
        "/", Path(root), show_index=False, follow_symlinks=False, chunk_size=1 << 18
    )
    return app


def remote_add_commands(
    url: str, certificate: str | os.PathLike[str], name: str = "myimages"
) -> list[str]:
    """Shell commands that add a served tree as a simplestreams remote of ``lxc`` and
    ``incus``. Neither client fetches a simplestreams server's certificate itself
    (``--accept-certificate`` is ignored for that protocol); both read a pinned one
    from ``servercerts/<remote>.crt`` in their configuration directory.
    """
    commands = []
    for client, directory in (("lxc", "~/.config/lxc"), ("incus", "~/.config/incus")):
        commands.append(
            f"mkdir -p {directory}/servercerts && "
            f"cp {os.fspath(certificate)} {directory}/servercerts/{name}.crt && "
            f"{client} remote add {name} {url} --protocol simplestreams"
        )
    return commands


class TreeServer:
    """An HTTPS server for a tree, on its own thread (``start``/``stop``) or in the
    foreground (``run``).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        certificate: ServerCertificate,
        *,
        host: str = "127.0.0.1",
        port: int = 8443,
        public_url: str | None = None,
    ) -> None:
        self.root = Path(root)
        if not (self.root / INDEX_PATH).exists():
            raise SimplestreamsError(f"{self.root} holds no simplestreams tree ({INDEX_PATH})")
        self.certificate = certificate
        self.host = host
        self.port = port
        self.public_url = public_url
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    def _ssl(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.certificate.cert_path, self.certificate.key_path)
        return context

    async def _start(self) -> None:
        self._runner = web.AppRunner(make_app(self.root, self.public_url), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self._ssl(), backlog=512)
        await site.start()
        if self.port == 0:
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    def run(self) -> None:
        """Serve in the foreground until interrupted."""
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self._serve_forever())

    async def _serve_forever(self) -> None:
        await self._start()
        try:
            await asyncio.Event().wait()
        finally:
            assert self._runner is not None
            await self._runner.cleanup()

    def start(self) -> TreeServer:
        """Serve on a background thread; return once the port is open."""

        def target() -> None:
            loop = uvloop.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start())
            except BaseException as error:  # reported to the starting thread
                self._error = error
                self._ready.set()
                return
            self._ready.set()
            loop.run_forever()
            assert self._runner is not None
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=target, name="lxdimages-serve", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop = None
            self._thread = None

    def __enter__(self) -> TreeServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
