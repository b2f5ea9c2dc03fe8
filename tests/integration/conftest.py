"""Session harness: real LXD and Incus daemons in temporary directories, and an image server.

Started once per test session, stopped at its end. A daemon that cannot start
fails the tests that need it with the daemon's log; it never turns into a skip.
"""

from __future__ import annotations

import secrets
import shutil
import ssl
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.pki import KeyPair, make_ca, make_self_signed, make_server_cert

from lxdimages import Client
from lxdimages.protocol import API, ApiRequest
from lxdimages.simplestreams import ServerCertificate, StreamImage, Tree, TreeServer
from lxdimages.testing import ThrowawayDaemon, write_unified_image


@dataclass
class PKI:
    ca: KeyPair
    server: KeyPair  # the image server's, signed by the CA
    pinned_server: KeyPair  # self-signed: trusted only where pinned
    client: KeyPair  # trusted by the HTTPS daemons
    stranger: KeyPair  # trusted by nobody
    bundle: Path  # system roots + the test CA, for the daemons' SSL_CERT_FILE


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    directory = tmp_path_factory.mktemp("pki")
    ca, ca_cert, ca_key = make_ca(directory)
    server = make_server_cert(directory, ca_cert, ca_key, "127.0.0.1")
    bundle = directory / "bundle.pem"
    system = ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"
    system_text = Path(system).read_text() if Path(system).exists() else ""
    bundle.write_text(system_text + "\n" + ca.cert_pem)
    return PKI(
        ca=ca,
        server=server,
        pinned_server=make_self_signed(directory, "pinned-server", "pinned image server"),
        client=make_self_signed(directory, "client", "lxdimages-client"),
        stranger=make_self_signed(directory, "stranger", "stranger"),
        bundle=bundle,
    )


@dataclass
class Daemons:
    lxd: ThrowawayDaemon  # unix socket only
    incus: ThrowawayDaemon  # unix socket, and HTTPS (so Incus can be a pull source)
    lxd2: ThrowawayDaemon  # HTTPS, with a certificate from the test CA: the remote LXD
    incus2: ThrowawayDaemon  # unix socket only

    def all(self) -> list[ThrowawayDaemon]:
        return [self.lxd, self.incus, self.lxd2, self.incus2]


@pytest.fixture(scope="session")
def daemons(pki: PKI) -> Iterator[Daemons]:
    # The daemons trust the test CA (Go honours SSL_CERT_FILE) so that URL
    # sources on the local image server verify like any public one.
    env = {"SSL_CERT_FILE": str(pki.bundle)}
    started = Daemons(
        lxd=ThrowawayDaemon("lxd", environment=env),
        incus=ThrowawayDaemon("incus", environment=env),
        lxd2=ThrowawayDaemon("lxd", environment=env),
        incus2=ThrowawayDaemon("incus", environment=env),
    )
    # lxd2 presents a certificate signed by the test CA, so verify=<CA file> is
    # tested with host-name checks; the others keep their own self-signed ones.
    shutil.copyfile(pki.server.cert_path, started.lxd2.directory / "server.crt")
    shutil.copyfile(pki.server.key_path, started.lxd2.directory / "server.key")
    try:
        with ThreadPoolExecutor(4) as pool:
            for future in [pool.submit(d.start) for d in started.all()]:
                future.result()
        for daemon in (started.incus, started.lxd2):
            daemon.listen_https()
            daemon.trust(pki.client.cert_pem)
        yield started
    finally:
        for daemon in started.all():
            daemon.stop()


@dataclass
class ServedTree:
    """A fresh simplestreams tree, published with ``Tree`` and served by ``TreeServer``
    at a URL of its own: the daemons cache a server's index by URL.
    """

    root: Path
    certificate: KeyPair
    server: TreeServer | None = None

    def publish(self, image: Path, name: str) -> StreamImage:
        """Publish ``image`` as product ``name``, alias ``name/1``; serve on first use."""
        published = Tree(self.root).add(image, os_name=name, release="1", aliases=[f"{name}/1"])
        if self.server is None:
            certificate = ServerCertificate(self.certificate.cert_path, self.certificate.key_path)
            self.server = TreeServer(self.root, certificate, port=0).start()
        return published

    @property
    def url(self) -> str:
        assert self.server is not None, "publish an image first"
        return self.server.url


def _served(root: Path, certificate: KeyPair) -> Iterator[ServedTree]:
    served = ServedTree(root, certificate)
    yield served
    if served.server is not None:
        served.server.stop()


@pytest.fixture
def tree(pki: PKI, tmp_path: Path) -> Iterator[ServedTree]:
    """A tree served with the CA-signed certificate the daemons trust like a public one."""
    yield from _served(tmp_path / "tree", pki.server)


@pytest.fixture
def pinned_tree(pki: PKI, tmp_path: Path) -> Iterator[ServedTree]:
    """A tree served with a self-signed certificate: reachable only when pinned."""
    yield from _served(tmp_path / "pinned-tree", pki.pinned_server)


def _purge(daemon: ThrowawayDaemon) -> None:
    with daemon.client() as client:
        for project in ("default", *_extra_projects(client)):
            scoped = Client(daemon.socket_path, project=project)
            for alias in scoped.aliases.all():
                scoped.aliases.delete(alias.name)
            for image in scoped.images.all():
                image.delete(wait=True)
            scoped.close()


def _extra_projects(client: Client) -> list[str]:
    names = client.request(ApiRequest("GET", f"{API}/projects")).metadata or []
    return [name.rsplit("/", 1)[-1] for name in names if not name.endswith("/default")]


@pytest.fixture(autouse=True)
def _clean_daemons(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts and ends with daemons that hold no image and no alias."""
    yield
    if "daemons" in request.fixturenames:
        for daemon in request.getfixturevalue("daemons").all():
            _purge(daemon)


@pytest.fixture(params=["lxd", "incus"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def daemon(daemons: Daemons, kind: str) -> ThrowawayDaemon:
    """The LXD or the Incus daemon (each test runs against both)."""
    return daemons.lxd if kind == "lxd" else daemons.incus


@pytest.fixture
def client(daemon: ThrowawayDaemon) -> Iterator[Client]:
    with daemon.client() as c:
        yield c


@pytest.fixture
def unified(tmp_path: Path) -> Path:
    return write_unified_image(tmp_path / f"image-{secrets.token_hex(4)}.tar.gz")


@pytest.fixture(autouse=True)
def _hostile_ca_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point the CA-bundle variables at a bogus file: the client must not read them."""
    bogus = tmp_path / "not-a-bundle.pem"
    bogus.write_text("not a certificate\n")
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, str(bogus))
