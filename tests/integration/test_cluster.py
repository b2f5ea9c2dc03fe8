"""A real three-member LXD cluster on loopback addresses: images through any member."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lxdimages import Client, ClientConnectionFailed
from lxdimages.testing import ThrowawayDaemon, free_port, write_split_image, write_unified_image

from .conftest import PKI, Daemons


@dataclass
class Cluster:
    members: list[ThrowawayDaemon]
    urls: list[str]
    certificate: Path  # the cluster's certificate, shared by every member

    def client(self, index: int, pki: PKI) -> Client:
        return Client(self.urls[index], cert=pki.client.as_tuple(), verify=self.certificate)


def _lxd(daemon: ThrowawayDaemon, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        list(args), input=stdin, capture_output=True, text=True, timeout=120,
        env={**os.environ, "LXD_DIR": str(daemon.directory)},
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr}\n{daemon.log_tail()}")
    return done.stdout


@pytest.fixture(scope="module")
def cluster(pki: PKI) -> Iterator[Cluster]:
    members = [ThrowawayDaemon("lxd") for _ in range(3)]
    addresses = [f"127.0.0.1{n}:{free_port(f'127.0.0.1{n}')}" for n in (1, 2, 3)]
    try:
        for member in members:
            member.start()
        _lxd(
            members[0], "lxd", "init", "--preseed",
            stdin=f"config:\n  core.https_address: {addresses[0]}\n"
            "cluster:\n  server_name: m1\n  enabled: true\n",
        )
        for n, (member, address) in enumerate(zip(members[1:], addresses[1:], strict=True), 2):
            token = _lxd(members[0], "lxc", "cluster", "add", f"m{n}").strip().splitlines()[-1]
            _lxd(
                member, "lxd", "init", "--preseed",
                stdin=f"cluster:\n  enabled: true\n  server_name: m{n}\n"
                f"  server_address: {address}\n  cluster_token: {token}\n",
            )
        members[0].trust(pki.client.cert_pem)
        yield Cluster(
            members, [f"https://{a}" for a in addresses], members[0].directory / "cluster.crt"
        )
    finally:
        for member in reversed(members):
            member.stop()


@pytest.fixture
def clean_cluster(cluster: Cluster) -> Iterator[Cluster]:
    yield cluster
    with cluster.members[0].client() as client:
        for image in client.images.all():
            image.delete(wait=True)


def test_an_image_through_any_member(clean_cluster: Cluster, pki: PKI, tmp_path: Path) -> None:
    cluster = clean_cluster
    path = write_unified_image(tmp_path / "u.tar.gz")
    with cluster.client(0, pki) as first:
        assert first.host_info["environment"]["server_clustered"] is True
        image = first.images.create(path, aliases=["clustered"], public=True)
    for index in (1, 2):
        with cluster.client(index, pki) as member:
            seen = member.images.get_by_alias("clustered")
            assert seen.fingerprint == image.fingerprint and seen.public is True
            out = tmp_path / f"out{index}"
            out.mkdir()
            (exported,) = seen.export_to(out)
            assert hashlib.sha256(exported.read_bytes()).hexdigest() == image.fingerprint
    with cluster.client(2, pki) as last:
        last.images.get(image.fingerprint).delete(wait=True)
    with cluster.client(0, pki) as first:
        assert first.images.all() == []


def test_copies_into_and_out_of_a_cluster(
    clean_cluster: Cluster, daemons: Daemons, pki: PKI, tmp_path: Path
) -> None:
    cluster = clean_cluster
    metadata, rootfs = write_split_image(tmp_path)
    with daemons.lxd.client() as standalone, cluster.client(1, pki) as member:
        image = standalone.images.create(rootfs, metadata=metadata, aliases=["split"])
        into = image.copy(member, wait=True)  # unix-socket source: relay into the cluster
        assert into.fingerprint == image.fingerprint
        with daemons.incus.client() as incus:
            out = into.copy(incus, wait=True, mode="pull")  # Incus pulls from a cluster member
            assert out.fingerprint == image.fingerprint
            assert incus.images.get_by_alias("split") == out


def test_a_member_with_another_pinned_certificate_is_refused(
    cluster: Cluster, daemons: Daemons, pki: PKI
) -> None:
    with Client(
        cluster.urls[1], cert=pki.client.as_tuple(), verify=daemons.lxd2.directory / "server.crt"
    ) as client, pytest.raises(ClientConnectionFailed, match="CERTIFICATE_VERIFY_FAILED"):
        client.images.all()
