"""Every Redis key name and every command blpopq sends, in one place.

Keys share one hash tag, ``{namespace}``, so a Redis Cluster keeps them on one slot and
the scripts may touch them together. The scripts live in ``lua/`` as package data, each
opening with the keys it touches; redis-py's ``Script`` keeps their SHA and reloads them
after a Redis restart (NOSCRIPT).

Delivery path, and what a kill -9 at each point leaves:
  produce  ``enqueue.lua`` (one atomic call: all of a chunk or none) RPUSHes tasks and
           registers each in ``tasks`` (id -> JSON) and ``queued:<tier>`` (id -> sequence).
  take     ``take.lua`` pops the first non-empty tier, numbers it and claims it in
           ``inflight`` in one step. When every tier is empty the worker blocks on
           ``BLPOP vip alto comun`` and claims what it gets with the same script. Between
           BLPOP's reply and the claim the task is only in ``tasks``/``queued``: the reaper
           finds it there (its sequence is below the list's head) once its popper is dead or
           has begun another take.
  settle   ``settle.lua`` pushes the result (or dead letter, or the task back at the head of
           its tier) and ends the claim, only if the claim is still this take's. A result
           also bumps ``results:written`` and, with retention, trims ``results`` to its newest
           N in the same step; readers index results by that counter (``results.lua``), so
           trimming from the head never shifts what they have read.
  recover  ``heartbeat.lua`` keeps each worker's lease in ``workers`` on Redis's clock;
           ``reap.lua`` declares expired workers dead and returns claims nobody alive holds;
           recovery.py puts those back at the head of their tier, or dead-letters a task
           that has killed ``max_deaths`` workers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis

from .tiers import TIERS, Tier


@dataclass(frozen=True)
class Keyspace:
    """Key names under one namespace: ``{blpopq}:vip``, ``{blpopq}:results``, ..."""

    namespace: str = "blpopq"

    def __post_init__(self) -> None:
        if not self.namespace or any(c in self.namespace for c in "{}: \t\r\n"):
            raise ValueError(
                f"namespace {self.namespace!r} must be non-empty, without braces, colons or spaces"
            )

    def _key(self, name: str) -> str:
        return f"{{{self.namespace}}}:{name}"

    def tier(self, tier: Tier) -> str:
        return self._key(tier.value)

    @property
    def tiers(self) -> tuple[str, ...]:
        """Tier lists in priority order: exactly BLPOP's argument order."""
        return tuple(self.tier(t) for t in TIERS)

    @property
    def results(self) -> str:
        return self._key("results")

    @property
    def results_written(self) -> str:
        """Counter of results ever pushed: trimming never lowers it, so readers index by it."""
        return self._key("results:written")

    @property
    def dead(self) -> str:
        return self._key("dead")

    @property
    def inflight(self) -> str:
        return self._key("inflight")

    @property
    def position(self) -> str:
        return self._key("position")

    def queued(self, tier: Tier) -> str:
        """Sorted set: id -> sequence of registered tasks in (or just popped from) a tier."""
        return self._key(f"queued:{tier.value}")

    def seq(self, tier: Tier) -> str:
        return self._key(f"seq:{tier.value}")

    def headseq(self, tier: Tier) -> str:
        return self._key(f"headseq:{tier.value}")

    @property
    def seqs(self) -> tuple[str, ...]:
        return tuple(self.seq(t) for t in TIERS)

    @property
    def queued_sets(self) -> tuple[str, ...]:
        return tuple(self.queued(t) for t in TIERS)

    @property
    def tasks(self) -> str:
        """Hash: id -> task JSON of every open task (queued or running): what recovery needs."""
        return self._key("tasks")

    @property
    def workers(self) -> str:
        """Sorted set: live worker -> lease expiry in ms on Redis's clock."""
        return self._key("workers")

    @property
    def epochs(self) -> str:
        return self._key("epochs")

    @property
    def suspects(self) -> str:
        return self._key("suspects")

    @property
    def reaper_lock(self) -> str:
        return self._key("reaper")

    def worker_client_name(self, worker_id: str) -> str:
        """CLIENT SETNAME of a worker's connection: lets CLIENT LIST show who waits where."""
        return f"blpopq:{self.namespace}:worker:{worker_id}"


@dataclass(frozen=True)
class Taken:
    tier: Tier
    raw: str
    position: int
    claimed: bool  # False: the task has no id, so nothing fences it; dead-letter it


@dataclass(frozen=True)
class Claim:
    """A task in flight, as take.lua and reap.lua record it in ``{ns}:inflight``."""

    position: int  # the claim's generation: settles must name it
    worker: str  # host:pid, or "orphan" for a task the reaper found popped and unclaimed
    tier: Tier
    task: str  # the task JSON as taken

    @classmethod
    def from_json(cls, raw: bytes | str) -> Claim:
        """Decode one claim; ValueError (or KeyError/TypeError) if it is not one of ours."""
        body = json.loads(raw)
        tier = int(body["tier"])  # the scripts store the 1-based tier index
        if not 1 <= tier <= len(TIERS):
            raise ValueError(f"claim of unknown tier index {tier}")
        task = body["task"]
        return cls(int(body["position"]), str(body["worker"]), TIERS[tier - 1], task or "")


class DeclaredDead(Exception):
    """This worker's lease ran out and the reaper gave its claims to others: it must stop."""


def _load_script(client: redis.Redis, *names: str) -> Any:
    """Register the concatenated text of ``names`` (shared functions first) as one script."""
    folder = resources.files(__package__).joinpath("lua")
    source = "".join(folder.joinpath(name).read_text("utf-8") for name in names)
    return client.register_script(source)


class Protocol:
    """The queue's commands over one redis-py client (one per process: never share across fork)."""

    def __init__(self, client: redis.Redis, keys: Keyspace) -> None:
        self.client = client
        self.keys = keys
        self._enqueue = _load_script(client, "enqueue.lua")
        self._take = _load_script(client, "settling.lua", "take.lua")
        self._settle = _load_script(client, "settling.lua", "settle.lua")
        self._heartbeat = _load_script(client, "heartbeat.lua")
        self._reap = _load_script(client, "reap.lua")
        self._results = _load_script(client, "results.lua")
        self._take_keys = [
            *keys.tiers, *keys.queued_sets, keys.inflight, keys.position, keys.workers, keys.epochs
        ]  # fmt: skip

    # --- producing -------------------------------------------------------------------------
    def enqueue(self, chunk: Sequence[tuple[Tier, Sequence[tuple[str, str]]]]) -> None:
        """Push and register every (tier, [(id, task)]) group of one chunk in one script call:
        Redis runs it like MULTI/EXEC (nothing else in between, one transaction in the AOF)
        and it checks every key before its first write, so it lands whole or not at all."""
        per_tier: dict[Tier, list[str]] = {tier: [] for tier in TIERS}
        for tier, tasks in chunk:
            per_tier[tier].extend(part for pair in tasks for part in pair)
        counts = [len(per_tier[tier]) // 2 for tier in TIERS]
        keys = [*self.keys.tiers, *self.keys.queued_sets, *self.keys.seqs, self.keys.tasks]
        args = [*counts, *(part for tier in TIERS for part in per_tier[tier])]
        self._enqueue(keys=keys, args=args)

    # --- taking ----------------------------------------------------------------------------
    def take(self, worker: str) -> Taken | None:
        """Pop, number and claim the highest-priority waiting task; None if all tiers are empty."""
        return self._taken(self._take(keys=self._take_keys, args=[worker, "", 0]))[1]

    def settle_and_take(
        self, worker: str, task_id: str, position: int, result_json: str, keep: int = 0
    ) -> tuple[bool, Taken | None]:
        """settle_result() and take() in one round trip: (result written?, next task)."""
        keys = [*self._take_keys, self.keys.results, self.keys.tasks, self.keys.results_written]
        args = [worker, "", 0, task_id, position, result_json, keep]
        reply = self._take(keys=keys, args=args)
        settled, taken = self._taken(reply)
        return settled == 1, taken

    def block(self, timeout: float) -> tuple[Tier, str] | None:
        """BLPOP the tiers in priority order. The task is removed from Redis here: claim it next
        (until then only its registration remembers it: the reaper's orphan search)."""
        popped = self.client.blpop(list(self.keys.tiers), timeout=timeout)
        if popped is None:
            return None
        key, raw = popped
        return TIERS[self.keys.tiers.index(_text(key))], _text(raw)

    def claim(self, worker: str, tier: Tier, raw: str) -> Taken:
        """Number and claim a task that BLPOP handed over. Safe to repeat after a lost reply."""
        reply = self._take(keys=self._take_keys, args=[worker, raw, TIERS.index(tier) + 1])
        taken = self._taken(reply)[1]
        assert taken is not None  # the script only comes back empty when it had to pop itself
        return taken

    @staticmethod
    def _taken(reply: Any) -> tuple[int, Taken | None]:
        settled = int(reply[0])
        if len(reply) == 1:
            return settled, None
        if int(reply[1]) == -1:
            raise DeclaredDead("this worker's lease ran out; its claims went to others")
        _, tier_index, raw, position, claimed = reply
        return settled, Taken(TIERS[int(tier_index) - 1], _text(raw), int(position), bool(claimed))

    # --- settling --------------------------------------------------------------------------
    def settle_result(self, task_id: str, position: int, result_json: str, keep: int = 0) -> bool:
        """Push the result and end the claim, if the claim is still this take's; then, when
        ``keep`` > 0, trim the results list to its newest ``keep`` (only if written)."""
        keys = [self.keys.inflight, self.keys.results, self.keys.tasks, self.keys.results_written]
        return bool(self._settle(keys=keys, args=[task_id, position, result_json, "result", keep]))

    def settle_dead(self, task_id: str, position: int, letter_json: str) -> bool:
        return self._settle_to(self.keys.dead, task_id, position, letter_json)

    def requeue(self, task_id: str, position: int, tier: Tier, raw: str) -> bool:
        """Put a claimed task back at the head of its tier so it keeps its place."""
        keys = [
            self.keys.inflight, self.keys.tier(tier), self.keys.tasks,
            self.keys.queued(tier), self.keys.headseq(tier),
        ]  # fmt: skip
        return bool(self._settle(keys=keys, args=[task_id, position, raw, "head"]))

    def _settle_to(self, dest: str, task_id: str, position: int, value: str) -> bool:
        keys = [self.keys.inflight, dest, self.keys.tasks]
        return bool(self._settle(keys=keys, args=[task_id, position, value, "tail"]))

    def dead_letter_unclaimed(self, letter_json: str) -> None:
        """A task without an id was never claimed, so there is no claim to fence."""
        self.client.rpush(self.keys.dead, letter_json)

    def claims_of(self, worker: str) -> list[tuple[str, Claim]]:
        """(id, claim) of every claim this worker holds, e.g. one whose reply was lost."""
        claims = self.client.hgetall(self.keys.inflight)
        mine = [(_text(k), Claim.from_json(v)) for k, v in claims.items()]
        return [(task_id, claim) for task_id, claim in mine if claim.worker == worker]

    # --- liveness and recovery -------------------------------------------------------------
    def heartbeat(self, worker: str, mode: str, lease: float) -> bool:
        """'join', 'beat' (False: declared dead) or 'leave' (also how the supervisor reports
        a worker it saw die, so its claims are recovered without waiting for the lease)."""
        keys = [self.keys.workers, self.keys.epochs]
        return bool(self._heartbeat(keys=keys, args=[worker, mode, int(lease * 1000)]))

    def try_lock_reaper(self, owner: str, period: float) -> bool:
        """At most one reaper pass per period across every daemon sharing the namespace."""
        return bool(self.client.set(self.keys.reaper_lock, owner, nx=True, px=int(period * 1000)))

    def reap(self, orphan_grace: float) -> list[tuple[str, Claim]]:
        """Declare expired workers dead, claim orphans, and return claims nobody alive holds."""
        keys = [
            self.keys.workers, self.keys.epochs, self.keys.inflight, self.keys.suspects,
            self.keys.position, *self.keys.tiers, *self.keys.queued_sets, self.keys.tasks,
        ]  # fmt: skip
        flat = self._reap(keys=keys, args=[int(orphan_grace * 1000)])
        return [(_text(flat[i]), Claim.from_json(flat[i + 1])) for i in range(0, len(flat), 2)]

    def unblock(self, worker_ids: Iterable[str]) -> int:
        """Wake workers parked in BLPOP, as if it timed out (nil reply: nothing is popped)."""
        names = {self.keys.worker_client_name(w) for w in worker_ids}
        woken = 0
        for entry in self.client.client_list():
            if entry.get("name") in names and entry.get("cmd") == "blpop":
                woken += int(self.client.client_unblock(int(entry["id"])))
        return woken

    def eviction_policy(self) -> str | None:
        """Redis's maxmemory-policy, or None where CONFIG is not allowed (managed Redis)."""
        try:
            reply: dict[Any, Any] = self.client.config_get("maxmemory-policy")
        except redis.ResponseError:
            return None
        policy = {_text(k): _text(v) for k, v in reply.items()}.get("maxmemory-policy")
        return policy or None

    # --- reading ---------------------------------------------------------------------------
    def read_list(self, key: str, start: int = 0, page: int = 1000) -> Iterable[str]:
        """LRANGE ``key`` from ``start`` to its current end, a page at a time."""
        while True:
            items = self.client.lrange(key, start, start + page - 1)
            yield from (_text(item) for item in items)
            if len(items) < page:
                return
            start += page

    def length(self, key: str) -> int:
        return int(self.client.llen(key))

    def read_results(self, start: int | None, page: int = 1000) -> tuple[int, list[str]]:
        """Up to ``page`` results from index ``start`` (None: from the head), atomically:
        (index of the first one returned, results). An index counts the results pushed before
        it (``results:written``), so it survives trimming; the first index returned is above
        ``start`` when results were trimmed (retention, a drain) before this reader saw them."""
        keys = [self.keys.results, self.keys.results_written]
        reply = self._results(keys=keys, args=["read", "" if start is None else start, page])
        return int(reply[1]), [_text(item) for item in reply[2:]]

    def discard_results(self, before: int) -> int:
        """Remove the results whose index is below ``before`` (those a drain has printed),
        atomically, leaving any pushed since; returns how many were removed."""
        keys = [self.keys.results, self.keys.results_written]
        return int(self._results(keys=keys, args=["discard", before])[1])

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
            pipe.llen(keys.results)
            pipe.lrange(keys.results, -max(1, sample), -1)
            pipe.llen(keys.dead)
            pipe.hlen(keys.tasks)
            pipe.get(keys.results_written)
            reply = pipe.execute()
        seconds, micros = reply[0]
        heads = reply[1 : 1 + 2 * len(TIERS)]
        inflight, workers, epochs, results, tail, dead, open_tasks, written = reply[
            1 + 2 * len(TIERS) :
        ]
        return Snapshot(
            time=int(seconds) + int(micros) / 1e6,
            tiers=tuple(
                (
                    tier,
                    int(heads[2 * i]),
                    None if heads[2 * i + 1] is None else _text(heads[2 * i + 1]),
                )
                for i, tier in enumerate(TIERS)
            ),
            claims=tuple(sorted((_text(k), _text(v)) for k, v in inflight.items())),
            workers=tuple((_text(worker), float(expiry)) for worker, expiry in workers),
            epochs=tuple(sorted((_text(k), int(v)) for k, v in epochs.items())),
            results=int(results),
            results_tail=tuple(_text(item) for item in tail),
            dead=int(dead),
            open_tasks=int(open_tasks),
            # Results pushed before the counter existed are indexed by position (results.lua).
            results_written=max(int(written or 0), int(results)),
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
        keys = [
            *self.keys.tiers, *self.keys.queued_sets, *(self.keys.seq(t) for t in TIERS),
            self.keys.tasks,
        ]  # fmt: skip
        args = [*(int(t == tier) for t in TIERS), task_id, task]
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
                        kind = _text(pipe.type(key))
                        if kind not in ("list", "none"):
                            raise redis.ResponseError(f"{key} holds a {kind}, not a list")
                    pipe.multi()
                    self._enqueue(keys=keys, args=args, client=pipe)
                    pipe.lrem(self.keys.dead, 1, letter)
                    pipe.execute()
                    return "requeued"
                except redis.WatchError:
                    continue  # the dead list changed under us: look again
        raise redis.WatchError(f"{self.keys.dead} kept changing: could not requeue {task_id}")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


@dataclass(frozen=True)
class Snapshot:
    """The raw reads behind ``blpopq status``, all from one MULTI/EXEC (one instant)."""

    time: float  # Redis TIME, seconds since the epoch
    tiers: tuple[tuple[Tier, int, str | None], ...]  # (tier, length, head task) by priority
    claims: tuple[tuple[str, str], ...]  # (task id, claim JSON) from inflight
    workers: tuple[tuple[str, float], ...]  # (worker, lease expiry in ms on Redis's clock)
    epochs: tuple[tuple[str, int], ...]  # (worker, takes begun)
    results: int
    results_tail: tuple[str, ...]  # the last results, oldest first
    dead: int
    open_tasks: int
    results_written: int = 0  # results ever written: more than `results` after retention
