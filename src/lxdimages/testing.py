"""Throwaway LXD and Incus daemons and test images, for tests, demos and benchmarks.

``ThrowawayDaemon`` runs a real daemon in a temporary directory (never the
system's), reachable on its own unix socket and, on request, on a loopback
HTTPS address; ``stop()`` shuts it down and removes every file it made.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Literal

from .client import Client
from .exceptions import ClientConnectionFailed, LXDImagesError
from .protocol import API, ApiRequest

__all__ = [
    "DaemonStartError",
    "ThrowawayDaemon",
    "free_port",
    "write_split_image",
    "write_unified_image",
]

DaemonKind = Literal["lxd", "incus"]

_BINARIES = {"lxd": ("lxd", "/usr/bin/lxd"), "incus": ("incusd", "/usr/libexec/incus/incusd")}
_DIR_VARIABLE = {"lxd": "LXD_DIR", "incus": "INCUS_DIR"}


class DaemonStartError(LXDImagesError):
    """A throwaway daemon did not come up; the message ends with its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _binary(kind: DaemonKind) -> str:
    name, fallback = _BINARIES[kind]
    found = shutil.which(name) or (fallback if os.path.exists(fallback) else None)
    if found is None:
        raise DaemonStartError(
            f"{kind} is not installed (no {name} on PATH, no {fallback}); "
            "run scripts/install-daemons.sh as root"
        )
    return found


class ThrowawayDaemon:
    """A real LXD or Incus daemon in its own temporary directory."""

    def __init__(
        self,
        kind: DaemonKind,
        *,
        environment: Mapping[str, str] | None = None,
        directory: str | None = None,
        network_namespace: str | None = None,
    ) -> None:
        """``network_namespace`` runs the daemon in that (existing) namespace: its
        network is then its own, while its unix socket stays reachable here.
        """
        self.kind: DaemonKind = kind
        self.network_namespace = network_namespace
        self._owns_directory = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix=f"lxdimages-{kind}-"))
        self.environment = dict(environment or {})
        self.https_address: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def socket_path(self) -> str:
        return str(self.directory / "unix.socket")

    @property
    def log_path(self) -> Path:
        return self.directory / "daemon.log"

    @property
    def https_url(self) -> str:
        if self.https_address is None:
            raise RuntimeError(f"the {self.kind} daemon does not listen on HTTPS")
        return f"https://{self.https_address}"

    def __enter__(self) -> ThrowawayDaemon:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _env(self) -> dict[str, str]:
        env = {**os.environ, **self.environment}
        env[_DIR_VARIABLE[self.kind]] = str(self.directory)
        return env

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def start(self, timeout: float = 90) -> ThrowawayDaemon:
        """Start the daemon and wait until it answers on its socket."""
        binary = _binary(self.kind)
        self._log = self.log_path.open("ab")
        prefix = ["ip", "netns", "exec", self.network_namespace] if self.network_namespace else []
        self._process = subprocess.Popen(
            [*prefix, binary, "--group", "root"],
            env=self._env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise DaemonStartError(
                    f"{self.kind} exited with status {self._process.returncode} at start-up; "
                    f"its log ({self.log_path}):\n{self.log_tail()}"
                )
            if os.path.exists(self.socket_path):
                try:
                    with self.client() as client:
                        client.host_info  # noqa: B018 (answers only once the daemon is ready)
                    return self
                except ClientConnectionFailed:
                    pass
            time.sleep(0.2)
        self.stop()
        raise DaemonStartError(
            f"{self.kind} did not answer within {timeout} s; its log:\n{self.log_tail()}"
        )

    def client(self, **kwargs: object) -> Client:
        """A client on the daemon's unix socket (keyword arguments go to ``Client``)."""
        return Client(self.socket_path, **kwargs)  # type: ignore[arg-type]

    def listen_https(self, host: str = "127.0.0.1", port: int | None = None) -> str:
        """Make the daemon listen on HTTPS at ``host:port``; return its URL."""
        address = f"{host}:{port or free_port(host)}"
        with self.client() as client:
            client.request(
                ApiRequest("PATCH", API, json={"config": {"core.https_address": address}})
            )
        self.https_address = address
        return self.https_url

    def trust(self, certificate_pem: str, name: str = "lxdimages-tests") -> None:
        """Trust a client certificate (PEM) for the whole daemon."""
        body = "".join(line for line in certificate_pem.strip().splitlines() if "-----" not in line)
        with self.client() as client:
            client.request(
                ApiRequest(
                    "POST",
                    f"{API}/certificates",
                    json={"type": "client", "name": name, "certificate": body},
                )
            )

    def server_certificate(self) -> str:
        """The daemon's own certificate (PEM), to pin it."""
        return (self.directory / "server.crt").read_text()

    def stop(self) -> None:
        """Shut the daemon down and remove its directory."""
        if self._process is not None and self._process.poll() is None:
            try:
                subprocess.run(
                    [_binary(self.kind), "shutdown", "--timeout", "30"],
                    env=self._env(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=45,
                    check=False,
                )
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=15)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        _unmount_below(self.directory)
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)


def _unmount_below(directory: Path) -> None:
    """Unmount what a daemon mounted in its directory (tmpfs for shmounts, devlxd),
    even when it died at start-up."""
    with open("/proc/self/mounts") as mounts:
        mounted = [
            line.split()[1] for line in mounts if line.split()[1].startswith(f"{directory}/")
        ]
    for mountpoint in sorted(mounted, reverse=True):
        subprocess.run(["umount", "-l", mountpoint], check=False, capture_output=True)


# -- test images ----------------------------------------------------------------------


def _metadata_yaml(properties: Mapping[str, str], architecture: str) -> bytes:
    lines = [f"architecture: {architecture}", f"creation_date: {int(time.time())}", "properties:"]
    lines += [f'  {key}: "{value}"' for key, value in properties.items()]
    return ("\n".join(lines) + "\n").encode()


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    archive.addfile(info, io.BytesIO(data))


class _RandomReader(io.RawIOBase):
    """``size`` incompressible bytes, made as they are read."""

    def __init__(self, size: int) -> None:
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self._left, 4 * 1024 * 1024)
        buffer[:count] = secrets.token_bytes(count)
        self._left -= count
        return count


def _add_rootfs(archive: tarfile.TarFile, prefix: str, payload_size: int) -> None:
    directory = tarfile.TarInfo(prefix.rstrip("/") or ".")
    directory.type = tarfile.DIRTYPE
    directory.mode = 0o755
    archive.addfile(directory)
    busybox = shutil.which("busybox")
    if busybox:
        archive.add(busybox, arcname=f"{prefix}bin/busybox")
    _add_bytes(archive, f"{prefix}etc/lxdimages-id", secrets.token_hex(16).encode())
    if payload_size:
        info = tarfile.TarInfo(f"{prefix}payload.bin")
        info.size = payload_size
        archive.addfile(info, io.BufferedReader(_RandomReader(payload_size), 4 * 1024 * 1024))


def write_unified_image(
    path: str | os.PathLike[str],
    *,
    payload_size: int = 0,
    properties: Mapping[str, str] | None = None,
    architecture: str = "x86_64",
    compress: bool = True,
) -> Path:
    """Write a unique unified image tarball (metadata.yaml + rootfs/); return its path.

    ``payload_size`` random bytes make it as large as a test needs.
    """
    path = Path(path)
    props = dict(properties or {"os": "busybox", "release": "1.36", "description": "test"})
    options: dict[str, int] = {"compresslevel": 1} if compress else {}
    with tarfile.open(path, "w:gz" if compress else "w", **options) as archive:  # type: ignore[call-overload]
        _add_bytes(archive, "metadata.yaml", _metadata_yaml(props, architecture))
        _add_rootfs(archive, "rootfs/", payload_size)
    return path


def write_split_image(
    directory: str | os.PathLike[str],
    *,
    payload_size: int = 0,
    properties: Mapping[str, str] | None = None,
    architecture: str = "x86_64",
    vm: bool = False,
    squashfs: bool = False,
) -> tuple[Path, Path]:
    """Write a unique split image: ``(metadata tarball, rootfs)``.

    The rootfs is a tarball for a container (a squashfs with ``squashfs=True``,
    made by ``mksquashfs``), a qcow2 disk for a VM.
    """
    directory = Path(directory)
    props = dict(properties or {"os": "busybox", "release": "1.36", "description": "split"})
    metadata = directory / f"meta-{secrets.token_hex(4)}.tar.gz"
    with tarfile.open(metadata, "w:gz") as archive:
        _add_bytes(archive, "metadata.yaml", _metadata_yaml(props, architecture))
    if vm:
        rootfs = directory / f"disk-{secrets.token_hex(4)}.qcow2"
        with rootfs.open("wb") as disk:
            disk.write(_qcow2_header(1 << 30))
            disk.write(secrets.token_bytes(65536))
            for chunk in _random_chunks(payload_size):
                disk.write(chunk)
    elif squashfs:
        tree = Path(tempfile.mkdtemp(dir=directory, prefix=".rootfs-"))
        tarball = tree / "rootfs.tar"
        with tarfile.open(tarball, "w") as archive:
            _add_rootfs(archive, "", payload_size)
        with tarfile.open(tarball) as archive:
            archive.extractall(tree / "fs", filter="tar")
        rootfs = directory / f"rootfs-{secrets.token_hex(4)}.squashfs"
        subprocess.run(
            ["mksquashfs", str(tree / "fs"), str(rootfs), "-noappend", "-quiet", "-comp", "gzip"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        shutil.rmtree(tree)
    else:
        rootfs = directory / f"rootfs-{secrets.token_hex(4)}.tar.gz"
        with tarfile.open(rootfs, "w:gz", compresslevel=1) as archive:
            _add_rootfs(archive, "", payload_size)
    return metadata, rootfs


def _qcow2_header(virtual_size: int) -> bytes:
    """A valid qcow2 v3 header for an empty disk of ``virtual_size`` bytes."""
    import struct

    header = b"QFI\xfb" + struct.pack(
        ">IQIIQIIQQIIQQQII", 3, 0, 0, 16, virtual_size, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 104
    )
    return header + b"\0" * (512 - len(header))


def _random_chunks(size: int) -> Iterator[bytes]:
    while size > 0:
        count = min(size, 4 * 1024 * 1024)
        yield secrets.token_bytes(count)
        size -= count
