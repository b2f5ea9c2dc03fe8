"""How the command line shows things: tables for people, JSON/YAML/CSV for scripts."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import yaml

from ..images import Image
from ..simplestreams import StreamImage

__all__ = [
    "FORMATS",
    "human_date",
    "human_size",
    "image_row",
    "render",
    "render_mapping",
    "render_table",
]

FORMATS = ("table", "json", "yaml", "csv")


def human_size(size: int) -> str:
    """Bytes in binary units, one decimal: ``1.5MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_date(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def image_row(image: Image | StreamImage) -> dict[str, Any]:
    """The fields ``list`` shows of a daemon's image or a simplestreams image."""
    if isinstance(image, Image):
        return {
            "aliases": [a["name"] for a in image.aliases],
            "fingerprint": image.fingerprint,
            "public": image.public,
            "description": image.properties.get("description", ""),
            "architecture": image.architecture,
            "type": image.type,
            "size": image.size,
            "uploaded_at": image.uploaded_at.isoformat() if image.uploaded_at else None,
            "properties": dict(image.properties),
        }
    return {
        "aliases": list(image.aliases),
        "fingerprint": image.fingerprint,
        "public": True,
        "description": image.description,
        "architecture": image.architecture,
        "type": image.type,
        "size": image.size,
        "uploaded_at": image.created_at.isoformat() if image.created_at else None,
        "properties": {"os": image.os, "release": image.release, "variant": image.variant},
    }


_TABLE_COLUMNS = (
    ("ALIAS", lambda r: "\n".join(r["aliases"])),
    ("FINGERPRINT", lambda r: r["fingerprint"][:12]),
    ("PUBLIC", lambda r: "yes" if r["public"] else "no"),
    ("DESCRIPTION", lambda r: r["description"]),
    ("ARCHITECTURE", lambda r: r["architecture"]),
    ("TYPE", lambda r: "VIRTUAL-MACHINE" if r["type"] == "virtual-machine" else "CONTAINER"),
    ("SIZE", lambda r: human_size(r["size"])),
    (
        "UPLOAD DATE",
        lambda r: human_date(datetime.fromisoformat(r["uploaded_at"])) if r["uploaded_at"] else "",
    ),
)


def render(rows: Sequence[Mapping[str, Any]], output_format: str) -> None:
    """Print image rows to stdout in the format asked."""
    if output_format == "json":
        print(json.dumps(list(rows), indent=2))
    elif output_format == "yaml":
        print(yaml.safe_dump(list(rows), sort_keys=False), end="")
    elif output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in rows:  # as the table, but the whole fingerprint, for scripts
            cells = [f(row) for _, f in _TABLE_COLUMNS]
            writer.writerow([",".join(row["aliases"]), row["fingerprint"], *cells[2:]])
        sys.stdout.write(buffer.getvalue())
    else:
        render_table(
            [title for title, _ in _TABLE_COLUMNS],
            [[str(f(row)) for _, f in _TABLE_COLUMNS] for row in rows],
        )


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """A table on stdout, for people."""
    from rich.console import Console
    from rich.table import Table

    table = Table(header_style="bold")
    for title in headers:
        table.add_column(title, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def render_mapping(data: Mapping[str, Any], output_format: str) -> None:
    """Print one object (``info``, ``remote list`` entries...)."""
    if output_format == "json":
        print(json.dumps(data, indent=2, default=str))
    else:
        print(yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False), end="")
