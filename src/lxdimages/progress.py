"""Progress of long calls: what a ``progress=`` callback receives, and a ready-made bar.

Client-side transfers (uploads, exports, relays) report bytes done and the total
when it is known; daemon-side downloads report what the daemon publishes on the
operation (a percentage and a speed). Callbacks are rate-limited: at most one
every ``interval`` seconds, plus a last one when a stage ends.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TextIO

__all__ = [
    "Progress",
    "ProgressCallback",
    "ProgressMeter",
    "RichProgressBar",
    "daemon_progress",
]


@dataclass(frozen=True)
class Progress:
    """One progress report.

    ``stage`` names what moves (``upload``, ``export``, ``rootfs``...); ``done``
    and ``total`` are bytes for client-side transfers (``total`` ``None`` when
    unknown); for daemon-side work ``percent`` is what the daemon reports and
    ``done``/``total`` are that percentage out of 100.
    """

    stage: str
    done: int
    total: int | None
    speed: str = ""
    finished: bool = False

    @property
    def percent(self) -> float | None:
        return None if not self.total else 100.0 * self.done / self.total


ProgressCallback = Callable[[Progress], None]


class ProgressMeter:
    """Counts bytes of one stage and calls back at most every ``interval`` seconds."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        stage: str,
        total: int | None,
        interval: float = 0.1,
    ) -> None:
        self._callback = callback
        self.stage = stage
        self.total = total
        self.done = 0
        self._interval = interval
        self._next = 0.0

    def advance(self, count: int) -> None:
        self.done += count
        if self._callback is None:
            return
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self._interval
            self._callback(Progress(self.stage, self.done, self.total))

    def finish(self) -> None:
        if self._callback is not None:
            self._callback(Progress(self.stage, self.done, self.total or self.done, finished=True))

    def count(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Pass chunks through, counting them (``finish()`` stays the caller's)."""
        for chunk in chunks:
            self.advance(len(chunk))
            yield chunk


_DAEMON_PROGRESS = re.compile(
    r"(?P<stage>[\w .-]+?):\s*(?P<percent>\d+)%\s*(?:\((?P<speed>[^)]*)\))?"
)


def daemon_progress(metadata: Mapping[str, Any]) -> Progress | None:
    """The progress an operation's metadata reports, if any.

    The daemons write ``"download_progress": "rootfs: 45% (12.3MB/s)"`` (and
    ``..._progress`` keys for other stages) while they fetch an image.
    """
    for key, value in metadata.items():
        if not key.endswith("_progress") or not isinstance(value, str):
            continue
        match = _DAEMON_PROGRESS.search(value)
        if match:
            return Progress(
                stage=match["stage"].strip(),
                done=int(match["percent"]),
                total=100,
                speed=(match["speed"] or "").strip(),
            )
    return None


class RichProgressBar:
    """A progress bar on stderr (rich), as a context manager that is the callback.

    ``with RichProgressBar("Importing") as bar: client.images.create(path, progress=bar)``
    Nothing is drawn when the stream is not a terminal, unless ``force``.
    """

    def __init__(self, description: str, *, stream: TextIO | None = None, force: bool = False):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as RichProgress

        console = Console(file=stream or sys.stderr, force_terminal=force or None)
        self._enabled = force or console.is_terminal
        self._progress = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not self._enabled,
        )
        self._description = description
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> RichProgressBar:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def __call__(self, report: Progress) -> None:
        task = self._tasks.get(report.stage)
        label = f"{self._description} ({report.stage})"
        if task is None:
            task = self._progress.add_task(label, total=report.total)
            self._tasks[report.stage] = task
        self._progress.update(task, completed=report.done, total=report.total)
