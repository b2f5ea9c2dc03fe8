"""Progress reports on long calls, against real daemons."""

from __future__ import annotations

import io
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lxdimages import Client, NotFound, OperationFailed, OperationTimeout
from lxdimages.progress import Progress, RichProgressBar
from lxdimages.simplestreams import Tree
from lxdimages.testing import free_port, write_split_image, write_unified_image

from .conftest import PKI, Daemons

MIB = 1024 * 1024


def check_stream(reports: list[Progress], stage: str, total: int) -> None:
    """Reports of one stage rise to exactly ``total`` and end with one final report."""
    mine = [r for r in reports if r.stage == stage]
    assert mine, f"no {stage} report among {reports}"
    assert [r.done for r in mine] == sorted(r.done for r in mine)
    assert mine[-1].finished and mine[-1].done == total
    assert [r for r in mine if r.finished] == [mine[-1]]
    assert all(r.total == total for r in mine)


@pytest.fixture
def big_image(tmp_path: Path) -> Path:
    return write_unified_image(tmp_path / "big.tar", payload_size=48 * MIB, compress=False)


def test_upload_and_export_progress(client: Client, big_image: Path, tmp_path: Path) -> None:
    reports: list[Progress] = []
    image = client.images.create(big_image, progress=reports.append)
    size = big_image.stat().st_size
    check_stream(reports, "upload", size)
    # rate-limited: far fewer reports than the 1 MiB chunks moved
    assert len(reports) < size // MIB
    reports.clear()
    out = tmp_path / "out"
    out.mkdir()
    image.export_to(out, progress=reports.append)
    check_stream(reports, "export", size)
    reports.clear()
    with image.export(progress=reports.append) as handle:
        assert handle.read(4)
    check_stream(reports, "export", size)


def test_split_upload_progress_counts_both_parts(client: Client, tmp_path: Path) -> None:
    metadata, rootfs = write_split_image(tmp_path, payload_size=8 * MIB)
    reports: list[Progress] = []
    client.images.create(rootfs, metadata=metadata, progress=reports.append)
    check_stream(reports, "upload", metadata.stat().st_size + rootfs.stat().st_size)


def test_relay_copy_progress(daemons: Daemons, big_image: Path) -> None:
    with daemons.lxd.client() as source, daemons.incus2.client() as target:
        image = source.images.create(big_image)
        reports: list[Progress] = []
        image.copy(target, wait=True, mode="relay", progress=reports.append)
        check_stream(reports, "relay", image.size)


def test_failing_calls_still_raise(client: Client, tmp_path: Path) -> None:
    reports: list[Progress] = []
    with pytest.raises(OperationFailed):
        client.images.create(b"not an image" * 1000, progress=reports.append)
    check_stream(reports, "upload", 12000)  # the bytes went; the daemon said no
    image = client.images.create(write_unified_image(tmp_path / "u.tar.gz"))
    image.delete(wait=True)
    reports.clear()
    with pytest.raises(NotFound):
        image.export_to(tmp_path, progress=reports.append)
    assert reports == []


@pytest.fixture(scope="session")
def slow_server(
    pki: PKI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """nginx serving a 48 MiB image at 16 MiB/s, so a daemon's download takes seconds."""
    work = tmp_path_factory.mktemp("slow")
    tree = Tree(work / "tree")
    image = tree.add(
        write_unified_image(work / "big.tar", payload_size=48 * MIB, compress=False,
                            properties={"os": "busybox", "release": "slow"}),
        aliases=["bb/slow"],
    )
    port = free_port()
    (work / "nginx.conf").write_text(
        f"daemon off; user root; pid {work}/nginx.pid; error_log {work}/error.log;\n"
        "events {}\n"
        f"http {{ access_log off; client_body_temp_path {work}; proxy_temp_path {work};\n"
        f"fastcgi_temp_path {work}; uwsgi_temp_path {work}; scgi_temp_path {work};\n"
        f"server {{ listen 127.0.0.1:{port} ssl; ssl_protocols TLSv1.2 TLSv1.3;\n"
        f"ssl_certificate {pki.server.cert_path}; ssl_certificate_key {pki.server.key_path};\n"
        f"root {tree.root}; limit_rate 16m; }} }}\n"
    )
    process = subprocess.Popen(["/usr/sbin/nginx", "-c", str(work / "nginx.conf")])
    url = f"https://127.0.0.1:{port}"
    for _ in range(100):
        if process.poll() is not None:
            raise RuntimeError((work / "error.log").read_text())
        try:
            if httpx.get(f"{url}/streams/v1/index.json", verify=False).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("nginx did not answer")
    yield url, image.fingerprint
    process.terminate()
    process.wait(timeout=10)


def test_daemon_download_progress(client: Client, slow_server: tuple[str, str], pki: PKI) -> None:
    url, fingerprint = slow_server
    reports: list[Progress] = []
    image = client.images.create_from_simplestreams(
        url, "bb/slow", wait=True, certificate=pki.server.cert_pem, progress=reports.append
    )
    assert image.fingerprint == fingerprint
    percents = [r.done for r in reports if not r.finished]
    assert len(percents) >= 2, reports  # several reports while the daemon downloads
    assert all(r.total == 100 for r in reports)
    assert reports[-1].finished and reports[-1].done == 100
    assert reports[0].stage in ("rootfs", "metadata", "image")


def test_rich_progress_bar_draws(tmp_path: Path) -> None:
    stream = io.StringIO()
    with RichProgressBar("Importing", stream=stream, force=True) as bar:
        for done in (0, 5 * MIB, 10 * MIB):
            bar(Progress("upload", done, 10 * MIB))
        bar(Progress("upload", 10 * MIB, 10 * MIB, finished=True))
    assert "Importing (upload)" in stream.getvalue()


def test_rich_progress_bar_silent_off_terminal() -> None:
    stream = io.StringIO()
    with RichProgressBar("Importing", stream=stream) as bar:
        bar(Progress("upload", 1, 2))
    assert stream.getvalue() == ""


def test_wait_timeout_leaves_the_operation_running(
    client: Client, slow_server: tuple[str, str], pki: PKI
) -> None:
    url, fingerprint = slow_server
    operation = client.images.create_from_simplestreams(
        url, "bb/slow", certificate=pki.server.cert_pem
    )
    with pytest.raises(OperationTimeout, match="still Running"):
        operation.wait(timeout=1)
    assert not operation.done
    assert operation.wait().fingerprint == fingerprint


def test_cancel_a_download(client: Client, slow_server: tuple[str, str], pki: PKI) -> None:
    url, fingerprint = slow_server
    operation = client.images.create_from_simplestreams(
        url, "bb/slow", certificate=pki.server.cert_pem
    )
    time.sleep(0.5)
    operation.refresh()
    assert operation.may_cancel, "the daemon lets an image download be cancelled"
    operation.cancel()
    with pytest.raises(OperationFailed) as raised:
        operation.wait(timeout=30)
    assert raised.value.operation is operation
    assert operation.status in ("Cancelled", "Failure")
    assert not client.images.exists(fingerprint)
