"""The ``lxdimages`` command line: ``lxc image`` habits, with streaming, verified
transfers, relay copies across LXD and Incus, and simplestreams publishing."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import click
import yaml

from .. import exceptions as exc
from ..client import Client
from ..images import CopyMode, Image
from ..progress import ProgressCallback, RichProgressBar
from ..protocol import ApiRequest, format_timestamp
from ..simplestreams import StreamImage
from .output import (
    FORMATS,
    human_date,
    human_size,
    image_row,
    render,
    render_mapping,
    render_table,
)
from .remotes import Remote, RemoteError, load_remotes, split_remote

__all__ = ["EXIT_CODES", "main"]

F = TypeVar("F", bound=Callable[..., Any])

#: Exit codes scripts can rely on.
EXIT_CODES = {
    "ok": 0,
    "error": 1,  # the daemon refused, an operation failed
    "usage": 2,  # wrong arguments
    "not-found": 3,  # no such image, alias or remote
    "conflict": 4,  # exists already, or changed meanwhile
    "unreachable": 5,  # cannot connect, TLS failure, client not trusted
    "verification": 6,  # bytes do not hash to the fingerprint
}

_EPILOG = """\b
Images are named [REMOTE:]IMAGE, IMAGE being an alias or a fingerprint
(prefix). Remotes are those of your lxc and incus configuration
('lxdimages remote list'); without one, the local daemon.
\b
Exit codes: 0 ok, 1 the daemon refused, 2 usage, 3 not found, 4 conflict
(exists already), 5 unreachable or not trusted, 6 verification failed."""


def _hint(error: BaseException) -> str:
    if isinstance(error, exc.NotTrusted):
        return (
            "the daemon does not trust this client: add it there with "
            "'lxc config trust add' (or incus), then 'lxc remote add' with the token"
        )
    if isinstance(error, exc.ImageExists):
        return "the target already holds this image"
    if isinstance(error, exc.Conflict):
        return "pick another name, or remove the existing one first"
    if isinstance(error, exc.ClientConnectionFailed):
        return "is the daemon running, and are its address and certificate right?"
    if isinstance(error, exc.AmbiguousFingerprint):
        return "give more characters of the fingerprint"
    return ""


def _exit_code(error: BaseException) -> int:
    if isinstance(error, exc.NotFound | exc.StreamImageNotFound | RemoteError):
        return EXIT_CODES["not-found"]
    if isinstance(error, exc.Conflict):
        return EXIT_CODES["conflict"]
    if isinstance(error, exc.NotTrusted | exc.ClientConnectionFailed):
        return EXIT_CODES["unreachable"]
    if isinstance(error, exc.FingerprintMismatch):
        return EXIT_CODES["verification"]
    return EXIT_CODES["error"]


def _what_failed(ctx: click.Context) -> str:
    """The command that failed and its arguments: ``export bb/s out``."""
    running: click.Context | None = (ctx.obj or {}).get("running")
    if running is None:
        return "lxdimages"
    words = [running.command_path.removeprefix(ctx.command_path).strip()]
    for param in running.command.params:
        if isinstance(param, click.Argument) and running.params.get(param.name or ""):
            value = running.params[param.name or ""]
            words += [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
    return " ".join(words)


class _Command(click.Command):
    """Remembers the running command, for the error line."""

    def invoke(self, ctx: click.Context) -> Any:
        ctx.find_root().ensure_object(dict)["running"] = ctx
        return super().invoke(ctx)


class _Group(click.Group):
    """Turns library errors into one line, a hint and an exit code."""

    command_class = _Command
    group_class = type

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (exc.LXDImagesError, RemoteError, OSError) as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            message = error.message if isinstance(error, exc.LXDAPIException) else str(error)
            click.echo(f"Error: '{_what_failed(ctx)}' failed: {message}", err=True)
            if hint := _hint(error):
                click.echo(f"Hint: {hint}", err=True)
            ctx.exit(_exit_code(error))


def _remotes(ctx: click.Context) -> dict[str, Remote]:
    obj: dict[str, Any] = ctx.ensure_object(dict)
    if "remotes" not in obj:
        obj["remotes"] = load_remotes()
    return obj["remotes"]  # type: ignore[no-any-return]


@contextlib.contextmanager
def _progress(ctx: click.Context, description: str) -> Iterator[ProgressCallback | None]:
    """A progress bar on stderr, unless ``--quiet`` or stderr is not a terminal."""
    if ctx.find_root().params.get("quiet") or not sys.stderr.isatty():
        yield None
        return
    with RichProgressBar(description) as bar:
        yield bar


def _say(ctx: click.Context, text: str) -> None:
    if not ctx.find_root().params.get("quiet"):
        click.echo(text, err=True)


def _daemon(ctx: click.Context, argument: str) -> tuple[Client, str]:
    remote, rest = split_remote(argument, _remotes(ctx))
    return remote.client(ctx.find_root().params.get("project")), rest


def _image(client: Client, name: str) -> Image:
    """An image by alias first, then by fingerprint (prefix), as lxc resolves it."""
    try:
        return client.images.get_by_alias(name)
    except exc.NotFound:
        return client.images.get(name)


def _format_option(function: F) -> F:
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table for people; json, yaml or csv for scripts.",
    )(function)


@click.group(cls=_Group, epilog=_EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or messages on stderr.")
@click.option("--project", metavar="NAME", help="Work in this project of the daemon.")
@click.version_option(package_name="lxdimages")
@click.pass_context
def main(ctx: click.Context, debug: bool, quiet: bool, project: str | None) -> None:
    """Manage LXD and Incus images: list, import, export, copy, alias, and publish,
    serve and mirror simplestreams image servers.
    """
    ctx.ensure_object(dict)["debug"] = debug


# -- reading ------------------------------------------------------------------------


def _matches(row: dict[str, Any], filters: tuple[str, ...]) -> bool:
    for item in filters:
        key, equals, value = item.partition("=")
        if equals:
            if str(row["properties"].get(key, row.get(key, ""))) != value:
                return False
        elif not (
            row["fingerprint"].startswith(item) or any(item in alias for alias in row["aliases"])
        ):
            return False
    return True


@main.command("list", epilog=_EPILOG)
@click.argument("remote", required=False, default="local:")
@click.argument("filters", nargs=-1)
@_format_option
@click.pass_context
def list_images(
    ctx: click.Context, remote: str, filters: tuple[str, ...], output_format: str
) -> None:
    """List the images of a daemon or image server.

    \b
    FILTERS: key=value matches a property (os=debian); a bare word matches a
    fingerprint prefix or part of an alias.
    \b
      lxdimages list
      lxdimages list images: os=debian --format json
    """
    if not remote.endswith(":"):
        filters, remote = (remote, *filters), "local:"
    target, _ = split_remote(remote, _remotes(ctx))
    images: list[Image] | list[StreamImage]
    if target.is_simplestreams:
        with target.simplestreams() as source:
            images = source.images()
    else:
        with target.client(ctx.find_root().params.get("project")) as client:
            images = client.images.all()
    rows = [row for row in map(image_row, images) if _matches(row, filters)]
    render(sorted(rows, key=lambda r: (r["aliases"] or ["~"], r["fingerprint"])), output_format)


@main.command(epilog=_EPILOG)
@click.argument("image")
@click.option("--format", "output_format", type=click.Choice(["yaml", "json"]), default="yaml")
@click.pass_context
def info(ctx: click.Context, image: str, output_format: str) -> None:
    """Show everything about one image."""
    remote, name = split_remote(image, _remotes(ctx))
    if remote.is_simplestreams:
        with remote.simplestreams() as source:
            found = source.get(name)
        data: dict[str, Any] = {
            **image_row(found),
            "product": found.product,
            "version": found.version,
            "files": [f.__dict__ for f in found.files],
        }
    else:
        with remote.client(ctx.find_root().params.get("project")) as client:
            got = _image(client, name)
            data = {
                "fingerprint": got.fingerprint,
                "filename": got.filename,
                "size": f"{human_size(got.size)} ({got.size} bytes)",
                "architecture": got.architecture,
                "type": got.type,
                "public": got.public,
                "cached": got.cached,
                "auto_update": got.auto_update,
                "created_at": human_date(got.created_at),
                "uploaded_at": human_date(got.uploaded_at),
                "expires_at": human_date(got.expires_at) or "never",
                "last_used_at": human_date(got.last_used_at) or "never",
                "aliases": got.aliases,
                "properties": got.properties,
                "profiles": got.profiles,
                "project": got.project,
                "update_source": got.update_source,
            }
    render_mapping(data, output_format)


# -- moving images ------------------------------------------------------------------


@main.command("import", epilog=_EPILOG)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("rest", nargs=-1)
@click.option(
    "--alias", "aliases", multiple=True, metavar="NAME", help="Alias to create (repeatable)."
)
@click.option("--public", is_flag=True, help="Make the image public.")
@click.option(
    "--property", "properties", multiple=True, metavar="KEY=VALUE", help="Set a property."
)
@click.pass_context
def import_image(
    ctx: click.Context,
    file: Path,
    rest: tuple[str, ...],
    aliases: tuple[str, ...],
    public: bool,
    properties: tuple[str, ...],
) -> None:
    """Import an image file: FILE [ROOTFS] [REMOTE:].

    \b
    A unified tarball alone, or a metadata tarball and a rootfs (squashfs or
    tarball for a container, qcow2 for a VM) for a split image. Streams the
    files and checks the daemon's fingerprint against their sha256.
    \b
      lxdimages import build/image.tar.gz --alias ci/latest
      lxdimages import meta.tar.xz rootfs.squashfs prod: --public
    """
    remote_arg = next((r for r in rest if r.endswith(":")), "local:")
    files = [r for r in rest if not r.endswith(":")]
    if len(files) > 1:
        raise click.UsageError("give FILE, optionally a ROOTFS, then optionally REMOTE:")
    props = dict(p.split("=", 1) for p in properties if "=" in p)
    client, _ = _daemon(ctx, remote_arg)
    with client, _progress(ctx, "Importing") as bar:
        if files:
            image = client.images.create(
                Path(files[0]),
                metadata=file,
                public=public,
                aliases=aliases,
                properties=props,
                progress=bar,
            )
        else:
            image = client.images.create(
                file, public=public, aliases=aliases, properties=props, progress=bar
            )
    _say(ctx, f"Image imported with fingerprint: {image.fingerprint}")
    click.echo(image.fingerprint)


@main.command(epilog=_EPILOG)
@click.argument("image")
@click.argument(
    "directory",
    required=False,
    default=".",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
)
@click.pass_context
def export(ctx: click.Context, image: str, directory: Path) -> None:
    """Export an image into DIRECTORY (default: here), verified against its fingerprint.

    Files are named as 'lxc image export' names them; on any failure no partial
    file is left.
    """
    remote, name = split_remote(image, _remotes(ctx))
    with _progress(ctx, "Exporting") as bar:
        if remote.is_simplestreams:
            with remote.simplestreams() as source:
                paths = source.export_to(source.get(name), directory)
        else:
            with remote.client(ctx.find_root().params.get("project")) as client:
                paths = _image(client, name).export_to(directory, progress=bar)
    for path in paths:
        click.echo(str(path))


@main.command(epilog=_EPILOG)
@click.argument("source")
@click.argument("target")
@click.option("--alias", "aliases", multiple=True, metavar="NAME", help="Alias on the target.")
@click.option("--copy-aliases/--no-copy-aliases", default=True, show_default=True)
@click.option("--public/--private", default=None, help="Default: as the source image.")
@click.option("--auto-update", is_flag=True, help="Keep the copy up to date (pull copies).")
@click.option(
    "--mode",
    type=click.Choice(["auto", "pull", "relay"]),
    default="auto",
    show_default=True,
    help="pull: the target downloads from the source; relay: through this process.",
)
@click.pass_context
def copy(
    ctx: click.Context,
    source: str,
    target: str,
    aliases: tuple[str, ...],
    copy_aliases: bool,
    public: bool | None,
    auto_update: bool,
    mode: str,
) -> None:
    """Copy SOURCE ([REMOTE:]IMAGE) to TARGET (REMOTE:), LXD or Incus either way.

    \b
      lxdimages copy local:ci/latest prod:
      lxdimages copy images:debian/12 local: --alias debian --mode relay
    """
    source_remote, name = split_remote(source, _remotes(ctx))
    target_client, _ = _daemon(ctx, target)
    with target_client, _progress(ctx, "Copying") as bar:
        if source_remote.is_simplestreams:
            with source_remote.simplestreams() as stream:
                found = stream.get(name)
                if mode == "relay":
                    image = stream.copy(found, target_client, public=bool(public), progress=bar)
                else:
                    pem = source_remote.server_cert
                    image = target_client.images.create_from_simplestreams(
                        stream.url,
                        found.fingerprint,
                        public=bool(public),
                        auto_update=auto_update,
                        wait=True,
                        certificate=pem.read_text() if pem else None,
                        progress=bar,
                    )
            if copy_aliases and name in found.aliases:
                aliases = (*aliases, name)  # lxc's --copy-aliases: the alias asked for
        else:
            with source_remote.client(ctx.find_root().params.get("project")) as client:
                image = _image(client, name).copy(
                    target_client,
                    public,
                    auto_update or None,
                    wait=True,
                    mode=cast(CopyMode, mode),
                    copy_aliases=copy_aliases,
                    progress=bar,
                )
        for wanted in aliases:
            if not any(a["name"] == wanted for a in image.aliases):
                image.add_alias(wanted)
    _say(ctx, f"Image copied successfully: {image.fingerprint}")


@main.command(epilog=_EPILOG)
@click.argument("images", nargs=-1, required=True)
@click.pass_context
def delete(ctx: click.Context, images: tuple[str, ...]) -> None:
    """Delete images ([REMOTE:]IMAGE ...)."""
    for argument in images:
        client, name = _daemon(ctx, argument)
        with client:
            _image(client, name).delete(wait=True)
        _say(ctx, f"Deleted {argument}")


@main.command(epilog=_EPILOG)
@click.argument("image")
@click.pass_context
def refresh(ctx: click.Context, image: str) -> None:
    """Refresh an image from its update source (images copied with --auto-update)."""
    client, name = _daemon(ctx, image)
    with client:
        got = _image(client, name)
        envelope = client.request(ApiRequest("POST", got.path + "/refresh"))
        operation = client.operation(envelope.metadata)
        operation.wait()
        refreshed = operation.metadata.get("refreshed", False)
    click.echo("Image refreshed" if refreshed else "Image already up to date")


# -- changing -----------------------------------------------------------------------


def _writable_yaml(image: Image) -> str:
    return yaml.safe_dump(
        {
            "public": image.public,
            "auto_update": image.auto_update,
            "properties": image.properties,
            "expires_at": format_timestamp(image.expires_at),
            "profiles": image.profiles,
        },
        sort_keys=False,
    )


@main.command(epilog=_EPILOG)
@click.argument("image")
@click.pass_context
def edit(ctx: click.Context, image: str) -> None:
    """Edit an image's writable fields as YAML: in $EDITOR, or from stdin when piped.

    A change made on the daemon meanwhile is a conflict (exit 4), not overwritten.
    """
    from ..protocol import parse_timestamp

    client, name = _daemon(ctx, image)
    with client:
        got = _image(client, name)
        if sys.stdin.isatty():
            with tempfile.NamedTemporaryFile("w+", suffix=".yaml", delete=False) as handle:
                handle.write(_writable_yaml(got))
            try:
                editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
                subprocess.run([*editor.split(), handle.name], check=True)
                text = Path(handle.name).read_text()
            finally:
                os.unlink(handle.name)
        else:
            text = sys.stdin.read()
        try:
            doc = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            raise click.UsageError(f"not valid YAML: {error}") from None
        got.public = bool(doc.get("public", got.public))
        got.auto_update = bool(doc.get("auto_update", got.auto_update))
        got.properties = {str(k): str(v) for k, v in (doc.get("properties") or {}).items()}
        got.profiles = list(doc.get("profiles") or [])
        if "expires_at" in doc:
            value = doc["expires_at"]
            got.expires_at = parse_timestamp(value if isinstance(value, str) else value.isoformat())
        got.save()


def _change_property(ctx: click.Context, image: str, key: str, value: str | None) -> None:
    client, name = _daemon(ctx, image)
    with client:
        got = _image(client, name)
        if value is None:
            if key not in got.properties:
                raise exc.NotFound(f"image has no property {key!r}", 404)
            del got.properties[key]
        else:
            got.properties[key] = value
        got.save()


@main.command("set-property", epilog=_EPILOG)
@click.argument("image")
@click.argument("key")
@click.argument("value")
@click.pass_context
def set_property(ctx: click.Context, image: str, key: str, value: str) -> None:
    """Set an image property."""
    _change_property(ctx, image, key, value)


@main.command("unset-property", epilog=_EPILOG)
@click.argument("image")
@click.argument("key")
@click.pass_context
def unset_property(ctx: click.Context, image: str, key: str) -> None:
    """Remove an image property."""
    _change_property(ctx, image, key, None)


# -- aliases and remotes --------------------------------------------------------------


@main.group()
def alias() -> None:
    """Manage image aliases: list, add, delete, rename."""


@alias.command("list", epilog=_EPILOG)
@click.argument("remote", required=False, default="local:")
@_format_option
@click.pass_context
def alias_list(ctx: click.Context, remote: str, output_format: str) -> None:
    """List aliases ([REMOTE:])."""
    client, _ = _daemon(ctx, remote)
    with client:
        rows = [a.__dict__ for a in client.aliases.all()]
    if output_format == "table":
        render_table(
            ["ALIAS", "FINGERPRINT", "TYPE", "DESCRIPTION"],
            [
                [row["name"], row["target"][:12], row["type"], row["description"]]
                for row in sorted(rows, key=lambda r: r["name"])
            ],
        )
    elif output_format == "csv":
        for row in rows:
            click.echo(",".join(str(row[k]) for k in ("name", "target", "type", "description")))
    else:
        render_mapping({"aliases": rows}, output_format)


@alias.command("add", epilog=_EPILOG)
@click.argument("name")
@click.argument("image")
@click.option("--description", default="")
@click.pass_context
def alias_add(ctx: click.Context, name: str, image: str, description: str) -> None:
    """Create alias [REMOTE:]NAME for IMAGE (fingerprint or alias)."""
    client, alias_name = _daemon(ctx, name)
    with client:
        _image(client, image).add_alias(alias_name, description)


@alias.command("delete", epilog=_EPILOG)
@click.argument("name")
@click.pass_context
def alias_delete(ctx: click.Context, name: str) -> None:
    """Delete alias [REMOTE:]NAME."""
    client, alias_name = _daemon(ctx, name)
    with client:
        client.aliases.delete(alias_name)


@alias.command("rename", epilog=_EPILOG)
@click.argument("name")
@click.argument("new_name")
@click.pass_context
def alias_rename(ctx: click.Context, name: str, new_name: str) -> None:
    """Rename alias [REMOTE:]NAME to NEW_NAME."""
    client, alias_name = _daemon(ctx, name)
    with client:
        client.aliases.rename(alias_name, new_name)


@main.group()
def remote() -> None:
    """The remotes of your lxc and incus configuration."""


@remote.command("list")
@_format_option
@click.pass_context
def remote_list(ctx: click.Context, output_format: str) -> None:
    """List the remotes lxdimages can use."""
    rows: list[dict[str, Any]] = [
        {
            "name": r.name,
            "url": r.addr,
            "protocol": r.protocol,
            "public": r.public,
            "from": r.source,
            "pinned_certificate": str(r.server_cert) if r.server_cert else "",
        }
        for r in _remotes(ctx).values()
    ]
    if output_format == "table":
        render_table(
            ["NAME", "URL", "PROTOCOL", "PUBLIC", "FROM"],
            [
                [r["name"], r["url"], r["protocol"], "yes" if r["public"] else "no", r["from"]]
                for r in rows
            ],
        )
    elif output_format == "csv":
        for row in rows:
            click.echo(",".join(str(v) for v in row.values()))
    else:
        render_mapping({"remotes": rows}, output_format)


def _register_simplestreams() -> None:
    from .simplestreams import mirror, publish, serve

    for command in (publish, serve, mirror):
        main.add_command(command)


_register_simplestreams()
