"""Endpoints and TLS contexts, built from the arguments alone."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from support.pki import make_ca, make_self_signed

from lxdimages.exceptions import ClientConnectionFailed
from lxdimages.transport import Endpoint, find_local_socket, ssl_context


def test_endpoint_parsing(tmp_path: Path) -> None:
    assert Endpoint.parse("https://h:8443/").url == "https://h:8443"
    assert not Endpoint.parse("https://h:8443").is_unix
    unix = Endpoint.parse(tmp_path / "s")
    assert unix.socket_path == str(tmp_path / "s")
    assert str(unix) == f"unix:{tmp_path / 's'}"
    assert Endpoint.parse("unix:/x/y").socket_path == "/x/y"
    with pytest.raises(ValueError, match="https"):
        Endpoint.parse("http://h:8443")


def test_local_socket_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lxd, incus = tmp_path / "lxd", tmp_path / "incus"
    lxd.mkdir()
    incus.mkdir()
    (incus / "unix.socket").touch()
    monkeypatch.setenv("LXD_DIR", str(lxd))
    monkeypatch.setenv("INCUS_DIR", str(incus))
    if not any(Path(p).exists() for p in ("/var/snap/lxd/common/lxd/unix.socket", "/var/lib/lxd/unix.socket")):
        assert find_local_socket() == str(incus / "unix.socket")
    (lxd / "unix.socket").touch()
    assert find_local_socket() == str(lxd / "unix.socket")


def test_no_local_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LXD_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("INCUS_DIR", str(tmp_path / "b"))
    if any(Path(p).exists() for p in ("/var/snap/lxd/common/lxd/unix.socket", "/var/lib/lxd/unix.socket", "/var/lib/incus/unix.socket")):
        pytest.skip("a system daemon socket exists on this machine")
    with pytest.raises(ClientConnectionFailed, match="no local LXD or Incus socket"):
        find_local_socket()


def test_verify_false_checks_nothing_whatever_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, str(tmp_path / "missing.pem"))
    ctx = ssl_context(False, None)
    assert ctx.verify_mode == ssl.CERT_NONE
    assert ctx.check_hostname is False


def test_verify_true_checks_host_and_chain() -> None:
    ctx = ssl_context(True, None)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is True


def test_pinned_self_signed_certificate(tmp_path: Path) -> None:
    pinned = make_self_signed(tmp_path, "daemon", "root@host")
    ctx = ssl_context(pinned.cert_path, None)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is False  # identity is the pinned certificate itself
    assert ctx.verify_flags & ssl.VERIFY_X509_PARTIAL_CHAIN
    assert ctx.cert_store_stats()["x509"] == 1


def test_ca_file_keeps_hostname_checks(tmp_path: Path) -> None:
    ca, _, _ = make_ca(tmp_path)
    # a CA is self-signed too, but a CA bundle must still check host names
    ctx = ssl_context(ca.cert_path, None)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is True
    assert ctx.cert_store_stats()["x509_ca"] == 1


def test_not_a_certificate_file(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("hello")
    with pytest.raises((ValueError, ssl.SSLError)):
        ssl_context(bogus, None)
