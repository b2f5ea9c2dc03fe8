"""Mirroring a filtered subset of a simplestreams server into a local tree.

Incremental (a file already verified is not fetched again), verified (each file's
sha256 against the index before it takes its name), resumable (an interrupted
download goes on from where it stopped, with ``Range``), and the result is a
tree of its own, servable like any other.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import FingerprintMismatch, InvalidStream
from ..progress import ProgressCallback, ProgressMeter
from ..streams import CHUNK_SIZE
from .model import (
    COMBINED_KEYS,
    METADATA_KEYS,
    ROOTFS_FTYPES,
    ImageType,
    StreamImage,
    images_of,
    kernel_architecture,
)
from .publish import Tree
from .source import SimplestreamsSource

__all__ = ["MirrorFilter", "MirrorResult", "mirror"]


@dataclass(frozen=True)
class MirrorFilter:
    """Which images to mirror: each set given must contain the image's value
    (``None`` accepts all); ``keep`` newest versions per product (``None``: all).
    """

    os: Collection[str] | None = None
    release: Collection[str] | None = None
    architecture: Collection[str] | None = None  # Debian or kernel names
    variant: Collection[str] | None = None
    image_type: Collection[ImageType] | None = None
    keep: int | None = None

    def accepts(self, image: StreamImage) -> bool:
        architectures = (
            None
            if self.architecture is None
            else {kernel_architecture(a) for a in self.architecture}
        )
        return all(
            wanted is None or value in wanted
            for wanted, value in (
                (self.os, image.os),
                (self.release, image.release),
                (architectures, image.architecture),
                (self.variant, image.variant),
                (self.image_type, image.type),
            )
        )


@dataclass
class MirrorResult:
    """What a mirror run did, by relative path."""

    fetched: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    images: list[StreamImage] = field(default_factory=list)


def _selected(products: dict[str, Any], wanted: MirrorFilter) -> dict[str, Any]:
    """The products reduced to the accepted images' versions and items."""
    chosen: dict[str, Any] = {}
    images = [image for image in images_of(products) if wanted.accepts(image)]
    by_product: dict[str, list[StreamImage]] = {}
    for image in images:
        by_product.setdefault(image.product, []).append(image)
    for name, found in by_product.items():
        versions = sorted({image.version for image in found}, reverse=True)
        if wanted.keep is not None:
            versions = versions[: wanted.keep]
        product = {k: v for k, v in products[name].items() if k != "versions"}
        product["versions"] = {}
        for version in versions:
            source_items = products[name]["versions"][version]["items"]
            items = _items_for(source_items, [i for i in found if i.version == version])
            product["versions"][version] = {"items": items}
        chosen[name] = product
    return chosen


def _items_for(items: dict[str, Any], images: Iterable[StreamImage]) -> dict[str, Any]:
    """The items the images need: their metadata (both daemons' keys), rootfs and
    unified files; deltas and other types are left out.
    """
    paths = {file.path for image in images for file in image.files}
    types = {image.type for image in images}
    kept: dict[str, Any] = {}
    for key, item in items.items():
        if item.get("path") not in paths:
            continue
        kept[key] = dict(item)
        if key in METADATA_KEYS:
            for ftype, combined in ROOTFS_FTYPES.items():
                vm_hash = ftype == "disk-kvm.img"
                if ("virtual-machine" if vm_hash else "container") not in types:
                    kept[key].pop(combined, None)
        elif key not in COMBINED_KEYS and item.get("ftype") not in ROOTFS_FTYPES:
            del kept[key]
    return kept


def _needed_files(products: dict[str, Any]) -> dict[str, tuple[str, int]]:
    return {
        item["path"]: (str(item["sha256"]).lower(), int(item["size"]))
        for product in products.values()
        for version in product["versions"].values()
        for item in version["items"].values()
    }


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(
    source: SimplestreamsSource,
    relative: str,
    target: Path,
    sha256: str,
    progress: ProgressCallback | None,
) -> bool:
    """Download ``relative`` to ``target`` through ``<target>.partial``, resuming it;
    rename only once its sha256 matches. Returns whether a partial file was resumed.
    """
    partial = target.with_name(target.name + ".partial")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    offset = 0
    if partial.exists():
        with partial.open("rb") as handle:
            while chunk := handle.read(CHUNK_SIZE):
                digest.update(chunk)
                offset += len(chunk)
    meter = ProgressMeter(progress, relative, None)
    with source.open(relative, offset) as chunks, partial.open("ab") as out:
        for chunk in meter.count(chunks):
            digest.update(chunk)
            out.write(chunk)
    meter.finish()
    if digest.hexdigest() != sha256:
        partial.unlink()
        raise FingerprintMismatch(sha256, digest.hexdigest(), f"{source.url}/{relative}")
    os.replace(partial, target)
    return offset > 0


def mirror(
    source: SimplestreamsSource,
    target: str | os.PathLike[str],
    wanted: MirrorFilter | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> MirrorResult:
    """Bring the tree at ``target`` in step with the images of ``source`` that
    ``wanted`` accepts. Files are fetched first, the index written last, and files
    that the new index no longer names are removed after it.
    """
    wanted = wanted or MirrorFilter()
    tree = Tree(target)
    result = MirrorResult()
    products = _selected(source.products(), wanted)
    if not products:
        raise InvalidStream(f"{source.url}: no image matches the mirror filter")
    needed = _needed_files(products)
    with tree.lock():
        previous = _needed_files(tree.products()) if tree.root.joinpath("streams").exists() else {}
        for relative, (sha256, size) in sorted(needed.items()):
            if ".." in Path(relative).parts or relative.startswith("/"):
                raise InvalidStream(
                    f"{source.url}: index names a path outside the tree: {relative}"
                )
            local = tree.root / relative
            if (
                local.exists()
                and local.stat().st_size == size
                and (previous.get(relative, ("", 0))[0] == sha256 or _sha256_file(local) == sha256)
            ):
                result.kept.append(relative)
                continue
            resumed = _fetch(source, relative, local, sha256, progress)
            (result.resumed if resumed else result.fetched).append(relative)
        tree.write_products(products)
        for relative in sorted(set(previous) - set(needed)):
            with suppress(FileNotFoundError):
                (tree.root / relative).unlink()
                result.removed.append(relative)
    result.images = images_of(products)
    return result
