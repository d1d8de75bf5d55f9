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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby, islice
from operator import itemgetter
from typing import Protocol as Interface
from typing import overload

from .errors import Interrupted
from .instructions import Request
from .messages import Task
from .protocol import Protocol
from .replication import ReplicaWait
from .tiers import TIERS, Tier
from .words import plural


class RequestSource(Interface):
    """Requests to enqueue, read a tier at a time (instruction_file.CheckedFile streams them
    from its spools; ``Listed`` wraps a list)."""

    def __len__(self) -> int: ...

    def in_tier(self, tier: Tier) -> Iterable[tuple[int, Request]]:
        """(number in file order, from 1; request) of each request of ``tier``, in order."""
        ...


class Listed:
    """A list of requests as a RequestSource."""

    def __init__(self, requests: Sequence[Request]) -> None:
        self._requests = requests

    def __len__(self) -> int:
        return len(self._requests)

    def in_tier(self, tier: Tier) -> Iterator[tuple[int, Request]]:
        return ((n, r) for n, r in enumerate(self._requests, start=1) if r.tier is tier)


class BatchIds(Sequence[str]):
    """The ids of a batch of ``count`` tasks, ``<batch>.1`` ... ``<batch>.<count>`` in file
    order, computed on demand: a million-task batch holds no million strings."""

    def __init__(self, batch: str, count: int) -> None:
        self.batch, self._count = batch, count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if not -self._count <= index < self._count:
            raise IndexError(index)
        return f"{self.batch}.{index % self._count + 1}"

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class EnqueueReport:
    batch: str
    counts: dict[Tier, int]
    ids: Sequence[str]  # in file order
    transactions: int

    def summary(self) -> str:
        per_tier = " ".join(f"{t.value}={self.counts.get(t, 0)}" for t in TIERS)
        return f"enqueued {plural(len(self.ids), 'request')} ({per_tier}) batch={self.batch}"


@dataclass
class Progress:
    """How far one ``enqueue`` got, readable after it raised (a Redis error, an interrupt).

    ``enqueued`` counts the tasks of chunks whose script call returned (and, with
    --wait-replicas, that enough replicas confirmed): those are in Redis. ``in_flight`` is
    the chunk whose call was under way when it failed. If Redis refused it (the reply was an
    error), none of it was written. If the connection went or the call was interrupted, Redis
    may or may not have run it. ``unconfirmed`` is a chunk written on the primary whose
    replicas did not confirm it."""

    batch: str = ""
    total: int = 0
    enqueued: int = 0
    in_flight: int = 0
    unconfirmed: int = 0

    @property
    def started(self) -> bool:
        return bool(self.batch)

    def partial(self, maybe_in_flight: bool) -> str:
        line = f"enqueued {self.enqueued} of {self.total} (batch={self.batch})"
        if maybe_in_flight and self.in_flight:
            line += f"; the next {self.in_flight} may be enqueued too (their reply was lost)"
        if self.unconfirmed:
            line += (
                f"; the next {self.unconfirmed} are enqueued on the primary, not confirmed by "
                "its replicas"
            )
        return line


def new_batch_id() -> str:
    """Sortable by time, unique by its 64 random bits: 20261123T150102-3fa9c1d20b7e4a55.
    (A second and 24 bits collided for a caller enqueuing ~1,000 batches a second.)"""
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(8)}"


def build_tasks(requests: Sequence[Request], batch: str, enqueued_at: float) -> list[Task]:
    """One task per request, ids ``<batch>.<n>`` numbered in file order from 1."""
    return [_task(n, r, batch, enqueued_at) for n, r in enumerate(requests, start=1)]


def _task(number: int, r: Request, batch: str, enqueued_at: float) -> Task:
    return Task(
        id=f"{batch}.{number}",
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


def tasks_in_priority_order(
    requests: RequestSource, batch: str, enqueued_at: float
) -> Iterator[Task]:
    """The tasks of ``requests``, highest tier first, each tier in file order, one at a time."""
    for tier in TIERS:
        for number, request in requests.in_tier(tier):
            yield _task(number, request, batch, enqueued_at)


def priority_order(tasks: Sequence[Task]) -> list[Task]:
    """Highest tier first; within a tier, file order (the sort is stable)."""
    rank = {tier: i for i, tier in enumerate(TIERS)}
    return sorted(tasks, key=lambda t: rank[t.tier])


Chunk = list[tuple[Tier, list[tuple[str, str]]]]


def chunks(tasks: Iterable[Task], size: int) -> Iterator[Chunk]:
    """Slices of at most ``size`` tasks, each as (tier, [(id, task JSON)]) runs; only one
    slice is held at a time."""
    remaining = iter(tasks)
    # Only the JSON is kept of each task: a chunk of 50,000 holds no 50,000 Task objects.
    while piece := [(t.tier, t.id, t.to_json()) for t in islice(remaining, size)]:
        yield [
            (tier, [(task_id, raw) for _, task_id, raw in run])
            for tier, run in groupby(piece, itemgetter(0))
        ]


def enqueue(
    protocol: Protocol,
    requests: Sequence[Request] | RequestSource,
    chunk_size: int,
    batch: str | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    replicas: ReplicaWait | None = None,
) -> EnqueueReport:
    """Push every request, a chunk per script call. ``progress`` (if given) is kept up to
    date for a caller that must report a failure half-way. ``should_stop`` is asked before
    each chunk; once it says yes, Interrupted is raised and no further chunk is sent.
    ``replicas``: after each chunk, wait for them (NotReplicated stops the enqueue)."""
    source = Listed(requests) if isinstance(requests, Sequence) else requests
    batch = batch or new_batch_id()
    tasks = tasks_in_priority_order(source, batch, time.time())
    done = progress or Progress()
    done.batch, done.total = batch, len(source)
    counts = {tier: 0 for tier in TIERS}
    transactions = 0
    for chunk in chunks(tasks, chunk_size):
        if should_stop():
            raise Interrupted("interrupted: no further chunk was sent")
        done.in_flight = sum(len(run) for _, run in chunk)
        protocol.enqueue(chunk, batch, first=transactions == 0)
        done.unconfirmed, done.in_flight = done.in_flight, 0
        if replicas is not None:
            replicas.after_enqueue(protocol)
        done.enqueued, done.unconfirmed = done.enqueued + done.unconfirmed, 0
        transactions += 1
        for tier, run in chunk:
            counts[tier] += len(run)
    return EnqueueReport(batch, counts, BatchIds(batch, done.enqueued), transactions)
