"""One measured call, in a fresh process: ``runner.py TOOL OP JSON-ARGS``.

TOOL is ``lxdimages``, ``lxdimages-progress`` (the same with a progress callback)
or ``pylxd`` (run by the interpreter of pylxd's own virtual environment). The call
is timed inside the process, so interpreter start-up is not counted; the parent
reads the process's peak RSS from its rusage. Prints ``{"seconds": ...}``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

ATTRIBUTES = (
    "aliases", "auto_update", "architecture", "cached", "created_at", "expires_at", "filename",
    "fingerprint", "last_used_at", "properties", "public", "size", "uploaded_at", "update_source",
)


def lxdimages_call(op: str, args: dict[str, Any], progress: bool) -> Any:
    import lxdimages

    reports: list[Any] = []
    callback = reports.append if progress else None
    client = lxdimages.Client(args["socket"])
    if op == "import":
        verify = args.get("verify", True)
        return lambda: client.images.create(Path(args["path"]), progress=callback, verify=verify)
    if op == "import-split":
        return lambda: client.images.create(
            Path(args["rootfs"]), metadata=Path(args["metadata"]), progress=callback
        )
    if op == "export":
        image = client.images.get(args["fingerprint"])
        return lambda: image.export_to(args["directory"], progress=callback)
    if op == "list":
        return lambda: [[getattr(i, a) for a in ATTRIBUTES] for i in client.images.all()]
    if op == "download-only":  # analysis: the same HTTP stack, no sha256, no rename

        def download() -> None:
            path = f"/1.0/images/{args['fingerprint']}/export"
            with client._http.stream("GET", path) as response, open(
                Path(args["directory"]) / "raw", "wb"
            ) as out:
                for chunk in response.iter_raw():
                    out.write(chunk)

        return download
    if op in ("copy-relay", "copy-pull"):
        target = lxdimages.Client(args["target"])
        image = client.images.get(args["fingerprint"])
        mode = "relay" if op == "copy-relay" else "pull"
        return lambda: image.copy(target, wait=True, mode=mode, progress=callback)
    if op == "publish":
        from lxdimages.simplestreams import Tree

        return lambda: Tree(args["tree"]).add(Path(args["path"]))
    if op == "sha256":

        def digest() -> str:
            hasher = hashlib.sha256()
            with open(args["path"], "rb") as handle:
                while chunk := handle.read(4 << 20):
                    hasher.update(chunk)
            return hasher.hexdigest()

        return digest
    if op == "download":  # a daemon downloading from a simplestreams server
        return lambda: client.images.create_from_simplestreams(
            args["url"], args["alias"], wait=True, certificate=args["certificate"]
        )
    raise SystemExit(f"unknown op {op}")


def pylxd_call(op: str, args: dict[str, Any]) -> Any:
    import pylxd  # type: ignore[import-not-found]

    client = pylxd.Client(endpoint=args["socket"])
    if op == "import":
        # pylxd's documented way: the whole image as bytes.
        return lambda: client.images.create(open(args["path"], "rb").read(), wait=True)
    if op == "import-split":
        return lambda: client.images.create(
            open(args["rootfs"], "rb").read(),
            metadata=open(args["metadata"], "rb").read(),
            wait=True,
        )
    if op == "export":
        image = client.images.get(args["fingerprint"])

        def export() -> None:
            exported = image.export()
            hasher = hashlib.sha256()
            with open(Path(args["directory"]) / f"{image.fingerprint}.tar", "wb") as out:
                while chunk := exported.read(1 << 20):
                    hasher.update(chunk)
                    out.write(chunk)
            if hasher.hexdigest() != image.fingerprint:
                raise SystemExit("pylxd export does not hash to the fingerprint")

        return export
    if op == "list":
        return lambda: [[getattr(i, a) for a in ATTRIBUTES] for i in client.images.all()]
    raise SystemExit(f"unknown op {op}")


def main() -> None:
    tool, op, raw = sys.argv[1:4]
    args = json.loads(raw)
    call = pylxd_call(op, args) if tool == "pylxd" else lxdimages_call(
        op, args, tool == "lxdimages-progress"
    )
    start = time.perf_counter()
    call()
    print(json.dumps({"seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
