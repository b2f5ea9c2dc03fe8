"""Every error lxdimages raises, in one hierarchy.

``LXDImagesError`` is the root. Errors the daemon reports are ``LXDAPIException``
(pylxd's name) and carry the daemon's HTTP status and its own message; the
subclasses name the cases callers branch on.

    LXDImagesError
    ├── ClientConnectionFailed        the daemon could not be reached (socket, TLS, refused)
    ├── LXDAPIException               the daemon answered with an error
    │   ├── NotFound                  404: no such image, alias, operation
    │   ├── Conflict                  409/412: already exists, or changed since read (ETag)
    │   │   └── ImageExists           an image with the same fingerprint is already there
    │   ├── NotTrusted                403: the client certificate is not trusted
    │   ├── AmbiguousFingerprint      a fingerprint prefix matches several images
    │   ├── LXDAPIExtensionNotAvailable  the daemon lacks an API extension a call needs
    │   └── OperationFailed           a background operation ended in failure
    ├── OperationTimeout              ``Operation.wait(timeout=...)`` ran out
    ├── FingerprintMismatch           bytes moved do not hash to the image's fingerprint
    ├── SplitImageError               a single-file call was made on a split image
    ├── InvalidImage                  an image file is not one (no metadata.yaml...)
    └── SimplestreamsError            a simplestreams server or tree is unusable
        ├── InvalidStream             a corrupt, truncated or inconsistent index
        └── StreamImageNotFound       no image for that alias, architecture and type
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .operations import Operation

__all__ = [
    "AmbiguousFingerprint",
    "ClientConnectionFailed",
    "Conflict",
    "FingerprintMismatch",
    "ImageExists",
    "InvalidImage",
    "InvalidStream",
    "LXDAPIException",
    "LXDAPIExtensionNotAvailable",
    "LXDImagesError",
    "NotFound",
    "NotTrusted",
    "OperationFailed",
    "OperationTimeout",
    "SimplestreamsError",
    "SplitImageError",
    "StreamImageNotFound",
]


class LXDImagesError(Exception):
    """Base class of every error raised by lxdimages."""


class ClientConnectionFailed(LXDImagesError):
    """The daemon could not be reached: no socket, connection refused, TLS failure."""


class LXDAPIException(LXDImagesError):
    """The daemon answered with an error.

    ``status_code`` is the daemon's error code (HTTP status for a request, the
    operation's status code for a failed operation) and ``message`` its own words.
    """

    def __init__(
        self,
        message: str,
        status_code: int,
        *,
        request: str = "",
        operation: Operation[Any] | None = None,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.request = request
        #: The failed operation's last state, when the error came from one.
        self.operation = operation
        where = f" ({request})" if request else ""
        super().__init__(f"{message} [status {status_code}]{where}")


class NotFound(LXDAPIException):
    """The image, alias or operation does not exist."""


class Conflict(LXDAPIException):
    """The object already exists, or changed since it was read (ETag mismatch)."""


class ImageExists(Conflict):
    """The daemon already holds an image with this fingerprint."""


class NotTrusted(LXDAPIException):
    """The daemon does not trust this client's certificate for this call."""


class AmbiguousFingerprint(LXDAPIException):
    """A fingerprint prefix matches more than one image."""


class LXDAPIExtensionNotAvailable(LXDAPIException):
    """The daemon lacks an API extension the call needs."""

    def __init__(self, extension: str) -> None:
        super().__init__(f"the daemon does not have the API extension {extension!r}", 0)
        self.extension = extension


class OperationFailed(LXDAPIException):
    """A background operation ended in failure; ``operation`` is its last state."""


class OperationTimeout(LXDImagesError):
    """``Operation.wait`` gave up before the operation ended; the operation goes on."""


class FingerprintMismatch(LXDImagesError):
    """The bytes moved do not hash to the fingerprint the daemon names."""

    def __init__(self, expected: str, actual: str, what: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"{what}: sha256 is {actual}, expected fingerprint {expected}")


class SplitImageError(LXDImagesError):
    """A single-file call was made on a split (metadata + rootfs) image."""


class InvalidImage(LXDImagesError):
    """A file given as an image is not one: unreadable, or without ``metadata.yaml``."""


class SimplestreamsError(LXDImagesError):
    """A simplestreams server or tree cannot be used as asked."""


class InvalidStream(SimplestreamsError):
    """An index or products file is corrupt, truncated or names what is not there."""


class StreamImageNotFound(SimplestreamsError):
    """No image matches that alias or fingerprint for the architecture and type asked."""
