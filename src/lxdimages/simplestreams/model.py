"""The simplestreams image format, without I/O: parse, resolve and build index files.

The rules follow what LXD 5.0 and Incus 6.0 read: ``streams/v1/index.json``
names products files; in each product version, a metadata item (``lxd.tar.xz``
for LXD, ``incus.tar.xz`` for Incus) combines with a rootfs item (``squashfs``,
``root.tar.xz`` or ``disk-kvm.img``) into a split image whose fingerprint is the
metadata item's ``combined_*_sha256``; a ``lxd_combined.tar.gz`` /
``incus_combined.tar.gz`` item is a unified image whose fingerprint is its sha256.
Version names are dates (``20241201_05:24`` or ``20241201``).
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal

from ..exceptions import InvalidStream, StreamImageNotFound

__all__ = [
    "INDEX_PATH",
    "ImageType",
    "StreamFile",
    "StreamImage",
    "debian_architecture",
    "host_architecture",
    "images_of",
    "kernel_architecture",
    "parse_index",
    "parse_products",
    "resolve",
]

INDEX_PATH = "streams/v1/index.json"
ImageType = Literal["container", "virtual-machine"]

# simplestreams (Debian) names and the kernel names LXD and metadata.yaml use.
_ARCHITECTURES = {
    "amd64": "x86_64",
    "i386": "i686",
    "arm64": "aarch64",
    "armhf": "armv7l",
    "armel": "armv6l",
    "ppc64el": "ppc64le",
    "powerpc": "ppc",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "loong64": "loongarch64",
}
_DEBIAN = {kernel: debian for debian, kernel in _ARCHITECTURES.items()}

#: Metadata items, in the order of preference, and the unified ones.
METADATA_KEYS = ("lxd.tar.xz", "incus.tar.xz")
COMBINED_KEYS = ("lxd_combined.tar.gz", "incus_combined.tar.gz")
#: rootfs file types and the metadata item field holding the combined fingerprint.
ROOTFS_FTYPES = {
    "squashfs": "combined_squashfs_sha256",
    "root.tar.xz": "combined_rootxz_sha256",
    "disk-kvm.img": "combined_disk-kvm-img_sha256",
}


def kernel_architecture(name: str) -> str:
    """``amd64`` -> ``x86_64``; kernel names pass through."""
    return _ARCHITECTURES.get(name, name)


def debian_architecture(name: str) -> str:
    """``x86_64`` -> ``amd64``; Debian names pass through."""
    return _DEBIAN.get(name, name)


def host_architecture() -> str:
    """This machine's architecture, as the daemons name it (``x86_64``)."""
    machine = platform.machine()
    return {"arm64": "aarch64", "amd64": "x86_64"}.get(machine, machine)


@dataclass(frozen=True)
class StreamFile:
    """One file of an image on a simplestreams server, relative to the server's root."""

    path: str
    sha256: str
    size: int
    ftype: str

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class StreamImage:
    """An image a simplestreams server offers, with the fields ``lxc image list`` shows."""

    product: str
    version: str
    fingerprint: str
    os: str
    release: str
    release_title: str
    architecture: str  # kernel name: x86_64
    variant: str
    type: ImageType
    aliases: tuple[str, ...]
    size: int
    created_at: datetime | None
    metadata: StreamFile  # the unified tarball when ``rootfs`` is None
    rootfs: StreamFile | None = None
    properties: Mapping[str, str] = field(default_factory=dict)

    @property
    def files(self) -> list[StreamFile]:
        """The files to fetch, in the order the fingerprint hashes them."""
        return [self.metadata] if self.rootfs is None else [self.metadata, self.rootfs]

    @property
    def is_split(self) -> bool:
        return self.rootfs is not None

    @property
    def description(self) -> str:
        return (
            f"{self.os} {self.release_title} {debian_architecture(self.architecture)} "
            f"({self.variant}) ({self.version})"
        )


def load_json(data: bytes, what: str) -> dict[str, Any]:
    """A JSON object from ``data``, or ``InvalidStream`` naming ``what`` was bad."""
    try:
        doc = json.loads(data)
    except ValueError as error:
        raise InvalidStream(f"{what} is not valid JSON (truncated or corrupt?): {error}") from None
    if not isinstance(doc, dict):
        raise InvalidStream(f"{what} is not a JSON object")
    return doc


def parse_index(data: bytes) -> list[str]:
    """The paths of the image products files an ``index.json`` names."""
    doc = load_json(data, INDEX_PATH)
    if doc.get("format") != "index:1.0" or not isinstance(doc.get("index"), dict):
        raise InvalidStream(f"{INDEX_PATH} is not a simplestreams index (format index:1.0)")
    paths = [
        str(entry["path"])
        for entry in doc["index"].values()
        if isinstance(entry, dict)
        and entry.get("datatype") == "image-downloads"
        and entry.get("path")
    ]
    if not paths:
        raise InvalidStream(f"{INDEX_PATH} names no image-downloads products file")
    return paths


def version_date(version: str) -> datetime | None:
    """The creation date a version name carries (``20241201_05:24``, ``20241201``)."""
    for pattern in ("%Y%m%d_%H:%M", "%Y%m%d"):
        try:
            return datetime.strptime(version, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _file(item: Mapping[str, Any], what: str) -> StreamFile:
    try:
        return StreamFile(
            path=str(item["path"]),
            sha256=str(item["sha256"]).lower(),
            size=int(item["size"]),
            ftype=str(item["ftype"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidStream(f"{what}: item lacks path, sha256, size or ftype ({error})") from None


def parse_products(data: bytes, what: str = "products file") -> list[StreamImage]:
    """Every image in a products file (``images.json``), newest version first per product."""
    doc = load_json(data, what)
    products = doc.get("products")
    if doc.get("format") != "products:1.0" or not isinstance(products, dict):
        raise InvalidStream(f"{what} is not a simplestreams products file (format products:1.0)")
    images: list[StreamImage] = []
    for name, product in products.items():
        if not isinstance(product, dict) or not isinstance(product.get("versions"), dict):
            raise InvalidStream(f"{what}: product {name} has no versions")
        for version in sorted(product["versions"], reverse=True):
            items = product["versions"][version].get("items") or {}
            images.extend(_version_images(str(name), product, str(version), items, what))
    return images


def _version_images(
    name: str, product: Mapping[str, Any], version: str, items: Mapping[str, Any], what: str
) -> list[StreamImage]:
    where = f"{what}: {name} {version}"
    aliases = str(product.get("aliases", "")).split(",")
    image = partial(
        StreamImage,
        product=name,
        version=version,
        os=str(product.get("os", "")),
        release=str(product.get("release", "")),
        release_title=str(product.get("release_title") or product.get("release", "")),
        architecture=kernel_architecture(str(product.get("arch", ""))),
        variant=str(product.get("variant", "default")),
        aliases=tuple(alias.strip() for alias in aliases if alias.strip()),
        created_at=version_date(version),
    )
    found: list[StreamImage] = []
    meta_key = next((key for key in METADATA_KEYS if key in items), None)
    if meta_key is not None:
        meta_item = items[meta_key]
        metadata = _file(meta_item, where)
        for item in items.values():
            ftype = item.get("ftype")
            if ftype not in ROOTFS_FTYPES:
                continue
            rootfs = _file(item, where)
            fingerprint = str(
                meta_item.get(ROOTFS_FTYPES[ftype]) or meta_item.get("combined_sha256") or ""
            ).lower()
            if not fingerprint:
                raise InvalidStream(f"{where}: {meta_key} has no {ROOTFS_FTYPES[ftype]}")
            found.append(
                image(
                    fingerprint=fingerprint,
                    type="virtual-machine" if ftype == "disk-kvm.img" else "container",
                    size=metadata.size + rootfs.size,
                    metadata=metadata,
                    rootfs=rootfs,
                )
            )
    combined_key = next((key for key in COMBINED_KEYS if key in items), None)
    if combined_key is not None:
        combined = _file(items[combined_key], where)
        found.append(
            image(
                fingerprint=combined.sha256,
                type="container",
                size=combined.size,
                metadata=combined,
            )
        )
    return found


def resolve(
    images: Iterable[StreamImage],
    name: str,
    *,
    architecture: str | None = None,
    image_type: ImageType = "container",
) -> StreamImage:
    """The image an alias or fingerprint (prefix) names, as a daemon would pick it.

    An alias picks the newest version for the architecture (default: this host's)
    and type; a fingerprint prefix must be unique.
    """
    architecture = kernel_architecture(architecture or host_architecture())
    candidates = list(images)
    by_alias = [
        image
        for image in candidates
        if name in image.aliases and image.architecture == architecture and image.type == image_type
    ]
    if by_alias:
        return max(by_alias, key=lambda image: image.version)
    by_fingerprint = {
        image.fingerprint: image
        for image in candidates
        if image.fingerprint.startswith(name.lower())
    }
    if len(by_fingerprint) == 1:
        return next(iter(by_fingerprint.values()))
    if len(by_fingerprint) > 1:
        raise StreamImageNotFound(
            f"fingerprint prefix {name!r} matches {len(by_fingerprint)} images"
        )
    raise StreamImageNotFound(
        f"no {image_type} image {name!r} for architecture {architecture} "
        f"(aliases here: {', '.join(sorted({a for i in candidates for a in i.aliases})) or 'none'})"
    )


def products_document(products: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "content_id": "images",
        "datatype": "image-downloads",
        "format": "products:1.0",
        "products": dict(products),
    }


def index_document(products: Iterable[str], products_path: str, updated: str) -> dict[str, Any]:
    return {
        "format": "index:1.0",
        "index": {
            "images": {
                "datatype": "image-downloads",
                "path": products_path,
                "format": "products:1.0",
                "updated": updated,
                "products": sorted(products),
            }
        },
    }


def images_of(products: Mapping[str, Any]) -> list[StreamImage]:
    """The images of raw products (as in a products file's ``products`` object)."""
    return parse_products(json.dumps(products_document(products)).encode())
