"""Simplestreams against real peers: LXD 5.0 and Incus 6.0 daemons, the lxc and incus
clients, and Debian's nginx serving the same tree."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from lxdimages import Client, FingerprintMismatch
from lxdimages.exceptions import InvalidStream, StreamImageNotFound
from lxdimages.progress import Progress
from lxdimages.simplestreams import (
    MirrorFilter,
    ServerCertificate,
    SimplestreamsSource,
    StreamImage,
    Tree,
    TreeServer,
    mirror,
)
from lxdimages.testing import free_port, write_split_image, write_unified_image

from .conftest import PKI, Daemons

EXAMPLES = Path(__file__).parents[2] / "examples"


@dataclass
class Published:
    root: Path
    images: dict[str, StreamImage]  # by alias
    pinned: TreeServer  # self-signed certificate, pinned by the daemons
    trusted: TreeServer  # certificate from the test CA the daemons trust
    certificate: ServerCertificate


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[Published]:
    work = tmp_path_factory.mktemp("publish")
    tree = Tree(work / "tree")
    images = {
        "bb/unified": tree.add(
            write_unified_image(work / "u.tar.gz", properties={"os": "busybox", "release": "u"}),
            aliases=["bb/unified"],
        )
    }
    for alias, kwargs in (
        ("bb/split", {}),
        ("bb/squashfs", {"squashfs": True}),
        ("bb/vm", {"vm": True}),
    ):
        release = alias.split("/")[1]
        metadata, rootfs = write_split_image(
            work, properties={"os": "busybox", "release": release}, **kwargs  # type: ignore[arg-type]
        )
        images[alias] = tree.add(rootfs, metadata=metadata, aliases=[alias])
    certificate = ServerCertificate.self_signed(work / "cert", "127.0.0.1")
    trusted_cert = ServerCertificate(pki.server.cert_path, pki.server.key_path)
    with TreeServer(tree.root, certificate, port=0) as pinned, TreeServer(
        tree.root, trusted_cert, port=0
    ) as trusted:
        yield Published(tree.root, images, pinned, trusted, certificate)


@pytest.mark.parametrize("alias", ["bb/unified", "bb/split", "bb/squashfs"])
def test_daemon_imports_from_lxdimages_serve(
    client: Client, published: Published, alias: str
) -> None:
    image = client.images.create_from_simplestreams(
        published.pinned.url, alias, wait=True, certificate=published.certificate.pem
    )
    assert image.fingerprint == published.images[alias].fingerprint
    assert image.type == "container"
    assert image.properties["os"] == "busybox"


def test_daemon_imports_a_vm_image(client: Client, published: Published) -> None:
    expected = published.images["bb/vm"]
    assert expected.type == "virtual-machine"
    image = client.images.create_from_simplestreams(
        published.pinned.url, expected.fingerprint, wait=True,
        certificate=published.certificate.pem,
    )
    assert image.fingerprint == expected.fingerprint
    assert image.type == "virtual-machine"


def test_daemon_imports_from_the_direct_url(client: Client, published: Published) -> None:
    url = f"{published.trusted.url}/direct/bb/unified"
    head = httpx.head(url, verify=False)
    assert head.headers["LXD-Image-Hash"] == head.headers["Incus-Image-Hash"]
    image = client.images.create_from_url(url, wait=True)
    assert image.fingerprint == published.images["bb/unified"].fingerprint


def test_direct_url_refuses_split_and_unknown(published: Published) -> None:
    for name in ("bb/split", "no/such/image"):
        answer = httpx.head(f"{published.trusted.url}/direct/{name}", verify=False)
        assert answer.status_code == 404
        assert "LXD-Image-Hash" not in answer.headers


def test_server_refuses_paths_outside_the_tree(published: Published) -> None:
    (published.root / ".lxdimages.lock").touch()
    with httpx.Client(verify=False) as http:
        for path in ("/.lxdimages.lock", "/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd"):
            answer = http.get(published.trusted.url + path)
            assert answer.status_code in (403, 404), path
            assert b"root:" not in answer.content


def test_server_handles_many_clients_at_once(published: Published) -> None:
    image = published.images["bb/split"]
    file = image.rootfs
    assert file is not None
    url = f"{published.trusted.url}/{file.path}"

    def fetch(_: int) -> str:
        with httpx.Client(verify=False) as http:
            return hashlib.sha256(http.get(url).content).hexdigest()

    with ThreadPoolExecutor(16) as pool:
        digests = list(pool.map(fetch, range(64)))
    assert digests == [file.sha256] * 64


def test_range_requests_resume(published: Published) -> None:
    file = published.images["bb/unified"].metadata
    url = f"{published.trusted.url}/{file.path}"
    whole = httpx.get(url, verify=False).content
    tail = httpx.get(url, verify=False, headers={"Range": "bytes=100-"})
    assert tail.status_code == 206
    assert tail.content == whole[100:]


# -- the real command-line clients ----------------------------------------------------


@pytest.mark.parametrize("cli", ["lxc", "incus"])
def test_cli_clients_use_the_served_tree(
    cli: str, daemons: Daemons, published: Published, tmp_path: Path
) -> None:
    daemon = daemons.lxd if cli == "lxc" else daemons.incus
    conf = tmp_path / "conf"
    (conf / "servercerts").mkdir(parents=True)
    # What remote_add_commands() prints: pin the certificate, then add the remote.
    shutil.copyfile(published.certificate.cert_path, conf / "servercerts" / "mine.crt")
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        ("LXD_DIR" if cli == "lxc" else "INCUS_DIR"): str(daemon.directory),
        ("LXD_CONF" if cli == "lxc" else "INCUS_CONF"): str(conf),
    }

    def run(*args: str) -> str:
        done = subprocess.run([cli, *args], env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("remote", "add", "mine", published.pinned.url, "--protocol", "simplestreams")
    listing = run("image", "list", "mine:", "--format", "csv", "-c", "lf")
    for alias in ("bb/unified", "bb/split", "bb/squashfs"):
        assert published.images[alias].fingerprint[:12] in listing
    run("image", "copy", "mine:bb/squashfs", "local:", "--alias", "from-cli")
    with daemon.client() as client:
        image = client.images.get_by_alias("from-cli")
        assert image.fingerprint == published.images["bb/squashfs"].fingerprint


# -- Canonical's python-simplestreams ---------------------------------------------------

SSTREAM_QUERY = Path(sys.executable).with_name("sstream-query")


def sstream_query(location: str, *filters: str, env: dict[str, str] | None = None) -> list[dict[str, str]]:
    done = subprocess.run(
        [str(SSTREAM_QUERY), "--json", location, *filters],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_sstream_query_reads_the_tree(published: Published, pki: PKI) -> None:
    local = sstream_query(str(published.root / "streams/v1/index.json"))
    # served over HTTPS, checked against the test CA as any client would
    env = {**os.environ, "SSL_CERT_FILE": str(pki.bundle)}
    served = sstream_query(f"{published.trusted.url}/streams/v1/index.json", env=env)
    for rows in (local, served):
        by_path = {(row["item_name"], row["path"]): row for row in rows}
        for alias, image in published.images.items():
            for file in image.files:
                matching = [row for (_, path), row in by_path.items() if path == file.path]
                assert matching, f"{alias}: {file.path} not listed"
                assert all(row["sha256"] == file.sha256 for row in matching)
                assert all(int(row["size"]) == file.size for row in matching)
                assert all(alias in row["aliases"].split(",") for row in matching)
    vm_meta = sstream_query(
        str(published.root / "streams/v1/index.json"), "ftype=lxd.tar.xz", "release=vm"
    )
    assert [row["combined_disk-kvm-img_sha256"] for row in vm_meta] == [
        published.images["bb/vm"].fingerprint
    ]


# -- nginx serving the same tree ------------------------------------------------------


@pytest.fixture(scope="session")
def nginx(published: Published, pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's nginx serving the published tree with the README's server block."""
    work = tmp_path_factory.mktemp("nginx")
    port = free_port()
    block = (EXAMPLES / "nginx-simplestreams.conf").read_text()
    block = (
        block.replace("127.0.0.1:8443", f"127.0.0.1:{port}")
        .replace("/etc/lxdimages/server.crt", str(pki.server.cert_path))
        .replace("/etc/lxdimages/server.key", str(pki.server.key_path))
        .replace("/srv/images", str(published.root))
    )
    (work / "nginx.conf").write_text(
        # user root: pytest's temporary directories are private to root.
        f"daemon off; user root; pid {work}/nginx.pid; error_log {work}/error.log;\n"
        "worker_processes 2; events {}\n"
        f"http {{ access_log off; client_body_temp_path {work}; proxy_temp_path {work};\n"
        f"fastcgi_temp_path {work}; uwsgi_temp_path {work}; scgi_temp_path {work};\n"
        f"{block}\n}}\n"
    )
    process = subprocess.Popen(["/usr/sbin/nginx", "-c", str(work / "nginx.conf")])
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url + "/streams/v1/index.json", verify=False).raise_for_status()
            break
        except httpx.HTTPError as error:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                log = (work / "error.log").read_text() if (work / "error.log").exists() else ""
                raise RuntimeError(f"nginx does not serve the tree: {error}\n{log}") from None
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.mark.parametrize("alias", ["bb/unified", "bb/squashfs"])
def test_daemon_imports_from_nginx(
    client: Client, nginx: str, published: Published, pki: PKI, alias: str
) -> None:
    image = client.images.create_from_simplestreams(
        nginx, alias, wait=True, certificate=pki.server.cert_pem
    )
    assert image.fingerprint == published.images[alias].fingerprint


def test_nginx_hides_dot_files(nginx: str, published: Published) -> None:
    (published.root / ".lxdimages.lock").touch()
    assert httpx.get(f"{nginx}/.lxdimages.lock", verify=False).status_code == 404


# -- reading a server -----------------------------------------------------------------


def test_browse_a_server(published: Published) -> None:
    with SimplestreamsSource(published.pinned.url, verify=published.certificate.cert_path) as src:
        listed = {image.fingerprint: image for image in src.images()}
        for alias, image in published.images.items():
            seen = listed[image.fingerprint]
            assert alias in seen.aliases
            assert (seen.os, seen.architecture, seen.variant) == ("busybox", "x86_64", "default")
            assert seen.size == sum(f.size for f in image.files)
            assert seen.created_at is not None
        assert src.get("bb/vm", image_type="virtual-machine").type == "virtual-machine"
        with pytest.raises(StreamImageNotFound):
            src.get("bb/vm")  # no container under that alias
        with pytest.raises(StreamImageNotFound):
            src.get("bb/unified", architecture="s390x")


def test_wrong_certificate_for_a_server(published: Published, pki: PKI) -> None:
    with SimplestreamsSource(published.pinned.url, verify=pki.ca.cert_path) as src:
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
            src.images()


def test_download_verified(published: Published, tmp_path: Path) -> None:
    with SimplestreamsSource(published.trusted.url, verify=False) as src:
        image = src.get("bb/squashfs")
        paths = src.export_to(image, tmp_path)
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    assert digest.hexdigest() == image.fingerprint


@pytest.mark.parametrize("alias", ["bb/unified", "bb/split"])
def test_relay_from_a_server_into_a_daemon(
    client: Client, published: Published, alias: str
) -> None:
    with SimplestreamsSource(published.trusted.url, verify=False) as src:
        image = src.copy(src.get(alias), client, aliases=["relayed"])
    assert image.fingerprint == published.images[alias].fingerprint
    assert client.images.get_by_alias("relayed") == image


# -- mirroring ------------------------------------------------------------------------


def fetched_bytes(reports: list[Progress]) -> dict[str, int]:
    """Bytes downloaded per file, from the final progress report of each."""
    return {report.stage: report.done for report in reports if report.finished}


def test_mirror_filter_incremental_and_servable(
    published: Published, tmp_path: Path, daemons: Daemons
) -> None:
    target = tmp_path / "mirror"
    wanted = MirrorFilter(release={"split", "squashfs"}, architecture={"amd64"})
    counted: list[Progress] = []
    with SimplestreamsSource(published.trusted.url, verify=False) as src:
        first = mirror(src, target, wanted, progress=counted.append)
        expected = {published.images[a].fingerprint for a in ("bb/split", "bb/squashfs")}
        assert {image.fingerprint for image in first.images} == expected
        assert len(first.fetched) == 4 and not first.kept
        assert fetched_bytes(counted) == {
            f.path: f.size for a in ("bb/split", "bb/squashfs") for f in published.images[a].files
        }
        counted.clear()
        second = mirror(src, target, wanted, progress=counted.append)
        assert second.fetched == [] and len(second.kept) == 4 and counted == []
    cert = ServerCertificate.self_signed(tmp_path / "cert", "127.0.0.1")
    with TreeServer(target, cert, port=0) as server, daemons.incus.client() as client:
        image = client.images.create_from_simplestreams(
            server.url, "bb/squashfs", wait=True, certificate=cert.pem
        )
        assert image.fingerprint == published.images["bb/squashfs"].fingerprint


def test_mirror_resumes_an_interrupted_download(published: Published, tmp_path: Path) -> None:
    target = tmp_path / "mirror"
    image = published.images["bb/split"]
    rootfs = image.rootfs
    assert rootfs is not None
    # What an interrupted run leaves: the metadata verified in place, half the rootfs.
    source_file = published.root / rootfs.path
    partial = target / (rootfs.path + ".partial")
    partial.parent.mkdir(parents=True)
    half = rootfs.size // 2
    partial.write_bytes(source_file.read_bytes()[:half])
    shutil.copyfile(published.root / image.metadata.path, target / image.metadata.path)
    counted: list[Progress] = []
    with SimplestreamsSource(published.trusted.url, verify=False) as src:
        result = mirror(src, target, MirrorFilter(release={"split"}), progress=counted.append)
    assert result.resumed == [rootfs.path]
    assert result.kept == [image.metadata.path]
    assert fetched_bytes(counted) == {rootfs.path: rootfs.size - half}
    assert (target / rootfs.path).read_bytes() == source_file.read_bytes()
    assert not partial.exists()


def test_mirror_refuses_a_file_whose_hash_differs(published: Published, tmp_path: Path) -> None:
    source_root = tmp_path / "source"
    shutil.copytree(published.root, source_root, ignore=shutil.ignore_patterns(".*"))
    image = published.images["bb/unified"]
    tampered = source_root / image.metadata.path
    data = bytearray(tampered.read_bytes())
    data[-10] ^= 0xFF
    tampered.write_bytes(bytes(data))
    target = tmp_path / "mirror"
    with SimplestreamsSource(source_root) as src:
        with pytest.raises(FingerprintMismatch):
            mirror(src, target, MirrorFilter(release={"u"}))
        with pytest.raises(FingerprintMismatch):
            src.export_to(src.get("bb/unified"), tmp_path)
    assert not (target / "streams").exists()  # no index names what was not verified
    assert [p for p in target.rglob("*") if p.is_file() and p.name != ".lxdimages.lock"] == []


def test_missing_file_and_corrupt_index(published: Published, tmp_path: Path) -> None:
    source_root = tmp_path / "source"
    shutil.copytree(published.root, source_root, ignore=shutil.ignore_patterns(".*"))
    (source_root / published.images["bb/unified"].metadata.path).unlink()
    with SimplestreamsSource(source_root) as src:
        with pytest.raises(InvalidStream, match="missing"):
            src.export_to(src.get("bb/unified"), tmp_path)
    index = source_root / "streams/v1/images.json"
    index.write_bytes(index.read_bytes()[: index.stat().st_size // 2])
    with SimplestreamsSource(source_root) as src, pytest.raises(InvalidStream, match="JSON"):
        src.images()
