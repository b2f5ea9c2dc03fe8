"""Simplestreams: browse image servers, publish and serve trees, mirror them."""

from .mirror import MirrorFilter, MirrorResult, mirror
from .model import StreamFile, StreamImage, resolve
from .publish import Tree, read_image_metadata
from .server import ServerCertificate, TreeServer, make_app, remote_add_commands
from .source import SimplestreamsSource

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
