"""``Client``: one connection to one LXD or Incus daemon."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from . import exceptions as exc
from .aliases import AliasManager
from .images import ImageManager
from .operations import Operation
from .protocol import API, ApiRequest, Dialect, Envelope, parse_envelope
from .transport import (
    DEFAULT_TIMEOUT,
    Endpoint,
    TLSVerify,
    default_client_cert,
    make_http_client,
)

__all__ = ["Client"]


class Client:
    """A connection to an LXD or Incus daemon.

    ``endpoint`` is ``None`` for the local daemon's unix socket (found the way
    ``lxc`` and ``incus`` find it), a socket path, or ``https://host:port``.
    ``cert`` is the TLS client certificate and key (default: the user's
    ``lxc``/``incus`` one); ``verify`` is ``True`` (system roots), a PEM path
    (exactly that CA or pinned daemon certificate) or ``False`` (no check).
    ``project`` scopes every call to that project.
    """

    def __init__(
        self,
        endpoint: str | os.PathLike[str] | None = None,
        *,
        cert: tuple[str, str] | None = None,
        verify: TLSVerify = True,
        project: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        self.endpoint = Endpoint.parse(endpoint)
        if cert is None and not self.endpoint.is_unix:
            cert = default_client_cert()
        self.cert = cert
        self.verify = verify
        self.project = project
        self._http = make_http_client(self.endpoint, verify=verify, cert=cert, timeout=timeout)
        self._host_info: dict[str, Any] | None = None
        self.images = ImageManager(self)
        self.aliases = AliasManager(self)

    def __repr__(self) -> str:
        project = f" project={self.project!r}" if self.project else ""
        return f"<Client {self.endpoint}{project}>"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections to the daemon."""
        self._http.close()

    # -- requests ---------------------------------------------------------------------

    def _params(self, request: ApiRequest) -> dict[str, str]:
        params = dict(request.params)
        if self.project and "project" not in params:
            params["project"] = self.project
        return params

    def _describe(self, request: ApiRequest) -> str:
        return f"{request.method} {request.path} on {self.endpoint}"

    def request(
        self,
        request: ApiRequest,
        *,
        content: Any = None,
        files: Any = None,
        timeout: float | object | None = ...,
    ) -> Envelope:
        """Send one API request and parse the answer; raise the typed error on failure."""
        kwargs: dict[str, Any] = {}
        if timeout is not ...:
            kwargs["timeout"] = timeout
        try:
            response = self._http.request(
                request.method,
                request.path,
                params=self._params(request),
                json=request.json,
                content=content,
                files=files,
                headers=dict(request.headers),
                **kwargs,
            )
        except httpx.TransportError as error:
            raise self._connection_failed(error) from error
        return parse_envelope(
            response.status_code,
            response.content,
            self._describe(request),
            etag=response.headers.get("ETag", ""),
        )

    @contextmanager
    def stream(self, request: ApiRequest) -> Iterator[httpx.Response]:
        """Send a request whose answer is streamed (an export); raise on an error answer."""
        try:
            with self._http.stream(
                request.method,
                request.path,
                params=self._params(request),
                headers=dict(request.headers),
                timeout=httpx.Timeout(DEFAULT_TIMEOUT, read=300.0),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    parse_envelope(response.status_code, response.content, self._describe(request))
                yield response
        except httpx.TransportError as error:
            raise self._connection_failed(error) from error

    def _connection_failed(self, error: httpx.TransportError) -> exc.ClientConnectionFailed:
        return exc.ClientConnectionFailed(f"cannot talk to {self.endpoint}: {error}")

    def operation(self, data: Mapping[str, Any]) -> Operation[Any]:
        """An ``Operation`` object for an operation's JSON (as returned by the daemon)."""
        return Operation(self, data)

    def get_operation(self, operation_id: str) -> Operation[Any]:
        """Look an operation up by id (or its ``/1.0/operations/<id>`` path)."""
        operation_id = operation_id.rsplit("/", 1)[-1]
        envelope = self.request(ApiRequest("GET", f"{API}/operations/{operation_id}"))
        return Operation(self, envelope.metadata)

    # -- server ---------------------------------------------------------------------

    @property
    def host_info(self) -> dict[str, Any]:
        """``GET /1.0``: the server's configuration, environment and API extensions."""
        if self._host_info is None:
            self._host_info = dict(self.request(ApiRequest("GET", API)).metadata)
        return self._host_info

    def refresh_host_info(self) -> dict[str, Any]:
        self._host_info = None
        return self.host_info

    @property
    def dialect(self) -> Dialect:
        """Which daemon this is (LXD or Incus), so requests use its names."""
        return Dialect.from_host_info(self.host_info)

    @property
    def server(self) -> str:
        """``"lxd"`` or ``"incus"``."""
        return self.dialect.value

    @property
    def server_version(self) -> str:
        return str(self.host_info.get("environment", {}).get("server_version", ""))

    @property
    def api_extensions(self) -> list[str]:
        return list(self.host_info.get("api_extensions", []))

    def has_api_extension(self, name: str) -> bool:
        """Whether the daemon announces the API extension ``name``."""
        return name in self.api_extensions

    def assert_has_api_extension(self, name: str) -> None:
        if not self.has_api_extension(name):
            raise exc.LXDAPIExtensionNotAvailable(name)

    @property
    def trusted(self) -> bool:
        """Whether the daemon trusts this client (asked afresh each time)."""
        return self.refresh_host_info().get("auth") == "trusted"

    def authenticate(self, token_or_password: str) -> None:
        """Ask the daemon to trust this client's certificate, with a trust token
        (``lxc config trust add``) or, on LXD, the legacy trust password.
        """
        if self.endpoint.is_unix:
            return
        if self.cert is None:
            raise ValueError("authenticate needs a client certificate (cert=...)")
        if self.trusted:
            return
        # LXD 5.0 takes a token or password as "password", Incus a token as
        # "trust_token"; an untrusted client cannot always tell which daemon it
        # faces, and each ignores the other's field, so both are sent.
        body = {"type": "client", "password": token_or_password, "trust_token": token_or_password}
        self.request(ApiRequest("POST", f"{API}/certificates", json=body))
        if not self.trusted:
            raise exc.NotTrusted(
                "the daemon accepted the request but still does not trust this client",
                403,
                request=f"POST {API}/certificates on {self.endpoint}",
            )

    @property
    def server_certificate(self) -> str:
        """The daemon's own TLS certificate (PEM), as it announces it."""
        return str(self.host_info.get("environment", {}).get("certificate", ""))

    @property
    def addresses(self) -> list[str]:
        """The addresses the daemon listens on over HTTPS (``host:port``)."""
        return list(self.host_info.get("environment", {}).get("addresses") or [])
