"""Where the daemon is and how to reach it: unix sockets, HTTPS, TLS trust and pinning."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx

from .exceptions import ClientConnectionFailed

__all__ = [
    "Endpoint",
    "TLSVerify",
    "default_client_cert",
    "find_local_socket",
    "make_http_client",
    "ssl_context",
]

#: ``True``: system roots; a path: exactly that CA or pinned certificate; ``False``: no check.
TLSVerify = bool | str | os.PathLike[str]

DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Endpoint:
    """A daemon's address: a unix socket path or an ``https://`` URL."""

    url: str  # the base URL requests are made against
    socket_path: str | None = None

    @property
    def is_unix(self) -> bool:
        return self.socket_path is not None

    def __str__(self) -> str:
        return f"unix:{self.socket_path}" if self.socket_path else self.url

    @classmethod
    def parse(cls, endpoint: str | os.PathLike[str] | None) -> Endpoint:
        """An endpoint from what a user passes to ``Client``; ``None`` is the local daemon."""
        if endpoint is None:
            return cls("http://unix.socket", find_local_socket())
        text = os.fspath(endpoint)
        if text.startswith("https://"):
            return cls(text.rstrip("/"))
        if text.startswith("http://"):
            raise ValueError("plain http:// is not spoken by LXD or Incus; use https://")
        if text.startswith("unix:"):
            text = text[len("unix:") :]
        return cls("http://unix.socket", text)


def _socket_candidates(kind: str | None) -> list[Path]:
    """Unix sockets in the order the daemons' own command-line tools look for them."""
    found: list[Path] = []
    if kind in (None, "lxd"):
        if lxd_dir := os.environ.get("LXD_DIR"):
            found.append(Path(lxd_dir) / "unix.socket")
        found += [Path("/var/snap/lxd/common/lxd/unix.socket"), Path("/var/lib/lxd/unix.socket")]
    if kind in (None, "incus"):
        if incus_dir := os.environ.get("INCUS_DIR"):
            found.append(Path(incus_dir) / "unix.socket")
        found.append(Path("/var/lib/incus/unix.socket"))
    return found


def find_local_socket(kind: str | None = None) -> str:
    """The first local daemon socket that exists (of ``kind`` "lxd" or "incus" if
    given), or ``ClientConnectionFailed``.
    """
    candidates = _socket_candidates(kind)
    for path in candidates:
        if path.exists():
            return str(path)
    tried = ", ".join(str(p) for p in candidates)
    raise ClientConnectionFailed(
        f"no local {kind or 'LXD or Incus'} socket found (looked at {tried})"
    )


def default_client_cert() -> tuple[str, str] | None:
    """The user's existing ``lxc``/``incus`` client certificate and key, if there is one."""
    home = Path.home()
    dirs = [
        os.environ.get("LXD_CONF"),
        str(home / "snap/lxd/common/config"),
        str(home / ".config/lxc"),
        os.environ.get("INCUS_CONF"),
        str(home / ".config/incus"),
    ]
    for directory in filter(None, dirs):
        crt, key = Path(directory) / "client.crt", Path(directory) / "client.key"
        if crt.is_file() and key.is_file():
            return str(crt), str(key)
    return None


def _is_pinned_leaf(pem_path: str) -> bool:
    """Whether the file holds exactly one non-CA certificate: a pinned daemon's own."""
    from cryptography import x509  # only pinning needs it: keep it off the import path

    data = Path(pem_path).read_bytes()
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as error:
        raise ValueError(f"{pem_path}: not a PEM certificate file ({error})") from None
    if len(certs) != 1:
        return False
    try:
        constraints = certs[0].extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return True
    return not constraints.value.ca


def ssl_context(verify: TLSVerify, cert: tuple[str, str] | None) -> ssl.SSLContext:
    """The TLS context for a remote daemon, built only from the arguments.

    The environment's CA-bundle variables never change what ``verify`` means:
    ``False`` checks nothing, a path trusts exactly that file.
    """
    if verify is False:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif verify is True:
        ctx = ssl.create_default_context()
    else:
        pem = os.fspath(verify)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile=pem)
        if _is_pinned_leaf(pem):
            # A pinned daemon certificate is its own trust anchor, whoever signed
            # it; daemons name their host in it, not the address a cluster member
            # listens on, so, as the Go client does for a pinned remote, the
            # certificate itself is the identity and host names are not compared.
            ctx.check_hostname = False
            ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        ctx.load_cert_chain(certfile=cert[0], keyfile=cert[1])
    return ctx


def make_http_client(
    endpoint: Endpoint,
    *,
    verify: TLSVerify = True,
    cert: tuple[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> httpx.Client:
    """An ``httpx.Client`` bound to the endpoint; proxies and CA variables are not read."""
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=4)
    if endpoint.socket_path is not None:
        transport = httpx.HTTPTransport(uds=endpoint.socket_path, limits=limits)
    else:
        transport = httpx.HTTPTransport(verify=ssl_context(verify, cert), limits=limits)
    return httpx.Client(
        base_url=endpoint.url, transport=transport, timeout=timeout, trust_env=False
    )
