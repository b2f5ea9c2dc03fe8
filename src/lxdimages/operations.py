"""Background operations: the daemon's long-running tasks, and waiting on them."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import exceptions as exc
from .progress import Progress, ProgressCallback, daemon_progress
from .protocol import API, ApiRequest, error_from, parse_timestamp

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Operation"]

T = TypeVar("T")

# One long-poll lasts at most this long, so that no HTTP read timeout is ever
# shorter than the daemon's answer; an unbounded wait loops over such polls.
_POLL_SECONDS = 20


def _as_self(operation: Operation[Any]) -> Any:
    return operation


class Operation(Generic[T]):
    """A daemon operation. ``wait()`` returns the call's result (an ``Image``...) or raises.

    Waiting long-polls ``/1.0/operations/<id>/wait``: the daemon answers when the
    operation ends, so no time is spent polling.
    """

    def __init__(
        self,
        client: Client,
        data: Mapping[str, Any],
        result: Callable[[Operation[T]], T] = _as_self,
    ) -> None:
        self._client = client
        self._result = result
        self._update(data)

    def _update(self, data: Mapping[str, Any]) -> None:
        self.id: str = str(data.get("id", ""))
        self.description: str = str(data.get("description", ""))
        self.status: str = str(data.get("status", ""))
        self.status_code: int = int(data.get("status_code") or 0)
        self.metadata: dict[str, Any] = dict(data.get("metadata") or {})
        self.resources: dict[str, Any] = dict(data.get("resources") or {})
        self.err: str = str(data.get("err") or "")
        self.may_cancel: bool = bool(data.get("may_cancel", False))
        self.created_at: datetime | None = parse_timestamp(data.get("created_at"))
        self.updated_at: datetime | None = parse_timestamp(data.get("updated_at"))

    @property
    def path(self) -> str:
        return f"{API}/operations/{self.id}"

    @property
    def done(self) -> bool:
        """Whether the operation has ended (success, failure or cancelled)."""
        return self.status_code >= 200

    @property
    def error(self) -> str:
        """The daemon's error message for a failed operation, else ``""``."""
        return self.err

    def __repr__(self) -> str:
        return f"<Operation {self.id} {self.description!r} {self.status}>"

    def refresh(self) -> Operation[T]:
        """Re-read the operation's state from the daemon."""
        envelope = self._client.request(ApiRequest("GET", self.path))
        self._update(envelope.metadata)
        return self

    def wait(self, timeout: float | None = None, *, progress: ProgressCallback | None = None) -> T:
        """Block until the operation ends; return its result or raise its error.

        ``timeout`` (seconds) bounds the wait: past it ``OperationTimeout`` is
        raised and the operation goes on. ``None`` waits as long as it takes.
        ``progress`` receives the progress the daemon publishes on the operation
        (the long-poll then returns each second, to read it).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        window = 1 if progress is not None else _POLL_SECONDS
        reported: Progress | None = None
        while not self.done:
            if progress is not None and (report := daemon_progress(self.metadata)) != reported:
                reported = report
                if report is not None:
                    progress(report)
            remaining = window if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise exc.OperationTimeout(
                    f"operation {self.id} ({self.description}) still {self.status} "
                    f"after {timeout} s"
                )
            seconds = max(1, min(window, int(remaining + 0.999)))
            try:
                envelope = self._client.request(
                    ApiRequest("GET", self.path + "/wait", params={"timeout": str(seconds)}),
                    timeout=seconds + 30,
                )
            except exc.NotFound:
                raise
            except exc.LXDAPIException as error:
                # Incus answers /wait with an error, not the operation, when the
                # operation failed ("...") or is still running past the poll's
                # timeout ("context deadline exceeded"): read the operation itself.
                if self.refresh().done or "deadline exceeded" in error.message:
                    continue
                raise
            self._update(envelope.metadata)
        if self.status != "Success":
            raise error_from(
                self.err or f"operation {self.status.lower()}",
                self.status_code,
                f"operation {self.id} ({self.description})",
                default=exc.OperationFailed,
                operation=self,
            )
        if progress is not None and reported is not None:
            progress(Progress(reported.stage, 100, 100, finished=True))
        return self._result(self)

    def cancel(self) -> None:
        """Ask the daemon to cancel the operation (where it allows, see ``may_cancel``)."""
        self._client.request(ApiRequest("DELETE", self.path))
        self.refresh()
