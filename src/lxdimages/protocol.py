"""The daemons' REST protocol without I/O: request building and response parsing.

Everything here is pure: it takes bytes, dicts and strings and returns the same,
so the synchronous client, a future asyncio client and the unit tests share it.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from . import exceptions as exc

API = "/1.0"

__all__ = [
    "API",
    "ApiRequest",
    "Dialect",
    "Envelope",
    "error_from",
    "image_path",
    "parse_envelope",
    "parse_timestamp",
]


class Dialect(enum.Enum):
    """Which daemon speaks: LXD and Incus share the API but not every name."""

    LXD = "lxd"
    INCUS = "incus"

    @classmethod
    def from_host_info(cls, info: Mapping[str, Any]) -> Dialect:
        """Read the dialect from ``GET /1.0``'s ``environment.server``."""
        server = str(info.get("environment", {}).get("server", "lxd")).lower()
        return cls.INCUS if server == "incus" else cls.LXD

    @property
    def header_prefix(self) -> str:
        return "X-Incus-" if self is Dialect.INCUS else "X-LXD-"

    def header(self, name: str) -> str:
        """The request header the daemon reads for ``name`` (``public``, ``filename``...)."""
        return self.header_prefix + name

    @property
    def remote_protocol(self) -> str:
        """The ``protocol`` name this daemon gives the daemons' API when it pulls from one."""
        return "incus" if self is Dialect.INCUS else "lxd"


@dataclass(frozen=True)
class ApiRequest:
    """One request to the daemon: what to send, not how."""

    method: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def target(self) -> str:
        """The path with its query string."""
        return self.path + ("?" + urlencode(self.params) if self.params else "")


@dataclass(frozen=True)
class Envelope:
    """A parsed daemon answer: sync metadata, or the operation an async call started."""

    kind: str  # "sync" or "async"
    metadata: Any
    operation: str  # the operation's path for an async answer, else ""
    etag: str = ""


def image_path(fingerprint: str) -> str:
    return f"{API}/images/{quote(fingerprint, safe='')}"


def alias_path(name: str) -> str:
    return f"{API}/images/aliases/{quote(name, safe='')}"


_AMBIGUOUS = "More than one image matches"
_IMAGE_EXISTS = re.compile(r"same fingerprint already exists", re.IGNORECASE)


def error_from(
    message: str,
    status_code: int,
    request: str = "",
    *,
    default: type[exc.LXDAPIException] = exc.LXDAPIException,
    operation: Any = None,
) -> exc.LXDAPIException:
    """The typed exception for a daemon error, keeping the daemon's own words.

    ``default`` is the class when nothing more specific applies (``OperationFailed``
    for a failed operation, whose ``operation`` the error then carries).
    """
    cls: type[exc.LXDAPIException]
    if _AMBIGUOUS in message:
        cls = exc.AmbiguousFingerprint
    elif _IMAGE_EXISTS.search(message):
        cls = exc.ImageExists
    elif status_code == 404:
        cls = exc.NotFound
    elif status_code in (409, 412):
        cls = exc.Conflict
    elif status_code == 403:
        cls = exc.NotTrusted
    else:
        cls = default
    return cls(message, status_code, request=request, operation=operation)


def parse_envelope(status_code: int, body: bytes, request: str = "", etag: str = "") -> Envelope:
    """Parse a daemon's JSON answer; raise the typed error for an error answer."""
    try:
        doc = json.loads(body) if body else {}
    except ValueError:
        text = body[:200].decode("utf-8", "replace").strip()
        raise error_from(text or f"HTTP {status_code}", status_code, request) from None
    if not isinstance(doc, dict):
        raise error_from(f"unexpected answer: {str(doc)[:200]}", status_code, request)
    kind = doc.get("type", "")
    if kind == "error" or status_code >= 400:
        message = str(doc.get("error") or f"HTTP {status_code}")
        raise error_from(message, int(doc.get("error_code") or status_code), request)
    operation = str(doc.get("operation") or "") if kind == "async" else ""
    return Envelope(kind=str(kind), metadata=doc.get("metadata"), operation=operation, etag=etag)


_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


def parse_timestamp(value: str | None) -> datetime | None:
    """A timezone-aware datetime from the daemon's RFC 3339 text; ``None`` for "never".

    Go writes nanoseconds, which ``datetime`` cannot hold: they are cut to microseconds.
    """
    if not value:
        return None
    match = _TIMESTAMP.match(value)
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    whole, fraction, zone = match.groups()
    text = whole + ("." + (fraction + "000000")[:6] if fraction else "")
    text += "+00:00" if zone in (None, "Z") else zone
    parsed = datetime.fromisoformat(text)
    # The daemons write "never" as Go's zero time; LXD writes a never-expiring image's
    # expiry as the Unix epoch.
    if parsed.year == 1 or parsed.timestamp() == 0:
        return None
    return parsed


def format_timestamp(value: datetime | None) -> str:
    """The daemon's text for ``value``; ``None`` is the zero time ("never")."""
    if value is None:
        return "0001-01-01T00:00:00Z"
    if value.tzinfo is None:
        raise ValueError("timestamps sent to the daemon must be timezone-aware")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def upload_headers(
    dialect: Dialect,
    *,
    public: bool,
    filename: str | None,
    properties: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Headers that carry an upload's settings, in the daemon's own names."""
    headers = {dialect.header("public"): "true" if public else "false"}
    if filename:
        headers[dialect.header("filename")] = filename
    if properties:
        headers[dialect.header("properties")] = urlencode(dict(properties))
    return headers


def image_post(
    source: Mapping[str, Any],
    *,
    public: bool,
    auto_update: bool,
    aliases: Sequence[Mapping[str, str]] | None = None,
) -> ApiRequest:
    """``POST /1.0/images`` asking the daemon to fetch an image from ``source`` itself."""
    body: dict[str, Any] = {"source": dict(source), "public": public, "auto_update": auto_update}
    if aliases:
        body["aliases"] = [dict(alias) for alias in aliases]
    return ApiRequest("POST", f"{API}/images", json=body)


def remote_image_source(
    server: str,
    protocol: str,
    *,
    alias: str | None = None,
    fingerprint: str | None = None,
    certificate: str | None = None,
    secret: str | None = None,
) -> dict[str, Any]:
    """A ``source`` for a pull from another image server (``simplestreams``, ``lxd``, ``incus``)."""
    source: dict[str, Any] = {"type": "image", "mode": "pull", "server": server}
    source["protocol"] = protocol
    if alias:
        source["alias"] = alias
    if fingerprint:
        source["fingerprint"] = fingerprint
    if certificate:
        source["certificate"] = certificate
    if secret:
        source["secret"] = secret
    return source


def image_put_body(record: Mapping[str, Any]) -> dict[str, Any]:
    """The writable fields of an image record, as ``PUT /1.0/images/<fp>`` takes them."""
    return {key: record[key] for key in WRITABLE_IMAGE_FIELDS if key in record}


#: What ``PUT /1.0/images/<fp>`` changes; everything else about an image is fixed.
WRITABLE_IMAGE_FIELDS = ("public", "auto_update", "properties", "expires_at", "profiles")

QCOW2_MAGIC = b"QFI\xfb"


def rootfs_part_name(first_bytes: bytes) -> str:
    """The multipart name of a split image's rootfs: ``rootfs.img`` for a VM disk (qcow2)."""
    return "rootfs.img" if first_bytes.startswith(QCOW2_MAGIC) else "rootfs"
