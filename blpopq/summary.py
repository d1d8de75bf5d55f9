"""``collect --summary``: how each tier and each client was served, in numbers.

One row per tier (in priority order, every tier shown even when it had no task) and one per
client (in order of first appearance in the attention order): tasks, wait time (enqueue to
start) p50 / p99 / max, run time (start to finish) p50 / max, hash attempts in all, and the
count of each status. Percentiles are nearest-rank (the value of a real task, never an
interpolation between two), so p99 of 30 tasks is the slowest of them, as it should be.

Pure: Result values in, rows or text out; the command reads the results and prints.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import tables
from .outcomes import Result
from .tables import Column
from .tiers import TIERS

#: The csv header and jsonl keys, in order. Scripts depend on them: add, never rename.
FIELDS = (
    "group", "name", "tasks", "wait_p50_ms", "wait_p99_ms", "wait_max_ms",
    "run_p50_ms", "run_max_ms", "attempts", "statuses",
)  # fmt: skip


@dataclass(frozen=True)
class Row:
    group: str  # "tier" or "client"
    name: str
    tasks: int
    wait_p50_ms: float | None  # None: no task
    wait_p99_ms: float | None
    wait_max_ms: float | None
    run_p50_ms: float | None
    run_max_ms: float | None
    attempts: int
    statuses: tuple[tuple[str, int], ...]  # (status, count), by status name

    def to_dict(self) -> dict[str, object]:
        body = {name: getattr(self, name) for name in FIELDS}
        for name in FIELDS:
            if isinstance(body[name], float):
                body[name] = round(body[name], 3)  # microseconds: finer is clock noise
        body["statuses"] = dict(self.statuses)
        return body


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of ``values`` (any order); None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _row(group: str, name: str, results: Sequence[Result]) -> Row:
    waits = [r.wait_ms for r in results]
    runs = [r.run_ms for r in results]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    return Row(
        group=group,
        name=name,
        tasks=len(results),
        wait_p50_ms=percentile(waits, 0.50),
        wait_p99_ms=percentile(waits, 0.99),
        wait_max_ms=max(waits, default=None),
        run_p50_ms=percentile(runs, 0.50),
        run_max_ms=max(runs, default=None),
        attempts=sum(r.attempts for r in results),
        statuses=tuple(sorted(statuses.items())),
    )


def summarize(results: Iterable[Result]) -> list[Row]:
    """Tier rows (priority order), then client rows (first served first)."""
    ordered = sorted(results, key=lambda r: r.position)
    by_tier: dict[str, list[Result]] = {tier.value: [] for tier in TIERS}
    by_client: dict[str, list[Result]] = {}
    for r in ordered:
        by_tier.setdefault(r.tier, []).append(r)  # a foreign tier still gets its row
        by_client.setdefault(r.client, []).append(r)
    return [
        *(_row("tier", name, rs) for name, rs in by_tier.items()),
        *(_row("client", name, rs) for name, rs in by_client.items()),
    ]


# --- rendering ----------------------------------------------------------------------------

FORMATS = ("table", "jsonl", "csv")

#: The table's columns: names are clipped first, then the least needed numbers are left out,
#: so the table fits an 80-column terminal (csv and jsonl keep every field).
TABLE_COLUMNS = (
    Column("group"),
    Column("name", shrink_to=12),
    Column("tasks", right=True),
    Column("wait p50", right=True),
    Column("wait p99", right=True, drop=3),
    Column("wait max", right=True, drop=2),
    Column("run p50", right=True, drop=1),
    Column("run max", right=True),
    Column("attempts", right=True, drop=4),
    Column("statuses", shrink_to=12),
)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _statuses(row: Row) -> str:
    return " ".join(f"{status}={n}" for status, n in row.statuses) or "-"


def _cells(row: Row) -> list[object]:
    return [
        row.group, row.name, row.tasks, _ms(row.wait_p50_ms), _ms(row.wait_p99_ms),
        _ms(row.wait_max_ms), _ms(row.run_p50_ms), _ms(row.run_max_ms), row.attempts,
        _statuses(row),
    ]  # fmt: skip


def render(rows: Sequence[Row], fmt: str, width: int | None = None) -> str:
    """jsonl (statuses as an object), csv (statuses as ``ok=3 valid=1``), or a table in
    ``width`` cells (default: the terminal's) whose times are in milliseconds."""
    if fmt == "jsonl":
        return "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in rows)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(FIELDS)
        for r in rows:
            body = r.to_dict()
            body["statuses"] = _statuses(r)
            writer.writerow(["" if body[f] is None else body[f] for f in FIELDS])
        return out.getvalue()
    width = tables.terminal_width() if width is None else width
    lines = tables.render(TABLE_COLUMNS, [_cells(r) for r in rows], width)
    return "".join(line + "\n" for line in lines) + "(times in ms: wait = enqueue to start)\n"
