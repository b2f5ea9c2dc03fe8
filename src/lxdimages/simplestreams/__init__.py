"""Simplestreams: browse image servers, publish and serve trees, mirror them.

The HTTPS server (``TreeServer`` and friends, on aiohttp) is imported on first
use, so reading and publishing do not pay for loading a web server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .mirror import MirrorFilter, MirrorResult, mirror
from .model import StreamFile, StreamImage, resolve
from .publish import Tree, read_image_metadata
from .source import SimplestreamsSource

if TYPE_CHECKING:
    from .server import ServerCertificate, TreeServer, make_app, remote_add_commands

__all__ = [
    "MirrorFilter",
    "MirrorResult",
    "ServerCertificate",
    "SimplestreamsSource",
    "StreamFile",
    "StreamImage",
    "Tree",
    "TreeServer",
    "make_app",
    "mirror",
    "read_image_metadata",
    "remote_add_commands",
    "resolve",
]

_SERVER_NAMES = {"ServerCertificate", "TreeServer", "make_app", "remote_add_commands"}


def __getattr__(name: str) -> Any:
    if name in _SERVER_NAMES:
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
