"""The installed ``lxdimages`` command, run as a subprocess against real daemons."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from lxdimages.simplestreams import ServerCertificate, Tree, TreeServer
from lxdimages.testing import write_split_image, write_unified_image

from .conftest import PKI, Daemons

COMMAND = Path(sys.executable).with_name("lxdimages")


@dataclass
class Shell:
    env: dict[str, str]
    home: Path

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(COMMAND), *args], env=self.env, capture_output=True, text=True,
            input=input, timeout=300,
        )

    def ok(self, *args: str, input: str | None = None) -> str:
        done = self.run(*args, input=input)
        assert done.returncode == 0, f"{args}: {done.stderr}"
        assert "Traceback" not in done.stderr
        return done.stdout


@pytest.fixture
def shell(daemons: Daemons, pki: PKI, tmp_path: Path) -> Shell:
    """A user whose lxc config has remotes lxd2 (HTTPS, pinned) and stranger (untrusted
    certificate), and whose incus config has its local daemon (incus-local)."""
    home = tmp_path / "home"
    lxc, incus = home / ".config/lxc", home / ".config/incus"
    (lxc / "servercerts").mkdir(parents=True)
    incus.mkdir(parents=True)
    shutil.copyfile(pki.client.cert_path, lxc / "client.crt")
    shutil.copyfile(pki.client.key_path, lxc / "client.key")
    (lxc / "servercerts" / "lxd2.crt").write_text(daemons.lxd2.server_certificate())
    (lxc / "servercerts" / "stranger.crt").write_text(daemons.lxd2.server_certificate())
    (lxc / "config.yml").write_text(
        yaml.safe_dump(
            {
                "default-remote": "local",
                "remotes": {
                    "local": {"addr": "unix://", "public": False},
                    "lxd2": {"addr": daemons.lxd2.https_url, "protocol": "lxd"},
                },
            }
        )
    )
    (incus / "config.yml").write_text(
        yaml.safe_dump({"remotes": {"local": {"addr": "unix://", "protocol": "incus"}}})
    )
    env = {
        **os.environ,
        "HOME": str(home),
        "LXD_DIR": str(daemons.lxd.directory),
        "INCUS_DIR": str(daemons.incus.directory),
        "COLUMNS": "200",
    }
    env.pop("LXD_CONF", None)
    env.pop("INCUS_CONF", None)
    return Shell(env, home)


def test_help_for_every_command(shell: Shell) -> None:
    top = shell.ok("--help")
    assert "Exit codes" in top
    commands = [
        "list", "info", "import", "export", "copy", "delete", "edit", "set-property",
        "unset-property", "refresh", "publish", "serve", "mirror", "alias", "remote",
    ]
    for command in commands:
        assert command in top
        text = shell.ok(command, "--help")
        assert text.startswith("Usage: lxdimages " + command)
    for sub in ("list", "add", "delete", "rename"):
        assert shell.ok("alias", sub, "--help").startswith(f"Usage: lxdimages alias {sub}")
    module = subprocess.run(
        [sys.executable, "-m", "lxdimages", "--version"], capture_output=True, text=True,
        env=shell.env, check=True,
    )
    assert "version" in module.stdout


def test_import_list_info_export_delete(shell: Shell, daemons: Daemons, tmp_path: Path) -> None:
    image = write_unified_image(tmp_path / "u.tar.gz", properties={"os": "busybox", "release": "9"})
    fingerprint = hashlib.sha256(image.read_bytes()).hexdigest()
    assert shell.ok("import", str(image), "--alias", "cli/u", "--public").strip() == fingerprint

    table = shell.ok("list")
    assert "cli/u" in table and fingerprint[:12] in table and "CONTAINER" in table
    rows = json.loads(shell.ok("list", "--format", "json"))
    assert [r["fingerprint"] for r in rows] == [fingerprint]
    assert rows[0]["public"] is True and rows[0]["aliases"] == ["cli/u"]
    assert yaml.safe_load(shell.ok("list", "--format", "yaml"))[0]["fingerprint"] == fingerprint
    (row,) = list(csv.reader(io.StringIO(shell.ok("list", "--format", "csv"))))
    assert row[0] == "cli/u" and row[1] == fingerprint
    assert json.loads(shell.ok("list", "release=9", "--format", "json"))[0]["fingerprint"] == fingerprint
    assert json.loads(shell.ok("list", "release=10", "--format", "json")) == []
    assert json.loads(shell.ok("list", fingerprint[:8], "--format", "json"))

    info = yaml.safe_load(shell.ok("info", "cli/u"))
    assert info["fingerprint"] == fingerprint and info["properties"]["release"] == "9"
    assert json.loads(shell.ok("info", fingerprint[:10], "--format", "json"))["public"] is True

    out = tmp_path / "out"
    out.mkdir()
    (path,) = shell.ok("export", "cli/u", str(out)).split()
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == fingerprint

    shell.ok("delete", "cli/u")
    with daemons.lxd.client() as client:
        assert client.images.all() == []


def test_import_split_to_a_named_remote(shell: Shell, daemons: Daemons, tmp_path: Path) -> None:
    metadata, rootfs = write_split_image(tmp_path)
    fingerprint = shell.ok("import", str(metadata), str(rootfs), "incus-local:", "--alias", "s").strip()
    with daemons.incus.client() as client:
        assert client.images.get_by_alias("s").fingerprint == fingerprint


def test_copy_between_daemons(shell: Shell, daemons: Daemons, tmp_path: Path) -> None:
    shell.ok("import", str(write_unified_image(tmp_path / "u.tar.gz")), "--alias", "c")
    shell.ok("copy", "local:c", "incus-local:")  # LXD unix socket -> Incus: relay
    shell.ok("copy", "local:c", "lxd2:", "--alias", "extra", "--mode", "relay")
    with daemons.incus.client() as incus, daemons.lxd2.client() as lxd2:
        assert incus.images.get_by_alias("c")
        names = {a["name"] for a in lxd2.images.get_by_alias("extra").aliases}
        assert names == {"c", "extra"}


def test_copy_pull_from_a_https_remote(shell: Shell, daemons: Daemons, tmp_path: Path) -> None:
    with daemons.lxd2.client() as lxd2:
        image = lxd2.images.create(write_unified_image(tmp_path / "u.tar.gz"), aliases=["remote"])
    shell.ok("copy", "lxd2:remote", "local:", "--mode", "pull")
    with daemons.lxd.client() as local:
        assert local.images.get_by_alias("remote").fingerprint == image.fingerprint


def test_copy_from_a_simplestreams_remote(shell: Shell, daemons: Daemons, tmp_path: Path) -> None:
    tree = Tree(tmp_path / "tree")
    published = tree.add(write_unified_image(tmp_path / "u.tar.gz"), aliases=["ss/one"])
    cert = ServerCertificate.self_signed(tmp_path / "cert", "127.0.0.1")
    lxc = shell.home / ".config/lxc"
    config = yaml.safe_load((lxc / "config.yml").read_text())
    with TreeServer(tree.root, cert, port=0) as server:
        config["remotes"]["ss"] = {"addr": server.url, "protocol": "simplestreams", "public": True}
        (lxc / "config.yml").write_text(yaml.safe_dump(config))
        shutil.copyfile(cert.cert_path, lxc / "servercerts" / "ss.crt")
        listing = json.loads(shell.ok("list", "ss:", "--format", "json"))
        assert [r["fingerprint"] for r in listing] == [published.fingerprint]
        shell.ok("copy", "ss:ss/one", "local:")  # the daemon pulls, pinned
        shell.ok("copy", "ss:ss/one", "incus-local:", "--mode", "relay")
    with daemons.lxd.client() as lxd, daemons.incus.client() as incus:
        assert lxd.images.get_by_alias("ss/one").fingerprint == published.fingerprint
        assert incus.images.get_by_alias("ss/one").fingerprint == published.fingerprint


def test_alias_commands(shell: Shell, daemons: Daemons, tmp_path: Path) -> None:
    fingerprint = shell.ok("import", str(write_unified_image(tmp_path / "u.tar.gz"))).strip()
    shell.ok("alias", "add", "first", fingerprint[:12], "--description", "one")
    listed = yaml.safe_load(shell.ok("alias", "list", "--format", "yaml"))["aliases"]
    assert [(a["name"], a["target"], a["description"]) for a in listed] == [
        ("first", fingerprint, "one")
    ]
    shell.ok("alias", "rename", "first", "second")
    assert "second" in shell.ok("alias", "list")
    shell.ok("alias", "delete", "second")
    with daemons.lxd.client() as client:
        assert client.aliases.all() == []


def test_properties_and_edit(shell: Shell, daemons: Daemons, tmp_path: Path) -> None:
    shell.ok("import", str(write_unified_image(tmp_path / "u.tar.gz")), "--alias", "p")
    shell.ok("set-property", "p", "stage", "tested")
    shell.ok("unset-property", "p", "description")
    with daemons.lxd.client() as client:
        properties = client.images.get_by_alias("p").properties
    assert properties["stage"] == "tested" and "description" not in properties
    edited = yaml.safe_load(shell.ok("info", "p"))
    shell.ok(
        "edit", "p",
        input=yaml.safe_dump({"public": True, "properties": {"os": "edited"},
                              "profiles": edited["profiles"]}),
    )
    with daemons.lxd.client() as client:
        image = client.images.get_by_alias("p")
    assert image.public is True and image.properties == {"os": "edited"}


# -- errors: one line, the daemon's words, a hint, an exit code --------------------------


def check_error(done: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, done.stderr  # one line says what failed
    for word in words:
        assert word in done.stderr


def test_errors_and_exit_codes(shell: Shell, daemons: Daemons, tmp_path: Path, pki: PKI) -> None:
    image = write_unified_image(tmp_path / "u.tar.gz")
    shell.ok("import", str(image), "--alias", "taken")
    check_error(shell.run("import", str(image), "--alias", "taken"), 4, 'Alias "taken" already exists', "Hint:")
    check_error(shell.run("info", "nothing-here"), 3, "info nothing-here", "not found")
    check_error(shell.run("list", "nowhere:"), 3, "unknown remote 'nowhere'")
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"garbage" * 100)
    check_error(shell.run("import", str(bad)), 1, "Unsupported compression")
    check_error(shell.run("import", str(image), "one-file", "two-files"), 2)

    # an untrusted client: the lxc config of a user whose certificate nobody trusts
    lxc = shell.home / ".config/lxc"
    shutil.copyfile(pki.stranger.cert_path, lxc / "client.crt")
    shutil.copyfile(pki.stranger.key_path, lxc / "client.key")
    check_error(shell.run("import", str(image), "lxd2:"), 5, "Hint:", "trust")
    debug = shell.run("--debug", "import", str(image), "lxd2:")
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    # unreachable
    config = yaml.safe_load((lxc / "config.yml").read_text())
    config["remotes"]["gone"] = {"addr": "https://127.0.0.1:9", "protocol": "lxd"}
    (lxc / "config.yml").write_text(yaml.safe_dump(config))
    check_error(shell.run("list", "gone:"), 5, "Hint:")


def test_export_that_fails_verification(shell: Shell, daemons: Daemons, tmp_path: Path) -> None:
    fingerprint = shell.ok("import", str(write_unified_image(tmp_path / "u.tar.gz"))).strip()
    stored = daemons.lxd.directory / "images" / fingerprint
    data = bytearray(stored.read_bytes())
    data[100] ^= 0xFF
    stored.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    check_error(shell.run("export", fingerprint, str(out)), 6, fingerprint)
    assert list(out.iterdir()) == []


def test_remote_list(shell: Shell) -> None:
    remotes = {r["name"]: r for r in json.loads(shell.ok("remote", "list", "--format", "json"))["remotes"]}
    assert set(remotes) >= {"local", "lxd2", "incus-local"}
    assert remotes["lxd2"]["pinned_certificate"].endswith("servercerts/lxd2.crt")
    assert remotes["incus-local"]["protocol"] == "incus"


# -- a real terminal ------------------------------------------------------------------


def test_progress_bar_in_a_real_terminal(shell: Shell, daemons: Daemons, tmp_path: Path) -> None:
    image = write_unified_image(tmp_path / "big.tar", payload_size=384 * 1024 * 1024, compress=False)
    session = f"lxdimages-{os.getpid()}"
    log = tmp_path / "terminal.log"
    env_args = [f"{k}={v}" for k, v in shell.env.items() if k in ("HOME", "LXD_DIR", "INCUS_DIR", "PATH")]
    tmux = ["tmux", "-L", session]
    subprocess.run([*tmux, "new-session", "-d", "-x", "120", "-y", "30", "-s", session, "bash", "--norc"],
                   check=True, env={**shell.env, "TERM": "xterm-256color"})
    try:
        subprocess.run([*tmux, "pipe-pane", "-t", session, "-o", f"cat >> {log}"], check=True)
        command = f"env {' '.join(env_args)} {COMMAND} import {image} --alias tty; echo DONE-$?-DONE"
        subprocess.run([*tmux, "send-keys", "-t", session, command, "Enter"], check=True)
        deadline = time.monotonic() + 240
        screen = ""
        while time.monotonic() < deadline:
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", session],
                                    capture_output=True, text=True, check=True).stdout
            if re.search(r"DONE-\d+-DONE", screen):
                break
            time.sleep(0.2)
        drawn = log.read_text(errors="replace")
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)
    assert "DONE-0-DONE" in screen
    assert "Importing (upload)" in drawn  # the bar was drawn on the terminal
    assert "MB" in drawn or "GB" in drawn  # with its transfer figures
    assert "Image imported with fingerprint" in screen
    assert "Importing" not in screen.split(command[:20])[-1]  # and cleared at the end


def test_refresh_an_image_from_its_source(shell: Shell, daemons: Daemons, tmp_path: Path) -> None:
    tree = Tree(tmp_path / "tree")
    published = tree.add(write_unified_image(tmp_path / "u.tar.gz"), aliases=["ss/auto"])
    cert = ServerCertificate.self_signed(tmp_path / "cert", "127.0.0.1")
    with TreeServer(tree.root, cert, port=0) as server, daemons.lxd.client() as client:
        image = client.images.create_from_simplestreams(
            server.url, "ss/auto", auto_update=True, wait=True, certificate=cert.pem
        )
        image.add_alias("auto")
        assert image.update_source is not None
        assert shell.ok("refresh", "auto").strip() == "Image already up to date"
    assert image.fingerprint == published.fingerprint
