"""Publishing images into a simplestreams tree that LXD and Incus accept as a remote.

The tree is plain static files (``streams/v1/index.json``, ``streams/v1/images.json``,
``images/...``), so any web server, object store or CDN can serve it. Updates are
atomic: files first, then the products file, then the index, each renamed into
place; pruned files are removed only once no index names them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from ..exceptions import InvalidImage, InvalidStream
from ..protocol import QCOW2_MAGIC
from ..streams import CHUNK_SIZE, BackgroundHash
from .model import (
    COMBINED_KEYS,
    INDEX_PATH,
    METADATA_KEYS,
    ROOTFS_FTYPES,
    StreamImage,
    debian_architecture,
    images_of,
    index_document,
    kernel_architecture,
    load_json,
    products_document,
)

__all__ = ["ImageMetadata", "Tree", "read_image_metadata"]

PRODUCTS_PATH = "streams/v1/images.json"
VERSION_FORMAT = "%Y%m%d_%H:%M"
SQUASHFS_MAGIC = b"hsqs"


@dataclass(frozen=True)
class ImageMetadata:
    """What an image's ``metadata.yaml`` says about it."""

    architecture: str
    creation_date: datetime | None
    properties: Mapping[str, str]


def read_image_metadata(tarball: str | os.PathLike[str]) -> ImageMetadata:
    """Read ``metadata.yaml`` from a metadata or unified tarball, streaming.

    ``InvalidImage`` when the file is no tarball or holds no ``metadata.yaml``.
    """
    path = Path(tarball)
    try:
        with tarfile.open(path, "r|*") as archive:
            for member in archive:
                if member.name.lstrip("./") == "metadata.yaml" and member.isfile():
                    handle = archive.extractfile(member)
                    assert handle is not None
                    doc = yaml.safe_load(handle.read())
                    break
            else:
                raise InvalidImage(f"{path.name}: no metadata.yaml in the tarball")
    except (tarfile.TarError, EOFError, OSError) as error:
        raise InvalidImage(f"{path.name}: not a readable tarball ({error})") from None
    except yaml.YAMLError as error:
        raise InvalidImage(f"{path.name}: metadata.yaml is not valid YAML ({error})") from None
    if not isinstance(doc, dict) or not doc.get("architecture"):
        raise InvalidImage(f"{path.name}: metadata.yaml names no architecture")
    created = doc.get("creation_date")
    return ImageMetadata(
        architecture=kernel_architecture(str(doc["architecture"])),
        creation_date=datetime.fromtimestamp(int(created), UTC) if created else None,
        properties={str(k): str(v) for k, v in (doc.get("properties") or {}).items()},
    )


def _rootfs_ftype(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith(QCOW2_MAGIC):
        return "disk-kvm.img"
    if head.startswith(SQUASHFS_MAGIC):
        return "squashfs"
    return "root.tar.xz"  # any tarball: the daemons detect the compression


def _copy_and_hash(source: Path, target: Path, *hashes: Any) -> None:
    """Copy ``source`` to ``target`` in the kernel (copy_file_range/sendfile) on one
    thread while this one reads it into the hashes (all but the first on threads of
    their own): publishing costs about one sha256 pass, not a copy plus a pass.
    """
    failure: list[BaseException] = []

    def copy() -> None:
        try:
            shutil.copyfile(source, target)
        except BaseException as error:  # re-raised on the calling thread
            failure.append(error)

    copier = threading.Thread(target=copy, name="publish-copy")
    copier.start()
    helpers = [BackgroundHash(start=h) for h in hashes[1:]]
    try:
        with source.open("rb") as reader:
            while chunk := reader.read(CHUNK_SIZE * 4):
                hashes[0].update(chunk)
                for helper in helpers:
                    helper.update(chunk)
    finally:
        for helper in helpers:
            helper.close()
        copier.join()
    if failure:
        raise failure[0]
    if target.stat().st_size != source.stat().st_size:
        raise InvalidImage(f"{source.name} changed while it was being published")


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(data)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, path)


class Tree:
    """A simplestreams tree on disk that images are published into."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"<Tree {self.root}>"

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One writer at a time (publish, prune, mirror); readers never need the lock."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lxdimages.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def products(self) -> dict[str, Any]:
        """The tree's products (the ``products`` object of its products file)."""
        path = self.root / PRODUCTS_PATH
        if not path.exists():
            return {}
        doc = load_json(path.read_bytes(), PRODUCTS_PATH)
        products = doc.get("products")
        if not isinstance(products, dict):
            raise InvalidStream(f"{path}: not a products file")
        return products

    def images(self) -> list[StreamImage]:
        """Every image the tree offers, as a daemon reads it."""
        if not (self.root / INDEX_PATH).exists():
            return []
        from .source import SimplestreamsSource

        return SimplestreamsSource(self.root).images()

    def write_products(self, products: Mapping[str, Any]) -> None:
        """Write the products file, then the index naming it; each renamed into place.

        Call it holding ``lock()``, once every file the products name is in place.
        """
        updated = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
        _write_atomically(
            self.root / PRODUCTS_PATH,
            json.dumps(products_document(products), indent=1, sort_keys=True).encode(),
        )
        _write_atomically(
            self.root / INDEX_PATH,
            json.dumps(index_document(products, PRODUCTS_PATH, updated), indent=1).encode(),
        )

    def add(
        self,
        data: str | os.PathLike[str],
        *,
        metadata: str | os.PathLike[str] | None = None,
        os_name: str | None = None,
        release: str | None = None,
        architecture: str | None = None,
        variant: str = "default",
        aliases: Sequence[str] = (),
        version: str | None = None,
        release_title: str | None = None,
    ) -> StreamImage:
        """Publish an image: ``data`` unified, or with ``metadata`` the rootfs of a
        split image (squashfs or tarball for a container, qcow2 for a VM).

        ``os_name``, ``release`` and ``architecture`` default to what the image's
        ``metadata.yaml`` says. ``version`` (``YYYYMMDD_HH:MM``) defaults to now.
        Publishing an image the product already holds changes nothing.
        """
        data_path = Path(data)
        meta_path = Path(metadata) if metadata is not None else None
        info = read_image_metadata(meta_path or data_path)
        os_name = os_name or info.properties.get("os")
        release = release or info.properties.get("release")
        if not os_name or not release:
            raise InvalidImage(
                f"{(meta_path or data_path).name}: metadata.yaml has no os/release "
                "property; give os_name and release"
            )
        arch = debian_architecture(kernel_architecture(architecture or info.architecture))
        product_name = f"{os_name}:{release}:{arch}:{variant}"
        rootfs_ftype = _rootfs_ftype(data_path) if meta_path is not None else None

        with self.lock():
            products = self.products()
            product = products.setdefault(
                product_name,
                {
                    "os": os_name,
                    "release": release,
                    "release_title": release_title or release,
                    "arch": arch,
                    "variant": variant,
                    "aliases": "",
                    "versions": {},
                },
            )
            known = ",".join(a for a in [*product["aliases"].split(","), *aliases] if a)
            product["aliases"] = ",".join(dict.fromkeys(known.split(","))) if known else ""
            staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".publish-"))
            try:
                items = self._ingest(staging, data_path, meta_path, rootfs_ftype)
                fingerprint = _fingerprint(items, rootfs_ftype)
                existing = next(
                    (i for i in images_of({product_name: product}) if i.fingerprint == fingerprint),
                    None,
                )
                if existing is not None:
                    if aliases:
                        self.write_products(products)
                    return existing
                name = self._version_for(product, items, version or info.creation_date)
                directory = f"images/{os_name}/{release}/{arch}/{variant}/{name}"
                (self.root / directory).mkdir(parents=True, exist_ok=True)
                version_items = product["versions"].setdefault(name, {"items": {}})["items"]
                for key, item in items.items():
                    item["path"] = f"{directory}/{item.pop('_staged')}"
                    staged = staging / Path(item["path"]).name
                    if staged.exists():  # the LXD and Incus keys name one file
                        os.replace(staged, self.root / item["path"])
                    if key in METADATA_KEYS and key in version_items:
                        version_items[key].update(
                            item
                        )  # same metadata file, one more combined hash
                    else:
                        version_items[key] = item
                self.write_products(products)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return next(i for i in images_of({product_name: product}) if i.fingerprint == fingerprint)

    def _ingest(
        self, staging: Path, data: Path, metadata: Path | None, rootfs_ftype: str | None
    ) -> dict[str, dict[str, Any]]:
        """Copy the files into ``staging``, hashing as they pass; return their items."""
        if metadata is None:
            digest = hashlib.sha256()
            target = staging / f"image{''.join(data.suffixes[-2:]) or '.tar'}"
            _copy_and_hash(data, target, digest)
            item = {"ftype": "", "sha256": digest.hexdigest(), "size": target.stat().st_size}
            return {key: {**item, "ftype": key, "_staged": target.name} for key in COMBINED_KEYS}
        assert rootfs_ftype is not None
        meta_digest = hashlib.sha256()
        meta_target = staging / f"metadata{''.join(metadata.suffixes[-2:]) or '.tar'}"
        _copy_and_hash(metadata, meta_target, meta_digest)
        combined = meta_digest.copy()
        rootfs_digest = hashlib.sha256()
        rootfs_name = {
            "squashfs": "rootfs.squashfs",
            "disk-kvm.img": "disk.qcow2",
            "root.tar.xz": f"rootfs{''.join(data.suffixes[-2:]) or '.tar'}",
        }[rootfs_ftype]
        rootfs_target = staging / rootfs_name
        _copy_and_hash(data, rootfs_target, rootfs_digest, combined)
        meta_item = {
            "sha256": meta_digest.hexdigest(),
            "size": meta_target.stat().st_size,
            ROOTFS_FTYPES[rootfs_ftype]: combined.hexdigest(),
            "_staged": meta_target.name,
        }
        if rootfs_ftype == "root.tar.xz":
            meta_item["combined_sha256"] = combined.hexdigest()
        items = {key: {**meta_item, "ftype": key} for key in METADATA_KEYS}
        items[rootfs_name] = {
            "ftype": rootfs_ftype,
            "sha256": rootfs_digest.hexdigest(),
            "size": rootfs_target.stat().st_size,
            "_staged": rootfs_target.name,
        }
        return items

    @staticmethod
    def _version_for(
        product: dict[str, Any], items: Mapping[str, Any], when: str | datetime | None
    ) -> str:
        """A version name that can take these items: the requested one, or the first
        free minute from it (a version holds one metadata file and one rootfs per type).
        """
        if isinstance(when, str):
            return when
        moment = (when or datetime.now(UTC)).replace(second=0, microsecond=0)
        while True:
            name = moment.strftime(VERSION_FORMAT)
            taken = product["versions"].get(name, {}).get("items", {})
            clash = any(
                key in taken
                and not (key in METADATA_KEYS and taken[key]["sha256"] == item["sha256"])
                for key, item in items.items()
            )
            if not clash:
                return name
            moment += timedelta(minutes=1)

    def prune(self, keep: int, product: str | None = None) -> list[str]:
        """Keep the newest ``keep`` versions of each product (or of ``product``);
        return the paths removed. The index stops naming files before they go.
        """
        if keep < 1:
            raise ValueError("keep at least one version")
        with self.lock():
            products = self.products()
            dropped: set[str] = set()
            for name, entry in products.items():
                if product is not None and name != product:
                    continue
                versions = sorted(entry["versions"], reverse=True)
                for old in versions[keep:]:
                    for item in entry["versions"].pop(old)["items"].values():
                        dropped.add(item["path"])
            if not dropped:
                return []
            still_named = {
                item["path"]
                for entry in products.values()
                for version in entry["versions"].values()
                for item in version["items"].values()
            }
            self.write_products(products)
            removed = sorted(dropped - still_named)
            for path in removed:
                with suppress(FileNotFoundError):
                    (self.root / path).unlink()
                with suppress(OSError):
                    (self.root / path).parent.rmdir()
            return removed


def _fingerprint(items: Mapping[str, Mapping[str, Any]], rootfs_ftype: str | None) -> str:
    if rootfs_ftype is None:
        return str(items[COMBINED_KEYS[0]]["sha256"])
    return str(items[METADATA_KEYS[0]][ROOTFS_FTYPES[rootfs_ftype]])
