"""Read outcomes back and present the attention order: who was served, in which order, with what.

Reading never deletes (``Outcomes.discard_read`` is the separate, explicit step behind
``collect --drain``). The attention order is the ``position`` each task got when it was
taken, so it is a pure sort over Result values; the renderers return text, cli prints it.

Results are read incrementally by INDEX, the count of results pushed before each one
(``{ns}:results:written``, bumped by the same script that pushes), not by list position:
retention (``--keep-results``) and drains remove results from the head of the list, which
shifts positions but not indexes, so a reader neither skips nor re-reads. What it cannot do is
read a result removed before it got there: a reader that falls behind by more than the
retention window counts those in ``Outcomes.missed`` (and ``wait_until`` gives up on them).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import count, repeat

from . import tables
from .errors import WaitTimeout
from .outcomes import DeadLetter, Result
from .protocol import Protocol
from .tables import Column
from .tiers import TIERS
from .words import plural

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

#: Results fetched per read call: bounds the time Redis spends on one LRANGE.
PAGE = 1000


class ResultsMissed(WaitTimeout):
    """Results were removed (retention, or a drain) before this reader read them, so the
    outcomes it waits for may never all arrive. A WaitTimeout: it ends a wait the same way."""


def attention_order(results: Iterable[Result]) -> list[Result]:
    return sorted(results, key=lambda r: r.position)


@dataclass
class Outcomes:
    """Results and dead letters read so far, and where to resume reading each list."""

    batch: str | None = None
    results: list[Result] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    #: Results removed from the list (retention, a drain) after this reader began and before
    #: it read them: its view has a gap that far.
    missed: int = 0
    #: Index (``results:written``) of the next result to read; None: start at the list's head.
    _results_read: int | None = None
    #: Number (``seq``) of the last dead letter read (letters are numbered as written).
    _dead_read: int = 0
    #: Results of other batches read (and left out), by the worker that wrote them: which of
    #: them a run's own pool served.
    others_by_worker: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_now(cls, protocol: Protocol, batch: str | None = None) -> Outcomes:
        """A reader that skips every result and dead letter already written: for a batch
        about to be enqueued, whose outcomes can only come later (and must not be lost to a
        retention trim of older results it would otherwise read first)."""
        head, _ = protocol.read_results(None, 0)
        outcomes = cls(batch=batch)
        outcomes._results_read = head + protocol.length(protocol.keys.results)
        outcomes._dead_read, _ = protocol.read_dead(2**62)  # the count, no letters
        return outcomes

    def all(self) -> list[Result | DeadLetter]:
        return [*self.results, *self.dead]

    @property
    def count(self) -> int:
        return len(self.results) + len(self.dead)

    def refresh(self, protocol: Protocol) -> list[Result]:
        """Read what was appended since the last call; returns the new results."""
        fresh: list[Result] = []
        while True:
            start, page = protocol.read_results(self._results_read, PAGE)
            self._note_gap(start)
            for raw in page:
                result = _decode(Result.from_json, raw)
                if result is None:
                    continue
                if self.batch in (None, result.batch):
                    fresh.append(result)
                else:
                    worker = result.worker
                    self.others_by_worker[worker] = self.others_by_worker.get(worker, 0) + 1
            self._results_read = start + len(page)
            if len(page) < PAGE:
                break
        written, letters = protocol.read_dead(self._dead_read)
        for raw in letters:
            letter = _decode(DeadLetter.from_json, raw)
            fresh_letter = letter is not None and (letter.seq or written) > self._dead_read
            if fresh_letter and self.batch in (None, letter.batch):
                self.dead.append(letter)
        self._dead_read = written
        self.results.extend(fresh)
        return fresh

    def _note_gap(self, start: int) -> None:
        expected = self._results_read
        if expected is None or start == expected:
            return
        if start > expected:
            self.missed += start - expected
            log.warning(
                "%s removed (--keep-results retention, or a --drain collector) "
                "before this reader read them; %d missed so far",
                plural(start - expected, "result was", "results were"),
                self.missed,
            )
        else:
            log.warning("the results counter went back (keys deleted?): reading from the head")

    def discard_read(self, protocol: Protocol) -> int:
        """Remove from Redis every result read so far, whatever its batch (``--drain``), and
        none pushed since; returns how many were removed. Call it once they are safe (printed):
        a reader killed before it leaves them for the next one, never loses them."""
        if self._results_read is None:
            return 0
        return protocol.discard_results(self._results_read)


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
    tolerate_missed: bool = False,
    on_refresh: Callable[[Outcomes], None] | None = None,
) -> None:
    """Refresh ``outcomes`` until ``done(outcomes)``; WaitTimeout past ``timeout`` seconds.
    ``on_refresh`` sees ``outcomes`` after every read (a progress display), at least every
    0.1 s while waiting.

    ResultsMissed as soon as results were removed before they were read and ``done`` does not
    hold yet: what it waits for may be among them, and waiting on would never end (unless
    ``tolerate_missed``, for a reader that takes whatever comes, such as ``--follow``).

    Polls with a short, growing interval: results are appended by many workers and
    reading must not consume them, so there is nothing to block on."""
    deadline = None if timeout is None else time.monotonic() + timeout
    interval = 0.005
    while True:
        outcomes.refresh(protocol)
        if on_refresh is not None:
            on_refresh(outcomes)
        if done(outcomes):
            return
        if outcomes.missed and not tolerate_missed:
            raise ResultsMissed(
                f"{plural(outcomes.missed, 'result was', 'results were')} removed "
                "(--keep-results retention, or a --drain collector) before they were read, "
                f"with {plural(outcomes.count, 'outcome')} read: keep more results, or read "
                "them as they arrive"
            )
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeout(
                f"only {plural(outcomes.count, 'outcome')} arrived within {timeout} s"
            )
        time.sleep(interval)
        interval = min(interval * 2, 0.1)


def wait_for(
    protocol: Protocol,
    outcomes: Outcomes,
    expected: int,
    timeout: float | None,
    on_refresh: Callable[[Outcomes], None] | None = None,
) -> None:
    """Wait until ``outcomes`` holds ``expected`` results and dead letters in all."""
    wait_until(protocol, outcomes, lambda o: o.count >= expected, timeout, on_refresh=on_refresh)


# --- rendering (pure) ---------------------------------------------------------------------------
def row(result: Result, number: int | None = None) -> dict[str, object]:
    """``number`` replaces the global position (a batch's own rows, numbered 1..N)."""
    return {
        "position": result.position if number is None else number,
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


#: The table's columns: clients and workers are clipped first, then the least needed columns
#: are left out, so a table fits an 80-column terminal (csv and jsonl keep every field).
TABLE_COLUMNS = (
    Column("position", right=True),
    Column("tier"),
    Column("client", shrink_to=12),
    Column("op"),
    Column("status"),
    Column("nonce", right=True, drop=5),
    Column("hash", shrink_to=8, drop=2),
    Column("worker", shrink_to=10, drop=1),
    Column("wait_ms", right=True, drop=4),
    Column("run_ms", right=True, drop=3),
)


def render(
    results: Sequence[Result],
    fmt: str,
    header: bool = True,
    width: int | None = None,
    fixed: tables.Layout | None = None,
    first_row: int | None = None,
) -> str:
    """``fmt``: jsonl (every field), csv (COLUMNS), or a table fitted to ``width`` cells
    (default: the terminal's, 80 when unknown) or laid out as ``fixed``. With ``first_row``,
    the table's and csv's position column numbers the rows from it (one batch's own order,
    1..N) instead of showing the namespace-wide position; jsonl keeps the global one."""
    if fmt == "jsonl":
        return "".join(r.to_json() + "\n" for r in results)
    numbers: Iterable[int | None] = repeat(None) if first_row is None else count(first_row)
    rows = [row(r, n) for r, n in zip(results, numbers, strict=False)]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        if header:
            writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    return render_table(rows, header, width, fixed)


def render_table(
    rows: Sequence[dict[str, object]],
    header: bool = True,
    width: int | None = None,
    fixed: tables.Layout | None = None,
) -> str:
    width = tables.terminal_width() if width is None else width
    lines = tables.render(TABLE_COLUMNS, _cells(rows), width, header, fixed)
    return "".join(line + "\n" for line in lines)


def table_layout(results: Sequence[Result], width: int | None = None) -> tables.Layout:
    """The table layout ``results`` fit in, to print later ones under the same header."""
    width = tables.terminal_width() if width is None else width
    return tables.layout(TABLE_COLUMNS, _cells([row(r) for r in results]), width)


def _cells(rows: Sequence[dict[str, object]]) -> list[list[object]]:
    return [[r[c] for c in COLUMNS] for r in rows]


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
