"""Cancel waiting tasks: each ends as one result with status ``cancelled``.

Only tasks still waiting in a tier list are cancelled; a running task (claimed) and one that
BLPOP has popped but its worker not yet claimed are left to finish normally. Each task ends
as exactly one outcome either way: cancel.lua removes it from its list, its registration and
its queued set and pushes its result in one atomic step, and does nothing to a task it no
longer finds in its list. Tasks are sent in chunks (each chunk atomic), so one cancel of a
huge batch never holds Redis for long; a worker may take a task between two chunks, and it
then runs.

A cancelled result is numbered from the attention counter when it is cancelled (so positions
stay unique whole numbers that readers can sort by), its ``worker`` is ``cancel``, and
``started_at`` = ``finished_at`` = the time of the cancel. A mine task put back with progress
keeps the blocks it finished and the attempts it spent; any other has no blocks, 0 attempts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from .jsontext import DecodeError
from .messages import Task
from .outcomes import CANCELLED, Result
from .protocol import Protocol
from .tiers import TIERS, Tier

#: Who wrote a cancelled result, in its ``worker`` field: no worker ran it.
CANCEL_WORKER = "cancel"

_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


@dataclass(frozen=True)
class Waiting:
    """A registered task that looked waiting when the registry was read."""

    task: Task
    raw: bytes
    sequence: float


def cancelled_result(task: Task, now: float) -> Result:
    """The outcome of a task cancelled at ``now`` (position 0: cancel.lua numbers it)."""
    progress = task.progress
    blocks = (
        ()
        if progress is None
        else tuple({"nonce": b.nonce, "hash": b.hash} for b in progress.blocks)
    )
    return Result(
        position=0, id=task.id, batch=task.batch, source=task.source, line=task.line,
        tier=task.tier.value, client=task.client, op=task.op, status=CANCELLED,
        prev=task.prev, difficulty=task.difficulty, nonce=None, hash=None, blocks=blocks,
        attempts=0 if progress is None else progress.attempts, worker=CANCEL_WORKER,
        enqueued_at=task.enqueued_at, started_at=now, finished_at=now,
    )  # fmt: skip


def find_waiting(protocol: Protocol, batch: str | None) -> dict[Tier, list[Waiting]]:
    """Registered tasks of ``batch`` (None: of every batch) that are in a queued set, per
    tier in list order. A registration that does not decode is left alone: it is the
    worker's to dead-letter when it pops it."""
    match = "*" if batch is None else _GLOB_SPECIAL.sub(r"\\\1", batch) + ".*"
    found: dict[Tier, list[tuple[Task, bytes]]] = {tier: [] for tier in TIERS}
    for _, raw in protocol.registered_tasks(match):
        try:
            task = Task.from_json(raw)
        except DecodeError:
            continue
        if batch is None or task.batch == batch:
            found[task.tier].append((task, raw))
    waiting: dict[Tier, list[Waiting]] = {}
    for tier, pairs in found.items():
        sequences = protocol.queued_sequences(tier, [task.id for task, _ in pairs])
        listed = [
            Waiting(t, raw, s)
            for (t, raw), s in zip(pairs, sequences, strict=True)
            if s is not None
        ]
        waiting[tier] = sorted(listed, key=lambda w: w.sequence)
    return waiting


def cancel(
    protocol: Protocol,
    batch: str | None,
    *,
    keep: int = 0,
    chunk_size: int = 1000,
    clock: Callable[[], float] = time.time,
) -> int:
    """Cancel every waiting task of ``batch`` (None: of every batch); returns how many were.
    ``keep``: the retention of results (a daemon's --keep-results), applied as each is
    pushed."""
    cancelled = 0
    for tier, waiting in find_waiting(protocol, batch).items():
        for start in range(0, len(waiting), chunk_size):
            now = clock()
            entries = [
                (tier, w.task.id, w.raw, cancelled_result(w.task, now).to_json())
                for w in waiting[start : start + chunk_size]
            ]
            cancelled += protocol.cancel(entries, keep=keep)
    return cancelled
