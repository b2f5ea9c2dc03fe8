"""The user's existing ``lxc`` and ``incus`` remotes, so that ``REMOTE:IMAGE`` works unchanged.

Remotes come from ``config.yml`` in the lxc configuration directory (``$LXD_CONF``,
the snap's, ``~/.config/lxc``) and then the incus one (``$INCUS_CONF``,
``~/.config/incus``), with each tool's client certificate and pinned server
certificates (``servercerts/<remote>.crt``). A name both tools define is taken
from lxc; incus's stays reachable as ``incus-<name>``. ``local`` is always there:
the local daemon's socket.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..client import Client
from ..simplestreams import SimplestreamsSource
from ..transport import TLSVerify, find_local_socket

__all__ = ["Remote", "RemoteError", "load_remotes", "split_remote"]


class RemoteError(Exception):
    """An unknown remote, or one that cannot be used as asked."""


@dataclass(frozen=True)
class Remote:
    """One remote: where it is, how it is spoken to, and with which certificates."""

    name: str
    addr: str
    protocol: str  # "lxd", "incus" or "simplestreams"
    public: bool
    source: str  # "lxc", "incus" or "builtin"
    config_dir: Path | None
    config_name: str = ""  # the name in the tool's own config.yml

    @property
    def is_simplestreams(self) -> bool:
        return self.protocol == "simplestreams"

    def _file(self, *parts: str) -> Path | None:
        if self.config_dir is None:
            return None
        path = self.config_dir.joinpath(*parts)
        return path if path.exists() else None

    @property
    def server_cert(self) -> Path | None:
        return self._file("servercerts", f"{self.config_name or self.name}.crt")

    def _verify(self) -> TLSVerify:
        pinned = self.server_cert
        return pinned if pinned is not None else True

    def client(self, project: str | None = None) -> Client:
        """A ``Client`` for a daemon remote."""
        if self.is_simplestreams:
            raise RemoteError(f"{self.name}: is a simplestreams image server, not a daemon")
        if self.addr.startswith("unix:"):
            path = self.addr.removeprefix("unix:").removeprefix("//")
            if not path and self.source != "builtin":
                # lxc's "local" is the LXD socket, incus's the Incus one.
                path = find_local_socket("incus" if self.source == "incus" else "lxd")
            return Client(path or None, project=project)
        crt, key = self._file("client.crt"), self._file("client.key")
        cert = (str(crt), str(key)) if crt and key else None
        return Client(self.addr, cert=cert, verify=self._verify(), project=project)

    def simplestreams(self) -> SimplestreamsSource:
        """A ``SimplestreamsSource`` for an image-server remote."""
        if not self.is_simplestreams:
            raise RemoteError(f"{self.name}: is a daemon, not a simplestreams image server")
        return SimplestreamsSource(self.addr, verify=self._verify())


def _config_dirs() -> list[tuple[str, Path]]:
    home = Path.home()
    lxc = [os.environ.get("LXD_CONF"), home / "snap/lxd/common/config", home / ".config/lxc"]
    incus = [os.environ.get("INCUS_CONF"), home / ".config/incus"]
    found: list[tuple[str, Path]] = []
    for tool, candidates in (("lxc", lxc), ("incus", incus)):
        for candidate in candidates:
            if candidate and (Path(candidate) / "config.yml").exists():
                found.append((tool, Path(candidate)))
                break
    return found


def load_remotes() -> dict[str, Remote]:
    """Every remote the user has, by name (see the module's docstring for the rules)."""
    remotes: dict[str, Remote] = {
        "local": Remote("local", "unix://", "lxd", False, "builtin", None)
    }
    for tool, directory in _config_dirs():
        try:
            doc: Any = yaml.safe_load((directory / "config.yml").read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise RemoteError(f"cannot read {directory / 'config.yml'}: {error}") from None
        for name, entry in (doc.get("remotes") or {}).items():
            if not isinstance(entry, dict) or "addr" not in entry:
                continue
            key = str(name)
            if key in remotes and remotes[key].source != "builtin":
                key = f"{tool}-{name}"
            remotes[key] = Remote(
                name=key,
                addr=str(entry["addr"]),
                protocol=str(entry.get("protocol") or ("incus" if tool == "incus" else "lxd")),
                public=bool(entry.get("public", False)),
                source=tool,
                config_dir=directory,
                config_name=str(name),
            )
    return remotes


def split_remote(argument: str, remotes: dict[str, Remote]) -> tuple[Remote, str]:
    """``REMOTE:NAME`` into its remote (default ``local``) and the rest.

    A colon only names a remote when what precedes it is a known remote, so
    fingerprints and aliases with colons elsewhere still work.
    """
    head, colon, rest = argument.partition(":")
    if colon and head in remotes:
        return remotes[head], rest
    if colon and "/" not in head and head:
        known = ", ".join(sorted(remotes))
        raise RemoteError(f"unknown remote {head!r} (known: {known}); see 'lxdimages remote list'")
    return remotes["local"], argument
