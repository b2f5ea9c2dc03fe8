"""Daemon-side downloads and copies between daemons: simplestreams, URL, pull, relay."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxdimages import (
    Client,
    Conflict,
    FingerprintMismatch,
    Image,
    LXDAPIException,
    Operation,
    OperationFailed,
)
from lxdimages.testing import ThrowawayDaemon, write_split_image, write_unified_image

from .conftest import PKI, Daemons, ServedTree


def fingerprints(client: Client) -> set[str]:
    return {image.fingerprint for image in client.images.all()}


# -- simplestreams and URL -------------------------------------------------------------


def publish_unique(tree: ServedTree, tmp_path: Path) -> tuple[str, str]:
    """Publish a fresh image under a product of its own; return its alias and fingerprint."""
    name = f"os{secrets.token_hex(3)}"
    image = write_unified_image(tmp_path / f"{name}.tar.gz", properties={"os": name, "release": "1"})
    return f"{name}/1", tree.publish(image, name).fingerprint


def test_create_from_simplestreams_with_pinned_certificate(
    client: Client, pinned_tree: ServedTree, pki: PKI, tmp_path: Path
) -> None:
    alias, fingerprint = publish_unique(pinned_tree, tmp_path)
    operation = client.images.create_from_simplestreams(
        pinned_tree.url, alias, certificate=pki.pinned_server.cert_pem
    )
    assert isinstance(operation, Operation)
    created = operation.wait(timeout=120)
    assert isinstance(created, Image)
    assert created.fingerprint == fingerprint
    assert created.update_source is not None
    assert created.update_source["server"] == pinned_tree.url
    assert created.update_source["protocol"] == "simplestreams"


def test_create_from_simplestreams_public_auto_update(
    client: Client, pinned_tree: ServedTree, pki: PKI, tmp_path: Path
) -> None:
    alias, fingerprint = publish_unique(pinned_tree, tmp_path)
    created = client.images.create_from_simplestreams(
        pinned_tree.url,
        alias,
        public=True,
        auto_update=True,
        wait=True,
        certificate=pki.pinned_server.cert_pem,
    )
    assert created.fingerprint == fingerprint
    assert created.public is True
    assert created.auto_update is True


def test_simplestreams_with_wrong_pinned_certificate(
    client: Client, pinned_tree: ServedTree, daemons: Daemons,
    tmp_path: Path,
) -> None:
    alias, _ = publish_unique(pinned_tree, tmp_path)
    wrong = daemons.lxd2.server_certificate()
    with pytest.raises(LXDAPIException) as raised:
        client.images.create_from_simplestreams(
            pinned_tree.url, alias, wait=True, certificate=wrong
        )
    assert raised.value.message
    assert fingerprints(client) == set()


def test_simplestreams_unknown_alias(
    client: Client, pinned_tree: ServedTree, pki: PKI, tmp_path: Path
) -> None:
    publish_unique(pinned_tree, tmp_path)
    with pytest.raises(LXDAPIException) as raised:
        client.images.create_from_simplestreams(
            pinned_tree.url, "no/such/alias", wait=True, certificate=pki.pinned_server.cert_pem
        )
    assert "found" in raised.value.message  # "couldn't be found" / "not found"
    assert fingerprints(client) == set()


def test_create_from_url(client: Client, tree: ServedTree, tmp_path: Path) -> None:
    alias, fingerprint = publish_unique(tree, tmp_path)
    created = client.images.create_from_url(f"{tree.url}/direct/{alias}", wait=True)
    assert created.fingerprint == fingerprint


def test_create_from_url_that_does_not_exist(
    client: Client, tree: ServedTree, tmp_path: Path
) -> None:
    publish_unique(tree, tmp_path)
    with pytest.raises(LXDAPIException) as raised:
        client.images.create_from_url(f"{tree.url}/direct/missing/1", wait=True)
    assert raised.value.message
    assert fingerprints(client) == set()


# -- copy -----------------------------------------------------------------------------

# (source, target, mode the copy must take): every pairing of LXD and Incus, by
# pull where the source listens on HTTPS, by relay where it is only a unix socket.
COPIES = [
    ("lxd", "lxd2", "relay"),  # LXD -> LXD, source on a unix socket
    ("lxd2", "lxd", "pull"),  # LXD -> LXD over HTTPS
    ("incus", "incus2", "pull"),  # Incus -> Incus: unix client, the daemon listens on HTTPS
    ("incus2", "incus", "relay"),  # Incus -> Incus, source on a unix socket
    ("lxd2", "incus", "pull"),  # LXD -> Incus
    ("incus", "lxd", "pull"),  # Incus -> LXD
    ("lxd", "incus", "relay"),  # LXD -> Incus, unix socket
    ("incus2", "lxd", "relay"),  # Incus -> LXD, unix socket
]


def _client(daemons: Daemons, name: str, pki: PKI, tmp_path: Path) -> Client:
    daemon: ThrowawayDaemon = getattr(daemons, name)
    if name == "lxd2":
        pinned = tmp_path / f"{name}.crt"
        pinned.write_text(daemon.server_certificate())
        return Client(daemon.https_url, cert=pki.client.as_tuple(), verify=pinned)
    return daemon.client()


@pytest.mark.parametrize(("source_name", "target_name", "expected_mode"), COPIES)
@pytest.mark.parametrize("public", [False, True])
def test_copy_between_daemons(
    daemons: Daemons, pki: PKI, tmp_path: Path,
    source_name: str, target_name: str, expected_mode: str, public: bool,
) -> None:
    with _client(daemons, source_name, pki, tmp_path) as source, _client(
        daemons, target_name, pki, tmp_path
    ) as target:
        image = source.images.create(
            write_unified_image(tmp_path / "c.tar.gz"), public=public, aliases=["copied"]
        )
        copied = image.copy(target, wait=True, mode=expected_mode)  # type: ignore[call-overload]
        assert copied.fingerprint == image.fingerprint
        assert copied.public is public
        assert [a["name"] for a in copied.aliases] == ["copied"]
        assert target.images.get_by_alias("copied") == copied
        assert fingerprints(source) == {image.fingerprint}  # the source keeps its image


@pytest.mark.parametrize(("source_name", "target_name", "expected_mode"), COPIES[:4])
def test_copy_auto_mode(
    daemons: Daemons, pki: PKI, tmp_path: Path,
    source_name: str, target_name: str, expected_mode: str,
) -> None:
    with _client(daemons, source_name, pki, tmp_path) as source, _client(
        daemons, target_name, pki, tmp_path
    ) as target:
        image = source.images.create(write_unified_image(tmp_path / "c.tar.gz"))
        assert image.copy_mode() == expected_mode
        operation = image.copy(target, public=True)
        assert isinstance(operation, Operation)
        copied = operation.wait(timeout=120)
        assert copied.fingerprint == image.fingerprint
        assert copied.public is True


@pytest.mark.parametrize("vm", [False, True])
@pytest.mark.parametrize(("source_name", "target_name", "expected_mode"), [COPIES[0], COPIES[5]])
def test_copy_split_image(
    daemons: Daemons, pki: PKI, tmp_path: Path,
    source_name: str, target_name: str, expected_mode: str, vm: bool,
) -> None:
    metadata, rootfs = write_split_image(tmp_path, vm=vm)
    with _client(daemons, source_name, pki, tmp_path) as source, _client(
        daemons, target_name, pki, tmp_path
    ) as target:
        image = source.images.create(rootfs, metadata=metadata)
        copied = image.copy(target, wait=True, mode=expected_mode)  # type: ignore[call-overload]
        assert copied.fingerprint == image.fingerprint
        assert copied.type == ("virtual-machine" if vm else "container")
        out = tmp_path / "out"
        out.mkdir()
        assert len(copied.export_to(out)) == 2


def test_copy_with_alias_taken_on_target_copies_nothing(
    daemons: Daemons, tmp_path: Path
) -> None:
    with daemons.lxd.client() as source, daemons.incus.client() as target:
        target.images.create(write_unified_image(tmp_path / "t.tar.gz"), aliases=["shared"])
        before = fingerprints(target)
        image = source.images.create(write_unified_image(tmp_path / "s.tar.gz"), aliases=["shared"])
        with pytest.raises(Conflict):
            image.copy(target, wait=True)
        assert fingerprints(target) == before


def test_pull_from_a_unix_only_daemon_is_refused(daemons: Daemons, tmp_path: Path) -> None:
    with daemons.lxd.client() as source, daemons.incus.client() as target:
        image = source.images.create(write_unified_image(tmp_path / "s.tar.gz"))
        with pytest.raises(ValueError, match="HTTPS"):
            image.copy(target, mode="pull")
        assert fingerprints(target) == set()


def test_relay_of_a_corrupted_source_leaves_nothing(daemons: Daemons, tmp_path: Path) -> None:
    with daemons.lxd.client() as source, daemons.incus.client() as target:
        image = source.images.create(write_unified_image(tmp_path / "s.tar.gz"))
        stored = daemons.lxd.directory / "images" / image.fingerprint
        data = bytearray(stored.read_bytes())
        data[len(data) // 3] ^= 0xFF
        stored.write_bytes(bytes(data))
        with pytest.raises(FingerprintMismatch) as raised:
            image.copy(target, wait=True, mode="relay")
        assert raised.value.expected == image.fingerprint
        assert fingerprints(target) == set()


@pytest.fixture
def isolated_lxd() -> Iterator[ThrowawayDaemon]:
    """An LXD in a network namespace of its own: it cannot reach the other daemons'
    HTTPS addresses (its 127.0.0.1 is not theirs), while its socket is ours."""
    namespace = f"lxdimages-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    subprocess.run(["ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up"], check=True)
    daemon = ThrowawayDaemon("lxd", network_namespace=namespace)
    try:
        yield daemon.start()
    finally:
        daemon.stop()
        subprocess.run(["ip", "netns", "del", namespace], check=False)


def test_auto_copy_relays_when_the_target_cannot_reach_the_source(
    daemons: Daemons, pki: PKI, tmp_path: Path, isolated_lxd: ThrowawayDaemon
) -> None:
    with _client(daemons, "lxd2", pki, tmp_path) as source, isolated_lxd.client() as target:
        image = source.images.create(write_unified_image(tmp_path / "s.tar.gz"), aliases=["far"])
        assert image.copy_mode() == "pull"
        with pytest.raises(OperationFailed):
            image.copy(target, wait=True, mode="pull")  # the target really cannot pull
        assert fingerprints(target) == set()
        copied = image.copy(target, wait=True)  # auto: the pull fails, the relay succeeds
        assert copied.fingerprint == image.fingerprint
        assert target.images.get_by_alias("far") == copied
