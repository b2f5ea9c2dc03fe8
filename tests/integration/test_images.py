"""The documented images API against real LXD 5.0 and Incus 6.0 daemons."""

from __future__ import annotations

import hashlib
import io
import secrets
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lxdimages import (
    AmbiguousFingerprint,
    Client,
    Conflict,
    FingerprintMismatch,
    Image,
    ImageExists,
    LXDAPIException,
    NotFound,
    Operation,
    OperationFailed,
    SplitImageError,
)
from lxdimages.protocol import API, ApiRequest
from lxdimages.testing import ThrowawayDaemon, write_split_image, write_unified_image


def sha256(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def fingerprints(client: Client) -> set[str]:
    return {image.fingerprint for image in client.images.all()}


# -- create -------------------------------------------------------------------------


def test_create_documented_example(client: Client, unified: Path) -> None:
    image_data = open(unified, "rb").read()  # noqa: SIM115 (the documentation's own words)
    image = client.images.create(image_data, public=True, wait=True)
    assert image.fingerprint == sha256(unified)
    assert image.public is True
    assert client.images.get(image.fingerprint).public is True


def test_create_from_path_names_the_file(client: Client, unified: Path) -> None:
    image = client.images.create(unified)
    assert image.filename == unified.name
    assert image.public is False
    assert image.size == unified.stat().st_size
    assert image.architecture == "x86_64"
    assert image.type == "container"
    assert image.properties["os"] == "busybox"


def test_create_without_client_side_check(client: Client, unified: Path) -> None:
    image = client.images.create(unified, verify=False)
    assert image.fingerprint == sha256(unified)


def test_create_from_file_object_streams_it(client: Client, unified: Path) -> None:
    with unified.open("rb") as handle:
        image = client.images.create(handle, filename="given.tar.gz", properties={"team": "ci"})
    assert image.fingerprint == sha256(unified)
    assert image.filename == "given.tar.gz"
    assert image.properties["team"] == "ci"


def test_attributes_have_python_types(client: Client, unified: Path) -> None:
    before = datetime.now(UTC) - timedelta(minutes=5)
    image = client.images.create(unified)
    assert isinstance(image.created_at, datetime) and image.created_at.tzinfo is not None
    assert image.uploaded_at is not None and image.uploaded_at >= before
    assert image.last_used_at is None  # never used
    assert image.expires_at is None  # never expires
    assert image.cached is False
    assert image.auto_update is False
    assert image.update_source is None
    assert image.aliases == []
    assert image.profiles == ["default"]
    assert image.project == "default"


def test_create_without_waiting_returns_the_operation(client: Client, unified: Path) -> None:
    operation = client.images.create(unified, wait=False)
    assert isinstance(operation, Operation)
    image = operation.wait(timeout=60)
    assert isinstance(image, Image)
    assert image.fingerprint == sha256(unified)


def test_create_with_aliases(client: Client, unified: Path) -> None:
    image = client.images.create(unified, aliases=["web/latest", "web"])
    assert sorted(a["name"] for a in image.aliases) == ["web", "web/latest"]
    assert client.images.get_by_alias("web/latest") == image


def test_split_container_image(client: Client, tmp_path: Path) -> None:
    metadata, rootfs = write_split_image(tmp_path)
    image = client.images.create(rootfs, metadata=metadata)
    assert image.fingerprint == sha256(metadata, rootfs)
    assert image.type == "container"
    assert image.filename == rootfs.name


def test_split_vm_image(client: Client, tmp_path: Path) -> None:
    metadata, disk = write_split_image(tmp_path, vm=True)
    image = client.images.create(disk, metadata=metadata)
    assert image.fingerprint == sha256(metadata, disk)
    assert image.type == "virtual-machine"


# -- failure paths: typed errors, nothing left behind --------------------------------


def test_corrupt_tarball(client: Client) -> None:
    with pytest.raises(OperationFailed) as raised:
        client.images.create(b"this is no tarball at all" * 100)
    assert "compression" in raised.value.message.lower()
    assert fingerprints(client) == set()


def test_tarball_without_metadata(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "no-metadata.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("rootfs/hello")
        payload = secrets.token_bytes(64)
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    with pytest.raises(LXDAPIException, match="metadata.yaml"):
        client.images.create(path)
    assert fingerprints(client) == set()


def test_same_image_twice_is_image_exists(client: Client, unified: Path) -> None:
    first = client.images.create(unified)
    with pytest.raises(ImageExists, match="already exists"):
        client.images.create(unified)
    assert fingerprints(client) == {first.fingerprint}  # the original is untouched


def test_alias_that_exists_uploads_nothing(client: Client, unified: Path, tmp_path: Path) -> None:
    first = client.images.create(unified, aliases=["taken"])
    other = write_unified_image(tmp_path / "other.tar.gz")
    with pytest.raises(Conflict, match="already exists"):
        client.images.create(other, aliases=["taken"])
    assert fingerprints(client) == {first.fingerprint}


def test_unknown_fingerprint(client: Client) -> None:
    with pytest.raises(NotFound) as raised:
        client.images.get("0" * 64)
    assert raised.value.status_code == 404
    assert "not found" in raised.value.message.lower()
    assert client.images.exists("0" * 64) is False


def test_unknown_alias(client: Client) -> None:
    with pytest.raises(NotFound):
        client.images.get_by_alias("no-such-alias")
    assert client.images.exists("no-such-alias", alias=True) is False


def test_prefix_lookup_unique_and_ambiguous(client: Client, tmp_path: Path) -> None:
    # 17 images: two must share their first hex digit.
    made = [
        client.images.create(write_unified_image(tmp_path / f"i{n}.tar", compress=False))
        for n in range(17)
    ]
    by_first: dict[str, list[Image]] = {}
    for image in made:
        by_first.setdefault(image.fingerprint[0], []).append(image)
    shared = next(group for group in by_first.values() if len(group) > 1)
    prefix = shared[0].fingerprint[0]
    with pytest.raises(AmbiguousFingerprint) as raised:
        client.images.get(prefix)
    assert "More than one image matches" in raised.value.message
    unique = made[0].fingerprint[:12]
    assert client.images.get(unique) == made[0]


# -- reading ------------------------------------------------------------------------


def test_all_get_exists(client: Client, unified: Path, tmp_path: Path) -> None:
    one = client.images.create(unified, aliases=["one"])
    two = client.images.create(write_unified_image(tmp_path / "two.tar.gz"))
    listed = {image.fingerprint: image for image in client.images.all()}
    assert set(listed) == {one.fingerprint, two.fingerprint}
    assert listed[one.fingerprint].aliases == [{"name": "one", "description": ""}]
    assert client.images.get(two.fingerprint).size == two.size
    assert client.images.exists(one.fingerprint)
    assert client.images.exists("one", alias=True)


# -- changing ----------------------------------------------------------------------


def test_save_persists_writable_fields(client: Client, unified: Path) -> None:
    image = client.images.create(unified)
    image.public = True
    image.auto_update = True
    image.properties["stage"] = "tested"
    expiry = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    image.expires_at = expiry
    image.save()
    again = client.images.get(image.fingerprint)
    assert again.public is True
    assert again.auto_update is True
    assert again.properties["stage"] == "tested"
    assert again.expires_at == expiry


def test_concurrent_change_is_a_conflict(client: Client, unified: Path) -> None:
    image = client.images.create(unified)
    first = client.images.get(image.fingerprint)
    second = client.images.get(image.fingerprint)
    first.properties["owner"] = "first"
    first.save()
    second.properties["owner"] = "second"
    with pytest.raises(Conflict):
        second.save()
    assert client.images.get(image.fingerprint).properties["owner"] == "first"


def test_aliases_kept_in_step(client: Client, unified: Path) -> None:
    image = client.images.create(unified)
    image.add_alias("stable", "the stable one")
    assert image.aliases == [{"name": "stable", "description": "the stable one"}]
    assert client.images.get_by_alias("stable") == image
    with pytest.raises(Conflict):
        image.add_alias("stable")
    image.delete_alias("stable")
    assert image.aliases == []
    assert client.images.get(image.fingerprint).aliases == []
    with pytest.raises(NotFound):
        image.delete_alias("stable")


def test_delete_alias_of_another_image_is_refused(
    client: Client, unified: Path, tmp_path: Path
) -> None:
    one = client.images.create(unified)
    two = client.images.create(write_unified_image(tmp_path / "two.tar.gz"), aliases=["two"])
    with pytest.raises(NotFound, match="not at this image"):
        one.delete_alias("two")
    assert client.images.get_by_alias("two") == two


def test_delete(client: Client, unified: Path) -> None:
    image = client.images.create(unified)
    assert image.delete(wait=True) is None
    assert fingerprints(client) == set()


def test_delete_without_waiting(client: Client, unified: Path) -> None:
    image = client.images.create(unified)
    operation = image.delete()
    assert isinstance(operation, Operation)
    assert operation.wait() is None
    assert not client.images.exists(image.fingerprint)


# -- export -------------------------------------------------------------------------


def test_export_documented(client: Client, unified: Path) -> None:
    image = client.images.create(unified)
    with image.export() as exported:
        data = exported.read()
    assert hashlib.sha256(data).hexdigest() == image.fingerprint
    assert data == unified.read_bytes()


def test_export_to_unified_names_like_lxc(client: Client, unified: Path, tmp_path: Path) -> None:
    image = client.images.create(unified)
    target = tmp_path / "out"
    target.mkdir()
    paths = image.export_to(target)
    assert [p.name for p in paths] == [f"{image.fingerprint}.tar.gz"]
    assert sorted(p.name for p in target.iterdir()) == [f"{image.fingerprint}.tar.gz"]
    assert sha256(*paths) == image.fingerprint


def test_export_to_split_image(client: Client, tmp_path: Path) -> None:
    metadata, rootfs = write_split_image(tmp_path)
    image = client.images.create(rootfs, metadata=metadata)
    target = tmp_path / "out"
    target.mkdir()
    meta_out, rootfs_out = image.export_to(target)
    assert meta_out.name == f"meta-{image.fingerprint}.tar.gz"
    assert rootfs_out.name == f"{image.fingerprint}.tar.gz"
    assert meta_out.read_bytes() == metadata.read_bytes()
    assert rootfs_out.read_bytes() == rootfs.read_bytes()
    assert sha256(meta_out, rootfs_out) == image.fingerprint


def test_export_of_split_image_is_refused_as_one_file(client: Client, tmp_path: Path) -> None:
    metadata, rootfs = write_split_image(tmp_path)
    image = client.images.create(rootfs, metadata=metadata)
    with pytest.raises(SplitImageError, match="export_to"):
        image.export()


def test_export_to_vm_image(client: Client, tmp_path: Path) -> None:
    metadata, disk = write_split_image(tmp_path, vm=True)
    image = client.images.create(disk, metadata=metadata)
    target = tmp_path / "out"
    target.mkdir()
    paths = image.export_to(target)
    assert len(paths) == 2
    assert sha256(*paths) == image.fingerprint


def _tamper(daemon: ThrowawayDaemon, image: Image) -> None:
    """Corrupt the daemon's stored copy of an image, keeping its size."""
    stored = daemon.directory / "images" / image.fingerprint
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))


def test_export_that_does_not_match_leaves_nothing(
    client: Client, daemon: ThrowawayDaemon, unified: Path, tmp_path: Path
) -> None:
    image = client.images.create(unified)
    _tamper(daemon, image)
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(FingerprintMismatch) as raised:
        image.export_to(target)
    assert raised.value.expected == image.fingerprint
    assert list(target.iterdir()) == []
    with pytest.raises(FingerprintMismatch):
        image.export()


def test_export_of_unknown_image_leaves_nothing(
    client: Client, unified: Path, tmp_path: Path
) -> None:
    image = client.images.create(unified)
    image.delete(wait=True)
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(NotFound):
        image.export_to(target)
    assert list(target.iterdir()) == []


# -- projects -----------------------------------------------------------------------


def test_project_scopes_every_call(daemon: ThrowawayDaemon, unified: Path) -> None:
    name = f"p{secrets.token_hex(3)}"
    with daemon.client() as admin:
        admin.request(
            ApiRequest(
                "POST", f"{API}/projects", json={"name": name, "config": {"features.images": "true"}}
            )
        )
    try:
        with daemon.client(project=name) as scoped, daemon.client() as default:
            image = scoped.images.create(unified, aliases=["scoped"])
            assert image.project == name
            assert fingerprints(scoped) == {image.fingerprint}
            assert fingerprints(default) == set()
            assert not default.images.exists("scoped", alias=True)
            image.delete(wait=True)
    finally:
        with daemon.client() as admin:
            admin.request(ApiRequest("DELETE", f"{API}/projects/{name}"))
