"""``publish``, ``serve`` and ``mirror``: simplestreams trees from the command line."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from ..simplestreams import (
    MirrorFilter,
    SimplestreamsSource,
    Tree,
)
from ..simplestreams import (
    mirror as mirror_tree,
)

__all__ = ["mirror", "publish", "serve"]


@click.command()
@click.argument("tree", type=click.Path(file_okay=False, path_type=Path))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument(
    "rootfs", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--alias", "aliases", multiple=True, metavar="NAME", help="Alias (repeatable).")
@click.option("--os", "os_name", metavar="NAME", help="Default: metadata.yaml's os property.")
@click.option("--release", metavar="NAME", help="Default: metadata.yaml's release property.")
@click.option("--arch", "architecture", metavar="ARCH", help="Default: metadata.yaml's.")
@click.option("--variant", default="default", show_default=True)
@click.option("--version", metavar="YYYYMMDD_HH:MM", help="Version name (default: now).")
@click.option("--keep", type=int, metavar="N", help="Then keep only the newest N versions.")
def publish(
    tree: Path,
    file: Path,
    rootfs: Path | None,
    aliases: tuple[str, ...],
    os_name: str | None,
    release: str | None,
    architecture: str | None,
    variant: str,
    version: str | None,
    keep: int | None,
) -> None:
    """Publish an image into TREE, a simplestreams tree that LXD and Incus accept.

    \b
    FILE is a unified image tarball, or the metadata tarball of a split image
    whose ROOTFS follows (squashfs or tarball for a container, qcow2 for a VM).
    The tree is plain files: serve it with 'lxdimages serve' or any web server.
    \b
      lxdimages publish ./tree build/meta.tar.xz build/rootfs.squashfs --alias myos/1
    """
    target = Tree(tree)
    data, metadata = (rootfs, file) if rootfs is not None else (file, None)
    image = target.add(
        data,
        metadata=metadata,
        os_name=os_name,
        release=release,
        architecture=architecture,
        variant=variant,
        aliases=aliases,
        version=version,
    )
    click.echo(f"Published {image.product} {image.version} {image.type}: {image.fingerprint}")
    if keep is not None:
        for path in target.prune(keep, image.product):
            click.echo(f"Pruned {path}")


@click.command()
@click.argument("tree", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8443, show_default=True, type=int)
@click.option("--cert", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--cert-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path.home() / ".config/lxdimages/serve",
    show_default=True,
    help="Where the self-signed certificate is kept when --cert is not given.",
)
@click.option("--public-url", help="The URL clients use, when behind a proxy.")
def serve(
    tree: Path,
    host: str,
    port: int,
    cert: Path | None,
    key: Path | None,
    cert_dir: Path,
    public_url: str | None,
) -> None:
    """Serve TREE over HTTPS as a simplestreams image server.

    \b
    Also answers /direct/<alias-or-fingerprint> with the headers that
    'create_from_url' (lxc image import <url>) needs. Without --cert, a
    self-signed certificate is made once and its fingerprint printed, with the
    commands that add this server as a remote.
    """
    from ..simplestreams.server import ServerCertificate, TreeServer, remote_add_commands

    if (cert is None) != (key is None):
        raise click.UsageError("give both --cert and --key, or neither")
    certificate = (
        ServerCertificate(cert, key)  # type: ignore[arg-type]
        if cert is not None
        else ServerCertificate.self_signed(cert_dir, host)
    )
    server = TreeServer(tree, certificate, host=host, port=port, public_url=public_url)
    url = public_url or server.url
    click.echo(f"Serving {tree} at {url}")
    click.echo(f"Certificate fingerprint (sha256): {certificate.fingerprint}")
    click.echo("Add it as a remote with:")
    for command in remote_add_commands(url, certificate.cert_path):
        click.echo(f"  {command}")
    with contextlib.suppress(KeyboardInterrupt):
        server.run()


@click.command()
@click.argument("source")
@click.argument("tree", type=click.Path(file_okay=False, path_type=Path))
@click.option("--os", "os_names", multiple=True, metavar="NAME", help="Only this os (repeatable).")
@click.option("--release", "releases", multiple=True, metavar="NAME")
@click.option("--arch", "architectures", multiple=True, metavar="ARCH", help="amd64 or x86_64.")
@click.option("--variant", "variants", multiple=True, metavar="NAME")
@click.option("--type", "types", multiple=True, type=click.Choice(["container", "virtual-machine"]))
@click.option("--keep", type=int, metavar="N", help="Newest N versions per product.")
@click.option(
    "--cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Pinned certificate of the source server.",
)
@click.pass_context
def mirror(
    ctx: click.Context,
    source: str,
    tree: Path,
    os_names: tuple[str, ...],
    releases: tuple[str, ...],
    architectures: tuple[str, ...],
    variants: tuple[str, ...],
    types: tuple[str, ...],
    keep: int | None,
    cert: Path | None,
) -> None:
    """Mirror a filtered subset of the simplestreams server SOURCE (URL) into TREE.

    \b
    Incremental (verified files are not fetched again), verified (sha256 of
    every file) and resumable (an interrupted run goes on where it stopped).
    The result is a tree to serve, e.g. in an air-gapped site.
    \b
      lxdimages mirror https://images.example.net ./mirror --os debian --arch amd64 --keep 2
    """
    from . import _progress

    wanted = MirrorFilter(
        os=set(os_names) or None,
        release=set(releases) or None,
        architecture=set(architectures) or None,
        variant=set(variants) or None,
        image_type=set(types) or None,  # type: ignore[arg-type]
        keep=keep,
    )
    with (
        SimplestreamsSource(source, verify=cert or True) as server,
        _progress(ctx, "Mirroring") as bar,
    ):
        result = mirror_tree(server, tree, wanted, progress=bar)
    click.echo(
        f"{len(result.images)} images; fetched {len(result.fetched)} files, resumed "
        f"{len(result.resumed)}, kept {len(result.kept)}, removed {len(result.removed)}"
    )
