"""Peak RSS of the client while it uploads and exports a large image.

Each measured call runs in a fresh child process, so the figure is that call's
own peak (``VmHWM``), interpreter and imports included. Runs against a
throwaway LXD daemon unless ``--socket`` names a daemon's unix socket.

    .venv/bin/python benchmarks/memory.py --size-mib 1024
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

LIMIT_MIB = 64


def child(socket: str, action: str, *arguments: str) -> None:
    """Run one call in this (fresh) process and print its result and peak RSS."""
    import lxdimages

    with lxdimages.Client(socket) as client:
        if action == "upload":
            result = client.images.create(Path(arguments[0])).fingerprint
        elif action == "upload-split":
            result = client.images.create(Path(arguments[1]), metadata=Path(arguments[0])).fingerprint
        elif action == "export":  # the documented file object, read through
            with client.images.get(arguments[0]).export() as handle:
                while handle.read(1 << 20):
                    pass
            result = arguments[0]
        elif action == "export_to":
            paths = client.images.get(arguments[0]).export_to(arguments[1])
            for path in paths:
                path.unlink()
            result = arguments[0]
        elif action == "delete":
            client.images.get(arguments[0]).delete(wait=True)
            result = arguments[0]
        else:
            raise SystemExit(f"unknown action {action}")
    # VmHWM is this process image's own peak; ru_maxrss would also count the
    # parent's pages this child shared between fork and exec.
    status = Path("/proc/self/status").read_text()
    peak_kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
    print(json.dumps({"result": result, "peak_rss_mib": round(peak_kib / 1024, 1)}))


def run(socket: str, action: str, *arguments: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", socket, action, *arguments],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description="Peak RSS of uploads and exports.")
    parser.add_argument("--size-mib", type=int, default=1024, help="image payload size")
    parser.add_argument("--socket", help="an existing daemon's unix socket")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0

    from lxdimages.testing import ThrowawayDaemon, write_split_image, write_unified_image

    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="lxdimages-bench-") as work:
        work_dir = Path(work)
        daemon = None if args.socket else ThrowawayDaemon("lxd").start()
        socket = args.socket or daemon.socket_path  # type: ignore[union-attr]
        try:
            size = args.size_mib * 1024 * 1024
            unified = write_unified_image(work_dir / "big.tar", payload_size=size, compress=False)
            upload = run(socket, "upload", str(unified))
            unified.unlink()
            fingerprint = str(upload["result"])
            rows.append(("upload (unified)", float(upload["peak_rss_mib"])))  # type: ignore[arg-type]
            for action, label in (("export", "export() file object"), ("export_to", "export_to (unified)")):
                rows.append((label, float(run(socket, action, fingerprint, work)["peak_rss_mib"])))  # type: ignore[arg-type]
            run(socket, "delete", fingerprint)

            metadata, rootfs = write_split_image(work_dir, payload_size=size)
            upload = run(socket, "upload-split", str(metadata), str(rootfs))
            rootfs.unlink()
            rows.append(("upload (split)", float(upload["peak_rss_mib"])))  # type: ignore[arg-type]
            fingerprint = str(upload["result"])
            rows.append(("export_to (split)", float(run(socket, "export_to", fingerprint, work)["peak_rss_mib"])))  # type: ignore[arg-type]
            run(socket, "delete", fingerprint)
        finally:
            if daemon is not None:
                daemon.stop()
    print(f"image payload: {args.size_mib} MiB; limit: peak RSS < {LIMIT_MIB} MiB")
    failed = False
    for label, peak_mib in rows:
        verdict = "ok" if peak_mib < LIMIT_MIB else "OVER"
        failed |= verdict != "ok"
        print(f"  {label:24} {peak_mib:>7.1f} MiB  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
