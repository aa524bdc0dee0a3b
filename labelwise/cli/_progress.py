"""Progress of long commands on stderr, so that stdout holds only the result (``--json`` stays JSON)."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

__all__ = ["ProgressBar", "err_console", "step"]

err_console = Console(stderr=True, soft_wrap=True)


def step(message: str) -> None:
    """One line about what a long command is doing now, with the time of day."""
    err_console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}", highlight=False)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """Count, rate and time left of a job of ``total`` items, narrow enough for 80 columns.

    Items that came from a cache advance the count but not the rate: the rate and the time left
    are those of the work actually done.
    """

    def __init__(self, description: str, total: int | None, *, unit: str = "rows") -> None:
        self.total, self.unit = total, unit
        self._done = self._timed = 0
        self._started = time.perf_counter()
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[left]}"),
            console=err_console,
        )
        self._task = self._progress.add_task(description, total=total, rate="", left="")

    def start(self) -> ProgressBar:
        self._started = time.perf_counter()
        self._progress.start()
        return self

    def stop(self) -> None:
        """Leave the bar as it is on screen; stopping again does nothing."""
        if self._progress.live.is_started:
            self._progress.stop()

    def __enter__(self) -> ProgressBar:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def per_s(self) -> float | None:
        """Items per second of work done (cached items left out); ``None`` before any."""
        if not self._timed:
            return None
        return self._timed / max(time.perf_counter() - self._started, 1e-9)

    def advance(self, count: int = 1, *, cached: bool = False) -> None:
        self._done += count
        if not cached:
            self._timed += count
        rate = left = ""
        per_s = self.per_s
        if per_s is not None:
            rate = f"{per_s:.1f} {self.unit}/s"
            left = "" if self.total is None else f"{_duration((self.total - self._done) / per_s)} left"
        self._progress.update(self._task, completed=self._done, rate=rate, left=left)
