"""Client against real daemons: endpoints, TLS trust and pinning, dialects, trust."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from lxdimages import (
    Client,
    ClientConnectionFailed,
    Dialect,
    NotTrusted,
)
from lxdimages.protocol import API, ApiRequest
from lxdimages.testing import ThrowawayDaemon, free_port

from .conftest import PKI, Daemons


def test_unix_socket_client_knows_its_daemon(client: Client, kind: str) -> None:
    assert client.server == kind
    assert client.dialect is (Dialect.INCUS if kind == "incus" else Dialect.LXD)
    assert client.trusted is True
    assert client.has_api_extension("image_create_aliases")
    assert not client.has_api_extension("no_such_extension_anywhere")
    expected = "5.0" if kind == "lxd" else "6.0"
    assert client.server_version.startswith(expected)


def test_local_socket_found_from_environment(
    daemon: ThrowawayDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    variable = "LXD_DIR" if daemon.kind == "lxd" else "INCUS_DIR"
    monkeypatch.delenv("LXD_DIR", raising=False)
    monkeypatch.setenv(variable, str(daemon.directory))
    with Client() as client:
        assert client.endpoint.socket_path == daemon.socket_path
        assert client.server == daemon.kind


def test_missing_socket_is_a_connection_error(tmp_path: Path) -> None:
    with Client(tmp_path / "nothing.socket") as client, pytest.raises(ClientConnectionFailed):
        client.images.all()


def test_unreachable_https_endpoint(pki: PKI) -> None:
    url = f"https://127.0.0.1:{free_port()}"
    with Client(url, cert=pki.client.as_tuple(), verify=False) as client:
        with pytest.raises(ClientConnectionFailed, match="127.0.0.1"):
            client.images.all()


@pytest.fixture(params=["lxd2", "incus"])
def remote(request: pytest.FixtureRequest, daemons: Daemons) -> ThrowawayDaemon:
    """A daemon listening on HTTPS that trusts the test client certificate."""
    return getattr(daemons, request.param)  # type: ignore[no-any-return]


def test_https_with_pinned_certificate(remote: ThrowawayDaemon, pki: PKI, tmp_path: Path) -> None:
    pinned = tmp_path / "server.crt"
    pinned.write_text(remote.server_certificate())
    with Client(remote.https_url, cert=pki.client.as_tuple(), verify=pinned) as client:
        assert client.trusted
        assert client.server == remote.kind
        assert client.images.all() == []


def test_verify_with_a_ca_file(daemons: Daemons, pki: PKI) -> None:
    with Client(daemons.lxd2.https_url, cert=pki.client.as_tuple(), verify=pki.ca.cert_path) as c:
        assert c.trusted
    # The same CA does not vouch for a name the certificate does not carry.
    url = daemons.lxd2.https_url.replace("127.0.0.1", "localhost")
    with Client(url, cert=pki.client.as_tuple(), verify=pki.ca.cert_path) as client:
        with pytest.raises(ClientConnectionFailed, match="CERTIFICATE_VERIFY_FAILED"):
            client.host_info  # noqa: B018


def test_wrong_pinned_certificate_is_refused(
    remote: ThrowawayDaemon, pki: PKI, daemons: Daemons, tmp_path: Path
) -> None:
    other = daemons.lxd2 if remote is daemons.incus else daemons.incus
    pinned = tmp_path / "other.crt"
    pinned.write_text(other.server_certificate())
    with Client(remote.https_url, cert=pki.client.as_tuple(), verify=pinned) as client:
        with pytest.raises(ClientConnectionFailed, match="CERTIFICATE_VERIFY_FAILED"):
            client.images.all()


def test_system_roots_refuse_a_self_signed_daemon(remote: ThrowawayDaemon, pki: PKI) -> None:
    with Client(remote.https_url, cert=pki.client.as_tuple()) as client:
        with pytest.raises(ClientConnectionFailed, match="CERTIFICATE_VERIFY_FAILED"):
            client.host_info  # noqa: B018


def test_verify_false_ignores_the_environment(
    remote: ThrowawayDaemon, pki: PKI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The harness already points REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE at a bogus file;
    # SSL_CERT_FILE too, here: verify=False must mean no check at all.
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with Client(remote.https_url, cert=pki.client.as_tuple(), verify=False) as client:
        assert client.trusted


def test_untrusted_client_gets_not_trusted(
    remote: ThrowawayDaemon, pki: PKI, unified: Path
) -> None:
    with Client(remote.https_url, cert=pki.stranger.as_tuple(), verify=False) as stranger:
        assert stranger.trusted is False
        with pytest.raises(NotTrusted) as raised:
            stranger.images.create(unified)
        assert raised.value.status_code == 403
        assert raised.value.message  # the daemon's own words
    with remote.client() as local:
        assert local.images.all() == []


def _trust_token(daemon: ThrowawayDaemon, name: str) -> str:
    """A trust token, made the way ``lxc config trust add`` / ``incus config trust add`` do."""
    with daemon.client() as client:
        envelope = client.request(
            ApiRequest("POST", f"{API}/certificates", json={"name": name, "type": "client", "token": True})
        )
        meta = envelope.metadata["metadata"]
    token = {
        "client_name": name,
        "fingerprint": meta["fingerprint"],
        "addresses": meta["addresses"],
        "secret": meta["secret"],
        "expires_at": meta.get("expiresAt", "0001-01-01T00:00:00Z"),
    }
    return base64.b64encode(json.dumps(token).encode()).decode()


def test_authenticate_with_a_trust_token(
    remote: ThrowawayDaemon, pki: PKI, tmp_path: Path
) -> None:
    from support.pki import make_self_signed

    newcomer = make_self_signed(tmp_path, "newcomer", "newcomer")
    token = _trust_token(remote, "newcomer")
    with Client(remote.https_url, cert=newcomer.as_tuple(), verify=False) as client:
        assert client.trusted is False
        client.authenticate(token)
        assert client.trusted is True
        assert client.images.all() == []


def test_authenticate_with_a_wrong_token_fails(remote: ThrowawayDaemon, tmp_path: Path) -> None:
    from support.pki import make_self_signed

    newcomer = make_self_signed(tmp_path, "newcomer2", "newcomer2")
    with Client(remote.https_url, cert=newcomer.as_tuple(), verify=False) as client:
        with pytest.raises(NotTrusted):
            client.authenticate("not-a-valid-token")
        assert client.trusted is False
