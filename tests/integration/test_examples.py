"""The examples the README points at run as written, against real daemons."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_tour_does_every_documented_call(tmp_path: Path) -> None:
    # No local daemon to be found: the tour must start its own throwaway LXD.
    env = {**os.environ, "LXD_DIR": str(tmp_path / "none"), "INCUS_DIR": str(tmp_path / "none")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "tour.py")], env=env, capture_output=True, text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "starting a private throwaway LXD" in out
    for call in ("create(image_data, public=True, wait=True)", "add_alias", "export()",
                 "export_to(", "create_from_simplestreams", "create_from_url", "copy()",
                 "delete(wait=True)", "Done: every documented call worked."):
        assert call in out, call
    assert "sha256 of export == fingerprint: True" in out
