"""A tour of every documented images call, end to end, against real daemons.

Uses the local LXD or Incus daemon when one answers (and removes what it made),
otherwise starts a private throwaway LXD. A throwaway Incus is the target of the
copies. Run it with ``scripts/demo`` or ``.venv/bin/python examples/tour.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import lxdimages
from lxdimages.simplestreams import ServerCertificate, Tree, TreeServer
from lxdimages.testing import ThrowawayDaemon, write_split_image, write_unified_image


def say(text: str) -> None:
    print(f"\n== {text}")


def show(text: str) -> None:
    print(f"   {text}")


def local_client() -> lxdimages.Client | None:
    """The local daemon's client, if one answers."""
    try:
        client = lxdimages.Client()
        client.host_info  # noqa: B018 (does the local daemon answer?)
    except lxdimages.ClientConnectionFailed:
        return None
    return client


@contextlib.contextmanager
def local_or_throwaway() -> Iterator[lxdimages.Client]:
    client = local_client()
    if client is not None:
        say(f"Using the local daemon at {client.endpoint}")
        with client:
            yield client
        return
    say("No local daemon answers: starting a private throwaway LXD")
    with ThrowawayDaemon("lxd") as daemon, daemon.client() as throwaway:
        show(f"LXD_DIR={daemon.directory}")
        yield throwaway


def main() -> None:
    made: list[lxdimages.Image] = []
    with (
        tempfile.TemporaryDirectory(prefix="lxdimages-tour-") as work_dir,
        local_or_throwaway() as client,
    ):
        work = Path(work_dir)
        info = client.host_info["environment"]
        show(f"server: {client.server} {client.server_version} ({info.get('server_name')})")
        show(f"trusted: {client.trusted}; has image_create_aliases: "
             f"{client.has_api_extension('image_create_aliases')}")
        try:
            tour(client, work, made)
        finally:
            say("Cleaning up: deleting every image the tour made")
            for image in made:
                with contextlib.suppress(lxdimages.NotFound):
                    image.delete(wait=True)
                    show(f"deleted {image.fingerprint[:12]}")
    say("Done: every documented call worked.")


def tour(client: lxdimages.Client, work: Path, made: list[lxdimages.Image]) -> None:
    say("Building a small busybox image (metadata.yaml + rootfs/)")
    tarball = write_unified_image(work / "an_image.tar.gz")
    show(f"{tarball.name}: {tarball.stat().st_size} bytes")

    say("client.images.create(image_data, public=True, wait=True)  -- the documented example")
    image_data = tarball.read_bytes()
    image = client.images.create(image_data, public=True, wait=True)
    made.append(image)
    show(f"fingerprint {image.fingerprint}")
    show(f"matches sha256 of the file: {image.fingerprint == hashlib.sha256(image_data).hexdigest()}")

    say("Attributes")
    for name in ("aliases", "auto_update", "architecture", "cached", "created_at", "expires_at",
                 "filename", "fingerprint", "last_used_at", "properties", "public", "size",
                 "uploaded_at", "update_source", "type", "profiles", "project"):
        show(f"{name:13} {getattr(image, name)!r}")

    say("image.public = False; image.save()  (persisted, guarded by the ETag)")
    image.public = False
    image.properties["tour"] = "yes"
    image.save()
    again = client.images.get(image.fingerprint)
    show(f"re-read: public={again.public} properties[tour]={again.properties.get('tour')}")

    say("add_alias / get_by_alias / exists / delete_alias")
    image.add_alias("tour/busybox", "made by the tour")
    show(f"aliases now {image.aliases}")
    show(f"get_by_alias('tour/busybox') -> {client.images.get_by_alias('tour/busybox')!r}")
    show(f"exists('tour/busybox', alias=True) -> {client.images.exists('tour/busybox', alias=True)}")
    image.delete_alias("tour/busybox")
    show(f"after delete_alias: {image.aliases}")
    image.add_alias("tour/busybox")

    say("all() (one request) and get(unique prefix)")
    show(f"{len(client.images.all())} image(s); get({image.fingerprint[:8]!r}) -> "
         f"{client.images.get(image.fingerprint[:8])!r}")

    say("export(): a file object, checked against the fingerprint")
    with image.export() as exported:
        digest = hashlib.sha256(exported.read()).hexdigest()
    show(f"sha256 of export == fingerprint: {digest == image.fingerprint}")

    out = work / "exported"
    out.mkdir()
    say(f"export_to({out.name}/): files named as `lxc image export` names them")
    for path in image.export_to(out):
        show(f"{path.name} ({path.stat().st_size} bytes)")

    say("A split image (metadata + rootfs) and a VM image (metadata + qcow2 disk)")
    metadata, rootfs = write_split_image(work)
    split = client.images.create(rootfs, metadata=metadata)
    made.append(split)
    show(f"split {split.fingerprint[:12]} type={split.type}")
    try:
        split.export()
    except lxdimages.SplitImageError as error:
        show(f"export() refuses a split image: {error}")
    for path in split.export_to(out):
        show(f"export_to -> {path.name}")
    vm_metadata, disk = write_split_image(work, vm=True)
    vm = client.images.create(disk, metadata=vm_metadata)
    made.append(vm)
    show(f"VM image {vm.fingerprint[:12]} type={vm.type}")

    say("Errors are typed and carry the daemon's words; nothing is left behind")
    before = len(client.images.all())
    for label, call in (
        ("a corrupt tarball", lambda: client.images.create(b"not an image" * 10)),
        ("an unknown fingerprint", lambda: client.images.get("0" * 64)),
        ("an alias that exists", lambda: client.images.create(tarball, aliases=["tour/busybox"])),
    ):
        try:
            call()
        except lxdimages.LXDImagesError as error:
            show(f"{label}: {type(error).__name__}: {error}")
    show(f"images before and after: {before} and {len(client.images.all())}")

    say("Publishing the image into a simplestreams tree and serving it over HTTPS")
    tree = Tree(work / "tree")
    published = tree.add(tarball, aliases=["tour/busybox"])
    cert = ServerCertificate.self_signed(work / "cert", "127.0.0.1")
    show(f"published {published.product} {published.version}")
    with TreeServer(tree.root, cert, port=0) as server:
        show(f"serving {server.url} (certificate {cert.fingerprint[:16]}...)")
        image.delete(wait=True)
        say("create_from_simplestreams(server, alias, certificate=<pinned PEM>)")
        image = client.images.create_from_simplestreams(
            server.url, "tour/busybox", wait=True, certificate=cert.pem
        )
        made.append(image)
        show(f"the daemon downloaded {image.fingerprint[:12]}; update_source: "
             f"{image.update_source and image.update_source['server']}")
        copy_and_url(image, split, server, cert, work)

    say("image.delete(wait=True)")
    image.delete(wait=True)
    show(f"exists: {client.images.exists(image.fingerprint)}")


def copy_and_url(
    image: lxdimages.Image,
    split: lxdimages.Image,
    server: TreeServer,
    cert: ServerCertificate,
    work: Path,
) -> None:
    # A URL source is checked with the daemon's own trust roots (no pinning):
    # this throwaway Incus trusts the tour's server through SSL_CERT_FILE.
    bundle = work / "roots.pem"
    system_roots = Path("/etc/ssl/certs/ca-certificates.crt")
    bundle.write_text((system_roots.read_text() if system_roots.exists() else "") + cert.pem)
    say("copy(): to a throwaway Incus daemon (relay through this process: LXD -> Incus)")
    with (
        ThrowawayDaemon("incus", environment={"SSL_CERT_FILE": str(bundle)}) as incus_daemon,
        incus_daemon.client() as incus,
    ):
        copied = image.copy(incus, wait=True)
        show(f"copied {copied.fingerprint[:12]} aliases={[a['name'] for a in copied.aliases]} "
             f"by {image.copy_mode()}")
        copied_split = split.copy(incus, wait=True)
        show(f"copied split {copied_split.fingerprint[:12]}")
        say("delete(wait=True) on the copy")
        copied.delete(wait=True)
        show(f"exists on Incus: {incus.images.exists(copied.fingerprint)}")
        say("create_from_url(<server>/direct/tour/busybox) on Incus")
        from_url = incus.images.create_from_url(f"{server.url}/direct/tour/busybox", wait=True)
        show(f"the daemon fetched {from_url.fingerprint[:12]} from the direct URL")


if __name__ == "__main__":
    main()
