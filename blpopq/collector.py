"""Read outcomes back and present the attention order: who was served, in which order, with what.

Reading never deletes. The attention order is the ``position`` each task got when it was
taken, so it is a pure sort over Result values; the renderers return text, cli prints it.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from .errors import WaitTimeout
from .messages import DeadLetter, Result
from .protocol import Protocol
from .tiers import TIERS

log = logging.getLogger(__name__)

COLUMNS = (
    "position",
    "tier",
    "client",
    "op",
    "status",
    "nonce",
    "hash",
    "worker",
    "wait_ms",
    "run_ms",
)
FORMATS = ("table", "jsonl", "csv")


def attention_order(results: Iterable[Result]) -> list[Result]:
    return sorted(results, key=lambda r: r.position)


@dataclass
class Outcomes:
    """Results and dead letters read so far, and where to resume reading each list."""

    batch: str | None = None
    results: list[Result] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    _results_read: int = 0
    _dead_read: int = 0

    def all(self) -> list[Result | DeadLetter]:
        return [*self.results, *self.dead]

    @property
    def count(self) -> int:
        return len(self.results) + len(self.dead)

    def refresh(self, protocol: Protocol) -> list[Result]:
        """Read what was appended since the last call; returns the new results."""
        fresh: list[Result] = []
        for raw in protocol.read_list(protocol.keys.results, self._results_read):
            self._results_read += 1
            result = _decode(Result.from_json, raw)
            if result is not None and self.batch in (None, result.batch):
                fresh.append(result)
        for raw in protocol.read_list(protocol.keys.dead, self._dead_read):
            self._dead_read += 1
            letter = _decode(DeadLetter.from_json, raw)
            if letter is not None and self.batch in (None, letter.batch):
                self.dead.append(letter)
        self.results.extend(fresh)
        return fresh


def _decode(decode, raw: str):  # type: ignore[no-untyped-def]
    try:
        return decode(raw)
    except (ValueError, TypeError) as exc:
        log.warning("skipping an undecodable entry (%s): %.80s", exc, raw)
        return None


def wait_until(
    protocol: Protocol,
    outcomes: Outcomes,
    done: Callable[[Outcomes], bool],
    timeout: float | None,
) -> None:
    """Refresh ``outcomes`` until ``done(outcomes)``; WaitTimeout past ``timeout`` seconds.

    Polls with a short, growing interval: results are appended by many workers and
    reading must not consume them, so there is nothing to block on."""
    deadline = None if timeout is None else time.monotonic() + timeout
    interval = 0.005
    while True:
        outcomes.refresh(protocol)
        if done(outcomes):
            return
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeout(f"only {outcomes.count} outcomes arrived within {timeout} s")
        time.sleep(interval)
        interval = min(interval * 2, 0.1)


def wait_for(protocol: Protocol, outcomes: Outcomes, expected: int, timeout: float | None) -> None:
    """Wait until ``outcomes`` holds ``expected`` results and dead letters in all."""
    wait_until(protocol, outcomes, lambda o: o.count >= expected, timeout)


# --- rendering (pure) ---------------------------------------------------------------------------
def row(result: Result) -> dict[str, object]:
    return {
        "position": result.position,
        "tier": result.tier,
        "client": result.client,
        "op": result.op,
        "status": result.status,
        "nonce": "" if result.nonce is None else result.nonce,
        "hash": (result.hash or "")[:16],
        "worker": result.worker,
        "wait_ms": f"{result.wait_ms:.1f}",
        "run_ms": f"{result.run_ms:.1f}",
    }


def render(results: Sequence[Result], fmt: str, header: bool = True) -> str:
    if fmt == "jsonl":
        return "".join(r.to_json() + "\n" for r in results)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        if header:
            writer.writeheader()
        writer.writerows(row(r) for r in results)
        return out.getvalue()
    return render_table([row(r) for r in results], header)


def render_table(rows: Sequence[dict[str, object]], header: bool = True) -> str:
    widths = {c: len(c) for c in COLUMNS}
    for r in rows:
        for c in COLUMNS:
            widths[c] = max(widths[c], len(str(r[c])))
    numeric = {"position", "nonce", "wait_ms", "run_ms"}

    def line(values: dict[str, object]) -> str:
        cells = [
            str(values[c]).rjust(widths[c]) if c in numeric else str(values[c]).ljust(widths[c])
            for c in COLUMNS
        ]
        return "  ".join(cells).rstrip() + "\n"

    lines = [line({c: c for c in COLUMNS})] if header else []
    return "".join(lines + [line(r) for r in rows])


def summary(results: Sequence[Result], dead: Sequence[DeadLetter]) -> str:
    """Per tier: how many were served and their mean wait; then failures, if any."""
    parts = []
    for tier in TIERS:
        served = [r for r in results if r.tier == tier.value]
        mean = sum(r.wait_ms for r in served) / len(served) if served else 0.0
        parts.append(f"{tier.value}: {len(served)} served, mean wait {mean:.1f} ms")
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    tally = ", ".join(f"{k}={v}" for k, v in sorted(statuses.items()))
    return "; ".join(parts) + f"; statuses: {tally or 'none'}; dead letters: {len(dead)}"


def dead_letter_lines(dead: Sequence[DeadLetter]) -> str:
    return "".join(
        json.dumps({"dead": d.id, "tier": d.tier, "reason": d.reason}, ensure_ascii=False) + "\n"
        for d in dead
    )
