"""Image aliases: names that point at an image's fingerprint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .exceptions import NotFound
from .protocol import API, ApiRequest, alias_path

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Alias", "AliasManager"]


@dataclass(frozen=True)
class Alias:
    """An alias: its name, the fingerprint it points at, and a description."""

    name: str
    target: str
    description: str = ""
    type: str = ""

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Alias:
        return cls(
            name=str(record.get("name", "")),
            target=str(record.get("target", "")),
            description=str(record.get("description") or ""),
            type=str(record.get("type") or ""),
        )


class AliasManager:
    """``client.aliases``: list, read, create, rename and delete image aliases."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def all(self) -> list[Alias]:
        """Every alias, in one request."""
        envelope = self._client.request(
            ApiRequest("GET", f"{API}/images/aliases", params={"recursion": "1"})
        )
        return [Alias.from_record(record) for record in envelope.metadata or []]

    def get(self, name: str) -> Alias:
        """The alias ``name``; ``NotFound`` if there is none."""
        envelope = self._client.request(ApiRequest("GET", alias_path(name)))
        return Alias.from_record(envelope.metadata)

    def exists(self, name: str) -> bool:
        try:
            self.get(name)
        except NotFound:
            return False
        return True

    def create(self, name: str, target: str, description: str = "") -> Alias:
        """Point a new alias at the image ``target``; ``Conflict`` if the name is taken."""
        body = {"name": name, "target": target, "description": description}
        self._client.request(ApiRequest("POST", f"{API}/images/aliases", json=body))
        return Alias(name, target, description)

    def delete(self, name: str) -> None:
        self._client.request(ApiRequest("DELETE", alias_path(name)))

    def rename(self, name: str, new_name: str) -> Alias:
        self._client.request(ApiRequest("POST", alias_path(name), json={"name": new_name}))
        return self.get(new_name)
