"""lxdimages: manage LXD and Incus images from Python.

The public surface: ``Client`` (with ``client.images`` and ``client.aliases``),
``Image``, ``Operation``, and the exceptions in ``lxdimages.exceptions``.
"""

from .aliases import Alias, AliasManager
from .client import Client
from .exceptions import (
    AmbiguousFingerprint,
    ClientConnectionFailed,
    Conflict,
    FingerprintMismatch,
    ImageExists,
    LXDAPIException,
    LXDAPIExtensionNotAvailable,
    LXDImagesError,
    NotFound,
    NotTrusted,
    OperationFailed,
    OperationTimeout,
    SplitImageError,
)
from .images import Image, ImageManager
from .operations import Operation
from .protocol import Dialect

__version__ = "0.1.0"

__all__ = [
    "Alias",
    "AliasManager",
    "AmbiguousFingerprint",
    "Client",
    "ClientConnectionFailed",
    "Conflict",
    "Dialect",
    "FingerprintMismatch",
    "Image",
    "ImageExists",
    "ImageManager",
    "LXDAPIException",
    "LXDAPIExtensionNotAvailable",
    "LXDImagesError",
    "NotFound",
    "NotTrusted",
    "Operation",
    "OperationFailed",
    "OperationTimeout",
    "SplitImageError",
    "__version__",
]
