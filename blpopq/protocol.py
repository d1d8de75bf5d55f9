"""Every command blpopq sends to Redis, in one place (key names: ``keyspace.py``).

The scripts live in ``lua/`` as package data, one per purpose, each opening with the keys and
arguments it takes; shared functions (``settling.lua``, ``taking.lua``) are put in front of a
script's text when it is loaded. redis-py's ``Script`` keeps their SHA and reloads them after
a Redis restart (NOSCRIPT). Items from Redis stay bytes until decoded on purpose: any client
can push any bytes, and none of them may stop a loop that serves everyone.

Delivery path, and what a kill -9 at each point leaves:
  produce  ``enqueue.lua`` (one atomic call: all of a chunk or none) RPUSHes tasks and
           registers each in ``tasks`` (id -> JSON) and ``queued:<tier>`` (id -> sequence).
  (any)    ``registering.lua`` is what enqueue.lua shares with the enqueue other clients call
           (wire.py: FCALL blpopq_enqueue, loaded by ``load_library``, or the same for EVAL).
  take     ``take.lua`` pops the first non-empty tier, numbers it and claims it in
           ``inflight`` in one step. When every tier is empty the worker blocks on ``BLPOP
           vip alto comun`` and claims what it gets with ``claim.lua`` (running the task
           meanwhile: early.py). Between BLPOP's reply and the claim the task is only in
           ``tasks``/``queued``: the reaper finds it there (its sequence is below the list's
           head) once its popper is dead or has begun another take. Whatever is popped is
           claimed, never run twice (early work thrown away is not written): an item
           that is not a task, or reuses an open task's id, under a key of its own, so that
           its dead letter is fenced like any outcome. Takes carry the worker's session, so
           one delayed from a replaced connection is refused.
  settle   ``settle_result.lua``, ``settle_dead.lua`` or ``requeue.lua`` (back at the head
           of its tier) ends the claim, only if it is still this take's; ``finish.lua`` is
           settle_result then take, in one round trip. A result also bumps
           ``results:written`` and, with retention, trims ``results`` to its newest N in the
           same step; readers index results by that counter (``results.lua``), so trimming
           from the head never shifts what they have read.
  recover  ``heartbeat.lua`` keeps each worker's lease in ``workers`` on Redis's clock;
           ``reap.lua`` declares expired workers dead and returns claims nobody alive holds
           (and records nobody can read); recovery.py puts those back at the head of their
           tier, or dead-letters a task that has killed ``max_deaths`` workers.
  cancel   ``cancel.lua`` ends a waiting task as a ``cancelled`` result in one step: LREM
           from its list (only if still there), out of ``queued`` and ``tasks``, the result
           pushed as settle_result pushes one. A popped, unclaimed task is in no list: it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import redis

from . import packed, wire
from .errors import IdInUse
from .keyspace import Keyspace
from .operations import OperatorCommands
from .reading import ReaderCommands
from .records import (
    Claim,
    DeclaredDead,
    Snapshot,
    StaleSession,
    Taken,
    TakenKind,
    as_bytes,
    safe_text,
    taken_from_reply,
)
from .streamed import call_script
from .tiers import TIERS, Tier

__all__ = [
    "Claim", "DeclaredDead", "Keyspace", "Protocol", "Snapshot", "StaleSession", "Taken",
    "TakenKind", "safe_text",
]  # fmt: skip


#: Every script, by name: the files whose text makes it, shared functions first. access.py
#: reads from the same text which commands each script calls (what an ACL must allow).
SCRIPTS: dict[str, tuple[str, ...]] = {
    "enqueue": ("registering.lua", "clock.lua", "enqueue.lua"),
    "session": ("session.lua",),
    "take": ("taking.lua", "take.lua"),
    "claim": ("taking.lua", "claim.lua"),
    "finish": ("settling.lua", "taking.lua", "finish.lua"),
    "settle_result": ("settling.lua", "settle_result.lua"),
    "settle_dead": ("settling.lua", "dead.lua", "settle_dead.lua"),
    "push_dead": ("dead.lua", "push_dead.lua"),
    "read_dead": ("read_dead.lua",),
    "requeue": ("settling.lua", "requeue.lua"),
    "drop_claim": ("dead.lua", "drop_claim.lua"),
    "heartbeat": ("clock.lua", "outage.lua", "heartbeat.lua"),
    "reap": ("settling.lua", "clock.lua", "outage.lua", "reap.lua"),
    "results": ("results.lua",),
    "cancel": ("settling.lua", "cancel.lua"),
    "policy": ("clock.lua", "policy.lua"),
    # Under the aging policy: aging.lua replaces the take of take.lua and finish.lua.
    "take_aging": ("taking.lua", "clock.lua", "aging.lua", "take.lua"),
    "finish_aging": ("settling.lua", "taking.lua", "clock.lua", "aging.lua", "finish.lua"),
}


def script_source(name: str) -> str:
    """The text of script ``name`` as Redis runs it."""
    return wire.lua(*SCRIPTS[name])


def _load_script(client: redis.Redis, name: str) -> Any:
    return client.register_script(script_source(name))


#: Seconds each tier may wait before it is overdue (None: it never ages), in TIERS order; None
#: for the strict take.
Overdue = Sequence[float | None] | None


class Protocol(OperatorCommands, ReaderCommands):
    """The queue's commands over one redis-py client (one per process: never share across fork).

    A worker's takes are fenced by a *session*: a number opened per Protocol (so per
    connection). Opening a new one refuses every take or claim the old connection may still
    have on its way (Redis frozen with the command in its buffer), so after a lost reply the
    worker's view of its claims (``claims_of``) cannot change behind its back."""

    def __init__(self, client: redis.Redis, keys: Keyspace) -> None:
        self.client = client
        self.keys = keys
        self._sessions: dict[str, int] = {}
        self._frames: dict[tuple[str, str, tuple[Tier, ...]], packed.Frame] = {}
        self._enqueue = _load_script(client, "enqueue")
        self._session = _load_script(client, "session")
        self._take = _load_script(client, "take")
        self._claim = _load_script(client, "claim")
        self._finish = _load_script(client, "finish")
        self._take_aging = _load_script(client, "take_aging")
        self._finish_aging = _load_script(client, "finish_aging")
        self._aging_keys = [*(keys.arrivals(t) for t in TIERS), *(keys.seen(t) for t in TIERS)]
        self._settle_result = _load_script(client, "settle_result")
        self._settle_dead = _load_script(client, "settle_dead")
        self._push_dead = _load_script(client, "push_dead")
        self._read_dead = _load_script(client, "read_dead")
        self._requeue = _load_script(client, "requeue")
        self._drop_claim = _load_script(client, "drop_claim")
        self._heartbeat = _load_script(client, "heartbeat")
        self._reap = _load_script(client, "reap")
        self._results = _load_script(client, "results")
        self._cancel = _load_script(client, "cancel")
        self._policy = _load_script(client, "policy")
        self._enqueue_keys = [
            *keys.tiers, *keys.queued_sets, *keys.seqs, keys.tasks, keys.inflight,
            keys.last_batch, *(keys.arrivals(t) for t in TIERS),
        ]  # fmt: skip
        self._results_keys = (keys.results, keys.results_written)  # named once, not per task
        self._take_keys = [
            *keys.tiers, *keys.queued_sets, keys.inflight, keys.position, keys.workers,
            keys.epochs, keys.sessions, keys.tasks,
        ]  # fmt: skip

    # --- producing -------------------------------------------------------------------------
    def enqueue(
        self,
        chunk: Sequence[tuple[Tier, Sequence[tuple[str, str]]]],
        batch: str,
        first: bool,
    ) -> None:
        """Push and register every (tier, [(id, task)]) group of one chunk of ``batch`` in one
        script call: Redis runs it like MULTI/EXEC (nothing else in between, one transaction
        in the AOF) and it checks every key before its first write, so it lands whole or not
        at all. A ``first`` chunk also records its batch as the last one produced."""
        per_tier: dict[Tier, list[str]] = {tier: [] for tier in TIERS}
        for tier, tasks in chunk:
            per_tier[tier].extend(part for pair in tasks for part in pair)
        counts = [len(per_tier[tier]) // 2 for tier in TIERS]
        args = [
            len(TIERS), *counts, batch, "first" if first else "next",
            *(part for tier in TIERS for part in per_tier[tier]),
        ]  # fmt: skip
        try:
            # Streamed: a chunk's arguments are megabytes, and encoded whole they triple.
            call_script(self.client, self._enqueue, self._enqueue_keys, args)
        except redis.ResponseError as exc:
            raise _id_in_use(exc) or exc from None

    def load_library(self, replace: bool) -> str:
        """Offer any client the lossless enqueue as ``FCALL blpopq_enqueue`` (wire.py): load
        the function library, replacing one already loaded only if ``replace``. Returns
        'loaded', 'present' (one was loaded already) or 'unsupported' (Redis < 7: no
        functions); any other refusal (NOPERM, a read-only replica) is raised."""
        try:
            self.client.function_load(wire.enqueue_library(), replace=replace)
        except redis.ResponseError as exc:
            text = str(exc)
            if "already exists" in text:
                return "present"
            if "unknown command" in text.lower():
                return "unsupported"
            raise
        return "loaded"

    # --- taking ----------------------------------------------------------------------------
    def open_session(self, worker: str) -> int:
        """Start a new session for ``worker`` on this connection: takes and claims sent on any
        earlier one are refused from now on. Done lazily by the first take if not before.
        A worker that has not joined (or was declared dead) gets session 0, which every take
        finds refused as 'dead'."""
        session = int(self._session(keys=[self.keys.sessions, self.keys.workers], args=[worker]))
        self._sessions[worker] = session
        return session

    def _take_args(self, worker: str, *extra: Any, order: Sequence[Tier] = TIERS) -> list[Any]:
        """ARGV of a taking script (taking.lua): n, worker, session, its own, tier names."""
        session = self._sessions.get(worker)
        if session is None:
            session = self.open_session(worker)
        return [len(TIERS), worker, session, *extra, *(t.value for t in order)]

    def _take_keys_in(self, order: Sequence[Tier]) -> list[str]:
        """The taking scripts' KEYS with the tiers in ``order`` (a fairness policy's draw)."""
        if tuple(order) == TIERS:
            return self._take_keys
        tiers = [self.keys.tier(t) for t in order] + [self.keys.queued(t) for t in order]
        return [*tiers, *self._take_keys[len(tiers) :]]

    def take(
        self, worker: str, order: Sequence[Tier] = TIERS, overdue_after: Overdue = None
    ) -> Taken | None:
        """Pop, number and claim the first task of the first non-empty tier in ``order`` (the
        priority order unless a fairness policy drew another); None if all tiers are empty.
        With ``overdue_after`` (seconds per tier, None: never ages) the oldest overdue head
        goes first (aging.lua)."""
        keys, args = self._take_keys_in(order), self._take_args(worker, order=order)
        if overdue_after is None:
            return taken_from_reply(self._take(keys=keys, args=args), order)
        keys, args = self._with_aging(keys, args, overdue_after)
        return taken_from_reply(self._take_aging(keys=keys, args=args), order)

    def _with_aging(
        self, keys: list[str], args: list[Any], overdue_after: Sequence[float | None]
    ) -> tuple[list[str], list[Any]]:
        """A taking script's KEYS and ARGV with what aging.lua reads at their ends."""
        limits = [-1 if s is None else round(s * 1000) for s in overdue_after]
        names = args[-len(TIERS) :]
        return [*keys, *self._aging_keys], [*args[: -len(TIERS)], *limits, *names]

    def settle_and_take(
        self,
        worker: str,
        key: bytes | str,
        position: int,
        result_json: bytes | str,
        keep: int = 0,
        order: Sequence[Tier] = TIERS,
        overdue_after: Overdue = None,
    ) -> tuple[bool, Taken | None]:
        """settle_result() and take() in one round trip: (result written?, next task)."""
        results = self._results_keys
        if overdue_after is None:
            # Every task's call: packed around what changes (packed.py).
            fixed = self._frame(self._finish, worker, tuple(order), results)
            changing = (key, position, result_json, keep)
            reply = packed.call(self.client, self._finish, fixed, changing)
        else:
            keys = [*self._take_keys_in(order), *results]
            args = self._take_args(worker, key, position, result_json, keep, order=order)
            keys, args = self._with_aging(keys, args, overdue_after)
            reply = self._finish_aging(keys=keys, args=args)
        return int(reply[0]) == 1, taken_from_reply(reply[1:], order)

    def _frame(
        self, script: Any, worker: str, order: tuple[Tier, ...], more_keys: Sequence[str] = ()
    ) -> packed.Frame:
        """A taking script's fixed parts (its keys, then ``more_keys``; n, worker, session;
        the tier names in ``order``), packed once per session and order: what changes goes
        between. The keys are listed only when a frame is packed, not at every call."""
        cached = self._frames.get((script.sha, worker, order))
        session = self._sessions.get(worker)
        if cached is None or session is None or cached.head[2] != session:
            head = tuple(self._take_args(worker, order=order)[:3])  # n, worker, session
            keys = [*self._take_keys_in(order), *more_keys]
            cached = packed.frame(script.sha, keys, head, [t.value for t in order])
            self._frames[(script.sha, worker, order)] = cached
        return cached

    def block(self, timeout: float, order: Sequence[Tier] = TIERS) -> tuple[Tier, bytes] | None:
        """BLPOP the tiers in ``order``. The task is removed from Redis here: claim it next
        (until then only its registration remembers it: the reaper's orphan search)."""
        popped = self.client.blpop([self.keys.tier(t) for t in order], timeout=timeout)
        if popped is None:
            return None
        key, raw = popped
        return TIERS[self.keys.tiers.index(safe_text(key))], as_bytes(raw)

    def claim(
        self, worker: str, tier: Tier, raw: bytes, meanwhile: Callable[[], object] = lambda: None
    ) -> Taken:
        """Number and claim a task BLPOP handed over, running ``meanwhile()`` as the claim
        travels (early.py). After a lost reply, look for it (``claims_of``) in a new session."""
        fixed, middle = self._frame(self._claim, worker, TIERS), (TIERS.index(tier) + 1, raw)
        taken = taken_from_reply(packed.call(self.client, self._claim, fixed, middle, meanwhile))
        assert taken is not None  # claim.lua never pops, so it never finds the tiers empty
        return taken

    # --- settling --------------------------------------------------------------------------
    def settle_result(
        self, key: bytes | str, position: int, result_json: bytes | str, keep: int = 0
    ) -> bool:
        """Push the result and end the claim, if the claim is still this take's; then, when
        ``keep`` > 0, trim the results list to its newest ``keep`` (only if written)."""
        keys = [self.keys.inflight, self.keys.tasks, self.keys.results, self.keys.results_written]
        return bool(self._settle_result(keys=keys, args=[key, position, result_json, keep]))

    def settle_dead(self, key: bytes | str, position: int, letter_json: bytes | str) -> bool:
        """Push the dead letter (numbered: its ``seq``) and end the claim, if still ours."""
        keys = [self.keys.inflight, self.keys.tasks, self.keys.dead, self.keys.dead_written]
        return bool(self._settle_dead(keys=keys, args=[key, position, letter_json]))

    def requeue(self, key: bytes | str, position: int, tier: Tier, raw: bytes | str) -> bool:
        """Put a claimed task back at the head of its tier so it keeps its place."""
        keys = [
            self.keys.inflight, self.keys.tier(tier), self.keys.tasks,
            self.keys.queued(tier), self.keys.headseq(tier),
        ]  # fmt: skip
        return bool(self._requeue(keys=keys, args=[key, position, raw]))

    def drop_claim(self, key: bytes, record: bytes, letter_json: str) -> bool:
        """Replace an unreadable claim record with a dead letter, if it is still ``record``."""
        keys = [self.keys.inflight, self.keys.tasks, self.keys.dead, self.keys.dead_written]
        return bool(self._drop_claim(keys=keys, args=[key, record, letter_json]))

    def dead_letter_unclaimed(self, letter_json: str) -> int:
        """Push a dead letter that no claim fences (tests and tools; workers always settle);
        returns its number."""
        keys = [self.keys.dead, self.keys.dead_written]
        return int(self._push_dead(keys=keys, args=[letter_json]))

    def claims_of(self, worker: str) -> list[tuple[bytes, Claim]]:
        """(key, claim) of every claim this worker holds, e.g. one whose reply was lost.
        Records that cannot be read are skipped here: they are the reaper's to dead-letter."""
        records = self.client.hgetall(self.keys.inflight)
        tasks = self.registered(as_bytes(k) for k in records)
        mine: list[tuple[bytes, Claim]] = []
        for (key, record), task in zip(records.items(), tasks, strict=True):
            try:
                claim = Claim.from_json(record, task)
            except ValueError:
                continue
            if claim.worker == worker:
                mine.append((as_bytes(key), claim))
        return mine

    def wait_for_replicas(self, replicas: int, timeout: float) -> int:
        """WAIT: how many replicas confirmed every write of this connection so far, once
        ``replicas`` did or ``timeout`` seconds passed (replication.py)."""
        return int(self.client.wait(replicas, max(1, round(timeout * 1000))))

    # --- liveness and recovery -------------------------------------------------------------
    def heartbeat(
        self,
        worker: str,
        mode: str,
        lease: float,
        expected_gap: float | None = None,
        kernel: str = "unknown",
    ) -> bool:
        """'join', 'beat' (False: declared dead) or 'leave' (also how the supervisor reports
        a worker it saw die, so its claims are recovered without waiting for the lease).
        ``expected_gap``: the longest time between two beats of a live pool; a longer one
        was an outage of Redis, which no lease counts (outage.lua). Default: the lease.
        ``kernel``: on 'join', the proof-of-work kernel it runs (`blpopq status` shows it)."""
        keys = [
            self.keys.workers, self.keys.epochs, self.keys.sessions, self.keys.alive_at,
            self.keys.kernels,
        ]  # fmt: skip
        gap = lease if expected_gap is None else expected_gap
        args = [worker, mode, int(lease * 1000), int(gap * 1000), kernel]
        return bool(self._heartbeat(keys=keys, args=args))

    def try_lock_reaper(self, owner: str, period: float) -> bool:
        """At most one reaper pass per period across every daemon sharing the namespace."""
        return bool(self.client.set(self.keys.reaper_lock, owner, nx=True, px=int(period * 1000)))

    def reap(
        self, orphan_grace: float, expected_gap: float | None = None
    ) -> list[tuple[bytes, bytes]]:
        """Declare expired workers dead, claim orphans, and return (key, record) of every
        claim nobody alive holds and of every record that cannot be read, undecoded: what
        to do with each is recovery's. ``expected_gap``: this is a scheduled pass, expected
        at most this long after the last one (a later one reveals an outage, which leases do
        not count); None: a pass out of schedule."""
        keys = [
            self.keys.workers, self.keys.epochs, self.keys.inflight, self.keys.suspects,
            self.keys.position, self.keys.tasks, self.keys.sessions, self.keys.alive_at,
            self.keys.kernels, *self.keys.tiers, *self.keys.queued_sets,
        ]  # fmt: skip
        schedule = [0, 0] if expected_gap is None else [1, int(expected_gap * 1000)]
        names = [t.value for t in TIERS]
        flat = self._reap(keys=keys, args=[int(orphan_grace * 1000), len(TIERS), *schedule, *names])
        return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]

    def unblock(self, worker_ids: Iterable[str]) -> int:
        """Wake workers parked in BLPOP, as if it timed out (nil reply: nothing is popped)."""
        names = {self.keys.worker_client_name(w) for w in worker_ids}
        woken = 0
        for entry in self.client.client_list():
            if entry.get("name") in names and entry.get("cmd") == "blpop":
                woken += int(self.client.client_unblock(int(entry["id"])))
        return woken


def _id_in_use(exc: redis.ResponseError) -> IdInUse | None:
    """enqueue.lua's refusal of an open id, as the exception that names it."""
    text = str(exc)
    return IdInUse(text.split(" ", 1)[1]) if text.startswith("IDINUSE ") else None
