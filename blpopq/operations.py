"""The operators' commands: status snapshots, dead-letter care, cancelling a batch.

Part of the Protocol (``Protocol`` inherits them): every command blpopq sends stays in
protocol.py and here, apart from the queue's own path so that each file has one reason to
change. These run only when an operator asks; the workers never call them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import redis

from .keyspace import Keyspace
from .records import Snapshot, as_bytes, safe_text
from .tiers import TIERS, Tier


class OperatorCommands:
    """Commands that need only the client, the keys and the scripts Protocol loads."""

    client: redis.Redis
    keys: Keyspace
    _enqueue: Any
    registered: Callable[[Iterable[bytes]], list[bytes | None]]  # reading.py
    _enqueue_keys: list[str]
    _cancel: Any
    _policy: Any

    # --- operations: batches ---------------------------------------------------------------
    def last_batch(self) -> str | None:
        """The batch most recently produced in the namespace (recorded by its first chunk),
        None before any was."""
        batch = self.client.get(self.keys.last_batch)
        return None if batch is None else safe_text(batch)

    # --- operations: the fairness policy ---------------------------------------------------
    def hold_policy(self, spec: str, hold_seconds: float) -> str:
        """Record ``spec`` as the namespace's policy unless another is in force (a daemon of
        the namespace alive, or one started less than ``hold_seconds`` ago): the policy in
        force after the call, so the caller's own when it may start."""
        keys = [self.keys.policy, self.keys.workers]
        return safe_text(self._policy(keys=keys, args=[spec, int(hold_seconds * 1000)]))

    # --- operations: cancelling ------------------------------------------------------------
    def registered_tasks(self, match: str = "*", page: int = 1000) -> Iterator[tuple[str, bytes]]:
        """(id, task JSON as registered) of the open tasks whose id matches the glob ``match``
        (HSCAN: a task registered or closed meanwhile may or may not be seen)."""
        for task_id, raw in self.client.hscan_iter(self.keys.tasks, match=match, count=page):
            yield safe_text(task_id), as_bytes(raw)

    def queued_sequences(self, tier: Tier, ids: Sequence[str]) -> list[float | None]:
        """Each id's sequence in ``queued:<tier>`` (None: not there), in the order given."""
        if not ids:
            return []
        return [
            None if s is None else float(s)
            for s in self.client.zmscore(self.keys.queued(tier), list(ids))
        ]

    def cancel(self, entries: Sequence[tuple[Tier, str, bytes, str]], keep: int = 0) -> int:
        """End each (tier, id, task as registered, result JSON) as its result, in one atomic
        call, if the task is still waiting in its tier list (cancel.lua); returns how many
        were. The result's ``position`` is taken in the script from the attention counter:
        each result must begin ``{"position":0,``. ``keep`` trims results as a daemon's
        --keep-results would. Give entries in list order: each LREM then stops near the head."""
        head = '{"position":0'
        args: list[Any] = [len(TIERS), *(t.value for t in TIERS), keep]
        for tier, task_id, task, result in entries:
            if not result.startswith(head + ","):
                raise ValueError(f"result of {task_id} does not begin with {head!r}")
            args.extend((tier.value, task_id, task, result[len(head) :]))
        keys = [
            *self.keys.tiers, *self.keys.queued_sets, self.keys.tasks, self.keys.inflight,
            self.keys.results, self.keys.results_written, self.keys.position,
        ]  # fmt: skip
        return int(self._cancel(keys=keys, args=args))

    # --- operations: status and dead letters -----------------------------------------------
    def snapshot(self, sample: int = 1000) -> Snapshot:
        """What ``blpopq status`` shows, read in one MULTI/EXEC so every figure is of one
        instant: Redis TIME, each tier's length and head task, the claims, the workers' leases
        and takes, the lengths of results, dead letters and open tasks, and the last ``sample``
        results (a bounded tail: the recent rate is counted on it, never the whole list)."""
        keys = self.keys
        with self.client.pipeline(transaction=True) as pipe:
            pipe.time()
            for key in keys.tiers:
                pipe.llen(key)
                pipe.lindex(key, 0)
            pipe.hgetall(keys.inflight)
            pipe.zrange(keys.workers, 0, -1, withscores=True)
            pipe.hgetall(keys.epochs)
            pipe.hgetall(keys.kernels)
            pipe.llen(keys.results)
            pipe.lrange(keys.results, -max(1, sample), -1)
            pipe.llen(keys.dead)
            pipe.hlen(keys.tasks)
            pipe.get(keys.results_written)
            pipe.hget(keys.policy, "spec")
            reply = pipe.execute()
        seconds, micros = reply[0]
        heads = reply[1 : 1 + 2 * len(TIERS)]
        inflight, workers, epochs, kernels, results, tail, dead, open_tasks, written, policy = (
            reply[1 + 2 * len(TIERS) :]
        )
        # A claim of a registered task names it instead of holding a copy (taking.lua).
        registered = self.registered(as_bytes(k) for k in inflight)
        return Snapshot(
            time=int(seconds) + int(micros) / 1e6,
            tiers=tuple(
                (
                    tier,
                    int(heads[2 * i]),
                    None if heads[2 * i + 1] is None else safe_text(heads[2 * i + 1]),
                )
                for i, tier in enumerate(TIERS)
            ),
            claims=tuple(
                sorted(
                    (safe_text(k), as_bytes(inflight[k]), t)
                    for k, t in zip(inflight, registered, strict=True)
                )
            ),
            workers=tuple((safe_text(worker), float(expiry)) for worker, expiry in workers),
            epochs=tuple(sorted((safe_text(k), int(v)) for k, v in epochs.items())),
            kernels=tuple(sorted((safe_text(k), safe_text(v)) for k, v in kernels.items())),
            results=int(results),
            results_tail=tuple(safe_text(item) for item in tail),
            dead=int(dead),
            open_tasks=int(open_tasks),
            # Results pushed before the counter existed are indexed by position (results.lua).
            results_written=max(int(written or 0), int(results)),
            policy=None if policy is None else safe_text(policy),
        )

    def dead_letters(self) -> list[str]:
        """Every dead letter, oldest first, exactly as stored (what LREM matches)."""
        return list(self.read_list(self.keys.dead))

    def purge_dead(self, letters: Sequence[str]) -> int:
        """LREM each dead letter by its exact value, once per time it is given; returns how
        many were removed (fewer when another process removed some first). Given in list
        order, each is found at or near the head, so purging all of them is one pass."""
        removed = 0
        for start in range(0, len(letters), 1000):
            with self.client.pipeline(transaction=True) as pipe:
                for letter in letters[start : start + 1000]:
                    pipe.lrem(self.keys.dead, 1, letter)
                removed += sum(int(n) for n in pipe.execute())
        return removed

    def requeue_dead(self, letter: str, tier: Tier, task_id: str, task: str) -> str:
        """Give a dead letter's task another run: in one MULTI/EXEC, push the task at the tail
        of ``tier`` with enqueue.lua, the producer's own script (as ``enqueue`` calls it with a
        one-task chunk), so it is registered like a new task (its JSON in ``tasks``, a new tail
        sequence in ``queued:<tier>``), and LREM the letter.

        WATCH on the dead list makes it all or nothing against a concurrent requeue or purge;
        the tier lists' types (the one thing enqueue.lua refuses) are checked under it first.
        Returns "requeued"; "gone" when the letter is no longer listed (nothing is pushed); or
        "open" when a task with this id is queued or running already (nothing changes)."""
        # 'next': a requeued task does not make its batch the last one produced.
        args = [len(TIERS), *(int(t == tier) for t in TIERS), "", "next", task_id, task]
        with self.client.pipeline(transaction=True) as pipe:
            for _ in range(100):
                try:
                    pipe.watch(self.keys.dead)  # type: ignore[no-untyped-call]
                    if pipe.lpos(self.keys.dead, letter) is None:
                        return "gone"
                    if pipe.hexists(self.keys.tasks, task_id) or pipe.hexists(
                        self.keys.inflight, task_id
                    ):
                        return "open"
                    for key in self.keys.tiers:
                        kind = safe_text(pipe.type(key))
                        if kind not in ("list", "none"):
                            raise redis.ResponseError(f"{key} holds a {kind}, not a list")
                    pipe.multi()
                    self._enqueue(keys=self._enqueue_keys, args=args, client=pipe)
                    pipe.lrem(self.keys.dead, 1, letter)
                    pipe.execute()
                    return "requeued"
                except redis.WatchError:
                    continue  # the dead list changed under us: look again
        raise redis.WatchError(f"{self.keys.dead} kept changing: could not requeue {task_id}")

    def read_list(self, key: str, start: int = 0, page: int = 1000) -> Iterable[str]:
        """LRANGE ``key`` from ``start`` to its current end, a page at a time."""
        while True:
            items = self.client.lrange(key, start, start + page - 1)
            yield from (safe_text(item) for item in items)
            if len(items) < page:
                return
            start += page
