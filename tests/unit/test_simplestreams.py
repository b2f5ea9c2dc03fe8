"""Simplestreams parsing and publishing, on the filesystem only."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
from pathlib import Path

import pytest

from lxdimages.exceptions import InvalidImage, InvalidStream, StreamImageNotFound
from lxdimages.simplestreams import SimplestreamsSource, Tree
from lxdimages.simplestreams.model import (
    debian_architecture,
    kernel_architecture,
    parse_index,
    parse_products,
    resolve,
    version_date,
)
from lxdimages.testing import write_split_image, write_unified_image


def listing(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lxdimages.lock"
    }


def test_architecture_names() -> None:
    assert kernel_architecture("amd64") == "x86_64"
    assert kernel_architecture("x86_64") == "x86_64"
    assert debian_architecture("aarch64") == "arm64"
    assert debian_architecture("ppc64el") == "ppc64el"


def test_version_dates() -> None:
    assert version_date("20241201_05:24").isoformat() == "2024-12-01T05:24:00+00:00"  # type: ignore[union-attr]
    assert version_date("20241201").isoformat() == "2024-12-01T00:00:00+00:00"  # type: ignore[union-attr]
    assert version_date("latest") is None


def test_products_parsed_like_lxd() -> None:
    doc = {
        "format": "products:1.0",
        "products": {
            "debian:12:amd64:cloud": {
                "os": "debian", "release": "12", "release_title": "bookworm", "arch": "amd64",
                "variant": "cloud", "aliases": "debian/12/cloud, debian/bookworm/cloud",
                "versions": {
                    "20240101_00:00": {"items": {
                        "lxd.tar.xz": {"ftype": "lxd.tar.xz", "path": "a/lxd.tar.xz", "sha256": "aa", "size": 10,
                                       "combined_squashfs_sha256": "c1", "combined_disk-kvm-img_sha256": "c2"},
                        "root.squashfs": {"ftype": "squashfs", "path": "a/root.squashfs", "sha256": "bb", "size": 100},
                        "disk.qcow2": {"ftype": "disk-kvm.img", "path": "a/disk.qcow2", "sha256": "cc", "size": 1000},
                        "root.squashfs.vcdiff": {"ftype": "squashfs.vcdiff", "path": "a/x.vcdiff", "sha256": "dd", "size": 5},
                    }},
                    "20240201_00:00": {"items": {
                        "incus_combined.tar.gz": {"ftype": "incus_combined.tar.gz", "path": "b/u.tar.gz", "sha256": "ee", "size": 7},
                    }},
                },
            }
        },
    }
    images = parse_products(json.dumps(doc).encode())
    by_fp = {i.fingerprint: i for i in images}
    assert set(by_fp) == {"c1", "c2", "ee"}
    assert by_fp["c1"].type == "container" and by_fp["c1"].size == 110
    assert by_fp["c2"].type == "virtual-machine" and by_fp["c2"].rootfs.path == "a/disk.qcow2"  # type: ignore[union-attr]
    assert by_fp["ee"].rootfs is None and by_fp["ee"].architecture == "x86_64"
    assert by_fp["c1"].aliases == ("debian/12/cloud", "debian/bookworm/cloud")
    # newest container for the alias and architecture
    assert resolve(images, "debian/12/cloud", architecture="amd64").fingerprint == "ee"
    assert resolve(images, "debian/12/cloud", architecture="x86_64", image_type="virtual-machine").fingerprint == "c2"
    assert resolve(images, "c1", architecture="x86_64").fingerprint == "c1"
    with pytest.raises(StreamImageNotFound, match="s390x"):
        resolve(images, "debian/12/cloud", architecture="s390x")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b'{"format": "index:1.0", "index": {"x"', "not valid JSON"),
        (b"[]", "not a JSON object"),
        (b'{"format": "products:1.0"}', "not a simplestreams index"),
        (b'{"format": "index:1.0", "index": {}}', "names no image-downloads"),
    ],
)
def test_bad_index(data: bytes, match: str) -> None:
    with pytest.raises(InvalidStream, match=match):
        parse_index(data)


def test_bad_products() -> None:
    with pytest.raises(InvalidStream, match="lacks path"):
        parse_products(json.dumps({"format": "products:1.0", "products": {"p": {"versions": {
            "20240101": {"items": {"lxd_combined.tar.gz": {"ftype": "lxd_combined.tar.gz"}}}}}}}).encode())


# -- publishing -------------------------------------------------------------------------


def test_publish_reads_metadata_and_hashes(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "tree")
    unified = write_unified_image(tmp_path / "u.tar.gz", properties={"os": "alpine", "release": "3.20"})
    image = tree.add(unified, aliases=["alpine/3.20"])
    assert image.fingerprint == hashlib.sha256(unified.read_bytes()).hexdigest()
    assert (image.os, image.release, image.architecture) == ("alpine", "3.20", "x86_64")
    assert image.product == "alpine:3.20:amd64:default"
    metadata, rootfs = write_split_image(tmp_path, properties={"os": "alpine", "release": "edge"})
    split = tree.add(rootfs, metadata=metadata, aliases=["alpine/edge"], variant="cloud")
    assert split.fingerprint == hashlib.sha256(metadata.read_bytes() + rootfs.read_bytes()).hexdigest()
    # both daemons' item names, naming the same files
    products = json.loads((tree.root / "streams/v1/images.json").read_text())["products"]
    items = next(iter(products["alpine:edge:amd64:cloud"]["versions"].values()))["items"]
    assert items["lxd.tar.xz"]["path"] == items["incus.tar.xz"]["path"]
    assert set(products["alpine:3.20:amd64:default"]["versions"].popitem()[1]["items"]) == {
        "lxd_combined.tar.gz", "incus_combined.tar.gz"}
    # every file the index names exists with its hash
    with SimplestreamsSource(tree.root) as source:
        for found in source.images():
            for file in found.files:
                assert hashlib.sha256((tree.root / file.path).read_bytes()).hexdigest() == file.sha256


def test_publish_twice_changes_nothing(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "tree")
    unified = write_unified_image(tmp_path / "u.tar.gz")
    first = tree.add(unified, aliases=["bb"])
    before = listing(tree.root)
    again = tree.add(unified, aliases=["bb"])
    assert again == first
    assert listing(tree.root) == before


def test_image_without_metadata_changes_nothing(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "tree")
    tree.add(write_unified_image(tmp_path / "u.tar.gz"))
    before = listing(tree.root)
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as archive:
        info = tarfile.TarInfo("rootfs/x")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(InvalidImage, match="no metadata.yaml"):
        tree.add(bad)
    not_a_tarball = tmp_path / "junk.tar.gz"
    not_a_tarball.write_bytes(b"junk" * 100)
    with pytest.raises(InvalidImage, match="not a readable tarball"):
        tree.add(not_a_tarball)
    assert listing(tree.root) == before
    assert [p.name for p in tree.root.iterdir() if p.name.startswith(".publish")] == []


def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "tree")
    published = [
        tree.add(write_unified_image(tmp_path / f"u{n}.tar.gz"), aliases=["bb"], version=f"2024010{n}_00:00")
        for n in range(1, 5)
    ]
    removed = tree.prune(keep=2)
    kept = {image.fingerprint for image in tree.images()}
    assert kept == {published[2].fingerprint, published[3].fingerprint}
    assert len(removed) == 2
    for path in removed:
        assert not (tree.root / path).exists()
    assert tree.prune(keep=2) == []


def test_readers_never_see_a_half_written_index(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "tree")
    tree.add(write_unified_image(tmp_path / "first.tar.gz"), aliases=["bb"])
    images = [write_unified_image(tmp_path / f"u{n}.tar.gz") for n in range(6)]
    stop = threading.Event()
    problems: list[str] = []
    reads = [0]

    def named() -> set[str]:
        with SimplestreamsSource(tree.root) as source:
            return {file.path for image in source.images() for file in image.files}

    def reader() -> None:
        while not stop.is_set():
            try:
                missing = {path for path in named() if not (tree.root / path).exists()}
                # A file pruned after this read is fine; one the index still names is not.
                if missing & named():
                    problems.append(f"the index names missing files: {missing & named()}")
                reads[0] += 1
            except InvalidStream as error:
                problems.append(str(error))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for n, image in enumerate(images):
        tree.add(image, aliases=["bb"], version=f"2025010{n}_00:00")
        tree.prune(keep=2)
    stop.set()
    for thread in threads:
        thread.join()
    assert problems == []
    assert reads[0] > 0
