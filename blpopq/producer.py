"""Turn validated requests into tasks and push them, all or nothing.

The caller parses and validates the whole file first (instructions.parse), so a bad file
enqueues nothing. Tasks are pushed highest tier first, each tier in file order, in one
atomic script call (Redis runs it like MULTI/EXEC) per ``chunk_size`` tasks: a file up to
that size lands whole or not at all. A larger file is pushed in several calls, still in
priority order, so a crash midway leaves a prefix of that order (every vip before any
alto ...), never a gap inside it; ``Progress`` says how long that prefix is.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby

from .errors import Interrupted
from .instructions import Request
from .messages import Task
from .protocol import Protocol
from .tiers import TIERS, Tier
from .words import plural


@dataclass(frozen=True)
class EnqueueReport:
    batch: str
    counts: dict[Tier, int]
    ids: tuple[str, ...]  # in file order
    transactions: int

    def summary(self) -> str:
        per_tier = " ".join(f"{t.value}={self.counts.get(t, 0)}" for t in TIERS)
        return f"enqueued {plural(len(self.ids), 'request')} ({per_tier}) batch={self.batch}"


@dataclass
class Progress:
    """How far one ``enqueue`` got, readable after it raised (a Redis error, an interrupt).

    ``enqueued`` counts the tasks of chunks whose script call returned: those are in Redis.
    ``in_flight`` is the chunk whose call was under way when it failed. If Redis refused it
    (the reply was an error), none of it was written. If the connection went or the call was
    interrupted, Redis may or may not have run it."""

    batch: str = ""
    total: int = 0
    enqueued: int = 0
    in_flight: int = 0

    @property
    def started(self) -> bool:
        return bool(self.batch)

    def partial(self, maybe_in_flight: bool) -> str:
        line = f"enqueued {self.enqueued} of {self.total} (batch={self.batch})"
        if maybe_in_flight and self.in_flight:
            line += f"; the next {self.in_flight} may be enqueued too (their reply was lost)"
        return line


def new_batch_id() -> str:
    """Sortable by time, unique by its 64 random bits: 20261123T150102-3fa9c1d20b7e4a55.
    (A second and 24 bits collided for a caller enqueuing ~1,000 batches a second.)"""
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(8)}"


def build_tasks(requests: Sequence[Request], batch: str, enqueued_at: float) -> list[Task]:
    """One task per request, ids ``<batch>.<n>`` numbered in file order from 1."""
    return [
        Task(
            id=f"{batch}.{n}",
            batch=batch,
            tier=r.tier,
            client=r.client,
            op=r.op,
            prev=r.prev,
            difficulty=r.difficulty,
            count=r.count,
            nonce=r.nonce,
            source=r.source,
            line=r.line,
            enqueued_at=enqueued_at,
        )
        for n, r in enumerate(requests, start=1)
    ]


def priority_order(tasks: Sequence[Task]) -> list[Task]:
    """Highest tier first; within a tier, file order (the sort is stable)."""
    rank = {tier: i for i, tier in enumerate(TIERS)}
    return sorted(tasks, key=lambda t: rank[t.tier])


Chunk = list[tuple[Tier, list[tuple[str, str]]]]


def chunks(tasks: Sequence[Task], size: int) -> Iterator[Chunk]:
    """Slices of at most ``size`` tasks, each as (tier, [(id, task JSON)]) runs."""
    for start in range(0, len(tasks), size):
        piece = tasks[start : start + size]
        yield [
            (tier, [(t.id, t.to_json()) for t in run])
            for tier, run in groupby(piece, lambda t: t.tier)
        ]


def enqueue(
    protocol: Protocol,
    requests: Sequence[Request],
    chunk_size: int,
    batch: str | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> EnqueueReport:
    """Push every request, a chunk per script call. ``progress`` (if given) is kept up to
    date for a caller that must report a failure half-way. ``should_stop`` is asked before
    each chunk; once it says yes, Interrupted is raised and no further chunk is sent."""
    batch = batch or new_batch_id()
    tasks = build_tasks(requests, batch, time.time())
    done = progress or Progress()
    done.batch, done.total = batch, len(tasks)
    transactions = 0
    for chunk in chunks(priority_order(tasks), chunk_size):
        if should_stop():
            raise Interrupted("interrupted: no further chunk was sent")
        done.in_flight = sum(len(run) for _, run in chunk)
        protocol.enqueue(chunk, batch, first=transactions == 0)
        done.enqueued, done.in_flight = done.enqueued + done.in_flight, 0
        transactions += 1
    counts = {tier: sum(1 for t in tasks if t.tier is tier) for tier in TIERS}
    return EnqueueReport(batch, counts, tuple(t.id for t in tasks), transactions)
