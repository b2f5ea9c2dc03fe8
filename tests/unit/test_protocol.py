"""Pure parsing and request building: no daemon involved."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lxdimages import exceptions as exc
from lxdimages.protocol import (
    ApiRequest,
    Dialect,
    format_timestamp,
    image_path,
    image_post,
    parse_envelope,
    parse_timestamp,
    remote_image_source,
    rootfs_part_name,
    upload_headers,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-04T19:52:55Z", datetime(2026, 12, 4, 19, 52, 55, tzinfo=UTC)),
        ("2026-12-04T19:52:55.383418059Z", datetime(2026, 12, 4, 19, 52, 55, 383418, tzinfo=UTC)),
        ("2026-12-04T20:52:55.5+01:00", datetime(2026, 12, 4, 19, 52, 55, 500000, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
        ("1970-01-01T00:00:00Z", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_timestamp(text: str | None, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected
    parsed = parse_timestamp(text)
    if parsed is not None:
        assert parsed.tzinfo is not None


def test_parse_timestamp_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_timestamp("yesterday")


def test_format_timestamp_round_trips() -> None:
    moment = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert format_timestamp(moment) == "2030-01-02T03:04:05Z"
    assert parse_timestamp(format_timestamp(moment)) == moment
    assert format_timestamp(None) == "0001-01-01T00:00:00Z"
    with pytest.raises(ValueError, match="timezone"):
        format_timestamp(datetime(2030, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (404, b'{"type":"error","error_code":404,"error":"Image not found"}', exc.NotFound),
        (409, b'{"type":"error","error_code":409,"error":"Alias \\"a\\" already exists"}', exc.Conflict),
        (412, b'{"type":"error","error_code":412,"error":"ETag doesn\'t match"}', exc.Conflict),
        (403, b'{"type":"error","error_code":403,"error":"not authorized"}', exc.NotTrusted),
        (400, b'{"type":"error","error_code":400,"error":"More than one image matches"}', exc.AmbiguousFingerprint),
        (500, b'{"type":"error","error_code":500,"error":"Image with same fingerprint already exists"}', exc.ImageExists),
        (500, b'{"type":"error","error_code":500,"error":"boom"}', exc.LXDAPIException),
        (502, b"<html>bad gateway</html>", exc.LXDAPIException),
    ],
)
def test_errors_are_typed_and_keep_the_daemons_words(
    status: int, body: bytes, cls: type[exc.LXDAPIException]
) -> None:
    with pytest.raises(cls) as raised:
        parse_envelope(status, body, "GET /1.0/images/x")
    assert type(raised.value) is cls
    assert raised.value.status_code == status
    assert raised.value.message in body.decode().replace('\\"', '"')
    assert "GET /1.0/images/x" in str(raised.value)


def test_sync_and_async_envelopes() -> None:
    sync = parse_envelope(200, b'{"type":"sync","metadata":{"a":1}}', etag='"abc"')
    assert (sync.kind, sync.metadata, sync.operation, sync.etag) == ("sync", {"a": 1}, "", '"abc"')
    started = parse_envelope(
        202, b'{"type":"async","operation":"/1.0/operations/x","metadata":{"id":"x"}}'
    )
    assert started.operation == "/1.0/operations/x"
    assert started.metadata == {"id": "x"}


def test_dialects_name_headers_and_protocols() -> None:
    assert Dialect.from_host_info({"environment": {"server": "incus"}}) is Dialect.INCUS
    assert Dialect.from_host_info({"environment": {"server": "lxd"}}) is Dialect.LXD
    assert Dialect.from_host_info({}) is Dialect.LXD
    assert upload_headers(Dialect.INCUS, public=True, filename="a.tar.gz") == {
        "X-Incus-public": "true",
        "X-Incus-filename": "a.tar.gz",
    }
    headers = upload_headers(Dialect.LXD, public=False, filename=None, properties={"os": "x y"})
    assert headers == {"X-LXD-public": "false", "X-LXD-properties": "os=x+y"}
    assert Dialect.INCUS.remote_protocol == "incus"
    assert Dialect.LXD.remote_protocol == "lxd"


def test_request_building() -> None:
    assert image_path("ab/cd") == "/1.0/images/ab%2Fcd"
    request = ApiRequest("GET", "/1.0/images", params={"recursion": "1"})
    assert request.target() == "/1.0/images?recursion=1"
    source = remote_image_source(
        "https://s", "simplestreams", alias="u/22.04", certificate="PEM", secret=None
    )
    assert source == {
        "type": "image",
        "mode": "pull",
        "server": "https://s",
        "protocol": "simplestreams",
        "alias": "u/22.04",
        "certificate": "PEM",
    }
    post = image_post(source, public=True, auto_update=False, aliases=[{"name": "x"}])
    assert post.json == {
        "source": source,
        "public": True,
        "auto_update": False,
        "aliases": [{"name": "x"}],
    }


def test_rootfs_part_name_detects_vm_disks() -> None:
    assert rootfs_part_name(b"QFI\xfb\x00\x00\x00\x03") == "rootfs.img"
    assert rootfs_part_name(b"hsqs....") == "rootfs"
    assert rootfs_part_name(b"") == "rootfs"
