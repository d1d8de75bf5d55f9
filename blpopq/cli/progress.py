"""Progress while `run` and `collect --expect` wait: done/total, per tier, rate, elapsed, ETA.

On a terminal, a live display (rich) redrawn in place, with log lines scrolling above it;
elsewhere (a pipe, a file, CI) a plain line ``done k/N ...`` every 5 seconds and at the end,
which a log keeps readable. ``--quiet`` turns both off. Progress goes to stderr, never to
stdout, which holds the results.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ..collector import Outcomes
from ..tiers import TIERS

#: Seconds between two plain lines: often enough to show life, rare enough for a log.
PLAIN_EVERY = 5.0
#: Redraws per second of the live display: it follows results read every 0.1 s at most.
REFRESH_PER_SECOND = 4


class Reporter(Protocol):
    """Shown from ``__enter__`` to ``__exit__``. ``relays_stderr``: child processes should
    send their log lines through ``log_line`` (a live display would be torn by direct
    writes), so a pool is started before the display and given ``log_line``."""

    relays_stderr: bool

    def __enter__(self) -> Reporter: ...

    def __exit__(self, *exc: object) -> None: ...

    def update(self, outcomes: Outcomes) -> None: ...

    def log_line(self, line: str) -> None: ...


def done_by_tier(outcomes: Outcomes) -> dict[str, int]:
    """Outcomes read so far (results and dead letters) per tier name."""
    done = {tier.value: 0 for tier in TIERS}
    for item in outcomes.all():
        if item.tier in done:
            done[item.tier] += 1
    return done


class Silent:
    """``--quiet``: nothing shown; child processes' log lines pass straight through."""

    relays_stderr = False

    def __enter__(self) -> Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, outcomes: Outcomes) -> None:
        pass

    def log_line(self, line: str) -> None:
        sys.stderr.write(line)


class PlainLines:
    """``done k/N (vip a/b, ...) R/s, elapsed E, eta T``: at most one line per PLAIN_EVERY
    seconds, and a last one when closed."""

    relays_stderr = False

    def __init__(self, total: int, tiers: Mapping[str, int] | None, stream: TextIO) -> None:
        self.total, self.tiers, self.stream = total, tiers, stream
        self.started = self._last = time.monotonic()
        self._done: dict[str, int] = {}

    def __enter__(self) -> PlainLines:
        self.started = self._last = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.write()

    def update(self, outcomes: Outcomes) -> None:
        self._done = done_by_tier(outcomes)
        if time.monotonic() - self._last >= PLAIN_EVERY:
            self.write()

    def log_line(self, line: str) -> None:
        self.stream.write(line)

    def write(self) -> None:
        self._last = time.monotonic()
        self.stream.write(self.line(self._last - self.started) + "\n")
        self.stream.flush()

    def line(self, elapsed: float) -> str:
        done = sum(self._done.values())
        tiers = ", ".join(
            f"{name} {self._done.get(name, 0)}" + (f"/{self.tiers[name]}" if self.tiers else "")
            for name in (t.value for t in TIERS)
        )
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = f"{(self.total - done) / rate:.0f}s" if rate > 0 and done < self.total else "-"
        return f"done {done}/{self.total} ({tiers}) {rate:.1f}/s, elapsed {elapsed:.0f}s, eta {eta}"


class _Rate(ProgressColumn):
    """Outcomes per second, as rich estimates it over its recent samples."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f}/s" if speed else "", style="progress.data.speed")


class LiveDisplay:
    """rich's Progress on stderr: one bar for the whole, one per tier."""

    relays_stderr = True

    def __init__(self, total: int, tiers: Mapping[str, int] | None, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:>5}"),
            BarColumn(),
            MofNCompleteColumn(),
            _Rate(),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            refresh_per_second=REFRESH_PER_SECOND,
            redirect_stdout=False,  # stdout holds the results, printed after
        )
        self._all = self.progress.add_task("done", total=total)
        # A tier the batch has none of gets no row; unknown totals (collect) get a pulsing bar.
        self._tiers: dict[str, TaskID] = {
            tier.value: self.progress.add_task(
                tier.value,
                total=tiers.get(tier.value, 0) if tiers else None,
                visible=not tiers or tiers.get(tier.value, 0) > 0,
            )
            for tier in TIERS
        }

    def update(self, outcomes: Outcomes) -> None:
        done = done_by_tier(outcomes)
        self.progress.update(self._all, completed=sum(done.values()))
        for name, task in self._tiers.items():
            self.progress.update(task, completed=done[name])

    def log_line(self, line: str) -> None:
        self.progress.console.print(Text(line.rstrip("\n")), soft_wrap=True)

    def __enter__(self) -> LiveDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def reporter(total: int, tiers: Mapping[str, int] | None = None, quiet: bool = False) -> Reporter:
    """The reporter for this stderr: live on a terminal, plain lines elsewhere, or silent.
    ``tiers``: how many of the total each tier has, when known (run knows, collect not)."""
    if quiet:
        return Silent()
    console = Console(stderr=True)
    if not console.is_terminal or console.is_dumb_terminal:
        return PlainLines(total, tiers, sys.stderr)
    return LiveDisplay(total, tiers, console)
