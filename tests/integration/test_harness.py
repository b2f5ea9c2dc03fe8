"""The harness itself: a daemon that cannot start is an error carrying its log."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxdimages.testing import DaemonStartError, ThrowawayDaemon


@pytest.mark.parametrize("kind", ["lxd", "incus"])
def test_a_daemon_that_cannot_start_fails_with_its_log(kind: str, tmp_path: Path) -> None:
    # A unix socket path longer than the kernel's 108 bytes: the daemon exits at once.
    directory = tmp_path / ("d" * 120)
    directory.mkdir()
    daemon = ThrowawayDaemon(kind, directory=str(directory))  # type: ignore[arg-type]
    with pytest.raises(DaemonStartError) as raised:
        daemon.start(timeout=60)
    message = str(raised.value)
    assert f"{kind} exited with status" in message
    assert "daemon.log" in message and "level=" in message  # the daemon's own log follows
    daemon.stop()
