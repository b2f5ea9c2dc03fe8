"""A local HTTPS image server for the tests: a simplestreams tree and direct-URL answers.

Only for the tests of the core client: it lets real daemons run
``create_from_simplestreams`` and ``create_from_url`` against loopback.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import ssl
import threading
import time
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .pki import KeyPair


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class SimplestreamsTree:
    """A minimal simplestreams tree of unified images, readable by LXD 5.0 and Incus 6.0."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url
        self.products: dict[str, Any] = {}
        (root / "streams/v1").mkdir(parents=True, exist_ok=True)
        (root / "images").mkdir(exist_ok=True)

    def add_unified(self, image: Path, *, os_name: str, release: str, aliases: list[str]) -> str:
        """Publish a unified tarball under ``os:release:amd64:default``; return its fingerprint."""
        fingerprint = sha256_file(image)
        relative = f"images/{fingerprint}.tar.gz"
        shutil.copyfile(image, self.root / relative)
        item = {"path": relative, "sha256": fingerprint, "size": image.stat().st_size}
        product = f"{os_name}:{release}:amd64:default"
        version = time.strftime("%Y%m%d_%H:%M", time.gmtime())
        self.products[product] = {
            "aliases": ",".join(aliases),
            "arch": "amd64",
            "os": os_name,
            "release": release,
            "release_title": release,
            "variant": "default",
            "versions": {
                version: {
                    # LXD reads lxd_combined.tar.gz, Incus incus_combined.tar.gz.
                    "items": {
                        "lxd_combined.tar.gz": {**item, "ftype": "lxd_combined.tar.gz"},
                        "incus_combined.tar.gz": {**item, "ftype": "incus_combined.tar.gz"},
                    }
                }
            },
        }
        self._write()
        return fingerprint

    def _write(self) -> None:
        images = {
            "content_id": "images",
            "datatype": "image-downloads",
            "format": "products:1.0",
            "products": self.products,
        }
        index = {
            "format": "index:1.0",
            "index": {
                "images": {
                    "datatype": "image-downloads",
                    "path": "streams/v1/images.json",
                    "format": "products:1.0",
                    "products": sorted(self.products),
                }
            },
        }
        (self.root / "streams/v1/images.json").write_text(json.dumps(images))
        (self.root / "streams/v1/index.json").write_text(json.dumps(index))


class _Handler(SimpleHTTPRequestHandler):
    server: ImageServer  # type: ignore[assignment]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _direct(self) -> bool:
        """``/<tree>/direct/<file>``: the answer create_from_url reads for ``<tree>/images/<file>``."""
        tree, marker, name = self.path.lstrip("/").partition("/direct/")
        if not marker:
            return False
        target = self.server.root / tree / "images" / name
        if "/" in name or "/" in tree or not target.is_file():
            self.send_error(HTTPStatus.NOT_FOUND)
            return True
        digest = sha256_file(target)
        url = f"{self.server.url}/{tree}/images/{name}"
        self.send_response(HTTPStatus.OK)
        for prefix in ("LXD", "Incus"):
            self.send_header(f"{prefix}-Image-Hash", digest)
            self.send_header(f"{prefix}-Image-URL", url)
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def do_HEAD(self) -> None:
        if not self._direct():
            super().do_HEAD()

    def do_GET(self) -> None:
        if not self._direct():
            super().do_GET()


class ImageServer(ThreadingHTTPServer):
    """HTTPS on loopback, serving the trees under ``root`` and their ``direct/<file>`` URLs.

    The daemons cache a simplestreams server's index by URL, so each test gets
    a tree of its own at its own URL (``new_tree``).
    """

    daemon_threads = True

    def __init__(self, root: Path, keypair: KeyPair, host: str = "127.0.0.1") -> None:
        self.root = root
        handler = lambda *a: _Handler(*a, directory=str(root))  # noqa: E731
        super().__init__((host, 0), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(keypair.cert_path), str(keypair.key_path))
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.url = f"https://{host}:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def new_tree(self) -> SimplestreamsTree:
        name = f"tree-{secrets.token_hex(4)}"
        return SimplestreamsTree(self.root / name, f"{self.url}/{name}")

    def start(self) -> ImageServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
