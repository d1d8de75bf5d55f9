"""What the queue is doing now: ``blpopq status``.

``gather`` reads one snapshot (one MULTI/EXEC, see ``Protocol.snapshot``) and turns it into a
frozen ``Status``; ``build`` is that second step alone, and ``render_table`` / ``to_json``
present a Status. All but ``gather`` are pure, so they are tested without Redis.

Every age is measured against Redis's clock (``TIME``), the same clock the leases use; task and
result timestamps (``enqueued_at``, ``finished_at``) come from the producers' and workers'
clocks, so skew between hosts shows up in ages and in the recent rate, never in liveness.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from . import tables
from .identity import host_of
from .jsontext import DecodeError, compact_json, load_json
from .protocol import Claim, Protocol, Snapshot
from .tables import Column
from .words import plural

#: Seconds back from Redis TIME that count as "recent" for the rate.
RECENT_WINDOW = 60.0
#: How many of the newest results are read to count the recent ones: bounded, whatever the
#: length of the results list.
RECENT_SAMPLE = 1000


@dataclass(frozen=True)
class TierStatus:
    tier: str
    length: int
    #: Age of the task at the head (the next to be taken), from its ``enqueued_at``; None when
    #: the tier is empty or its head is not a task blpopq can read.
    oldest_age: float | None


@dataclass(frozen=True)
class InFlight:
    id: str
    tier: str
    worker: str
    position: int | None
    #: Seconds since the task was enqueued. A claim does not record when it was taken, so the
    #: time spent running cannot be told apart from the time spent waiting.
    age: float | None


@dataclass(frozen=True)
class WorkerStatus:
    worker: str
    #: Seconds until its lease runs out; negative: it ran out and the reaper has not yet
    #: declared the worker dead.
    lease_expires_in: float
    takes: int  # takes begun, from {ns}:epochs
    tasks: tuple[str, ...]  # ids of the claims it holds
    kernel: str | None = None  # the proof-of-work kernel it runs (None: not recorded)

    @property
    def alive(self) -> bool:
        return self.lease_expires_in > 0

    @property
    def host(self) -> str:
        return host_of(self.worker)


@dataclass(frozen=True)
class Recent:
    window: float  # seconds
    results: int  # results whose finished_at is within the window
    sampled: int  # results read to count them (the newest ones)

    @property
    def per_second(self) -> float:
        return self.results / self.window if self.window > 0 else 0.0

    @property
    def capped(self) -> bool:
        """Every sampled result was recent: older ones were not read, so the rate may be higher."""
        return self.sampled > 0 and self.results == self.sampled


@dataclass(frozen=True)
class Status:
    namespace: str
    time: float  # Redis TIME, Unix seconds
    tiers: tuple[TierStatus, ...]  # in priority order
    in_flight: tuple[InFlight, ...]  # by attention position
    workers: tuple[WorkerStatus, ...]  # by worker id
    results: int  # length of {ns}:results (reading deletes nothing, so: all results kept)
    dead_letters: int  # length of {ns}:dead
    open_tasks: int  # registered tasks not yet settled (queued or running): {ns}:tasks
    recent: Recent
    results_written: int = 0  # results ever written; above `results` once retention trims
    policy: str | None = None  # the fairness policy the daemons recorded (None: never set)

    @property
    def queued(self) -> int:
        return sum(t.length for t in self.tiers)

    @property
    def served(self) -> int:
        """Tasks that reached an outcome: results ever written (retention may have trimmed
        some from the list) plus dead letters still in their list."""
        return max(self.results, self.results_written) + self.dead_letters

    @property
    def workers_alive(self) -> int:
        return sum(w.alive for w in self.workers)

    @property
    def hosts(self) -> dict[str, tuple[WorkerStatus, ...]]:
        """The workers of each HOST (BLPOPQ_HOST_ID, or the host name), hosts in order."""
        hosts: dict[str, list[WorkerStatus]] = {}
        for worker in self.workers:
            hosts.setdefault(worker.host, []).append(worker)
        return {host: tuple(workers) for host, workers in sorted(hosts.items())}

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document. Scripts depend on these keys: add, never rename."""
        return {
            "namespace": self.namespace,
            "time": self.time,
            "queued": self.queued,
            "tiers": {
                t.tier: {"length": t.length, "oldest_age_s": _round(t.oldest_age)}
                for t in self.tiers
            },
            "in_flight": [
                {
                    "id": c.id,
                    "tier": c.tier,
                    "worker": c.worker,
                    "position": c.position,
                    "age_s": _round(c.age),
                }
                for c in self.in_flight
            ],
            "workers_alive": self.workers_alive,
            "hosts": {
                host: {"workers": len(ws), "alive": sum(w.alive for w in ws)}
                for host, ws in self.hosts.items()
            },
            "workers": [
                {
                    "worker": w.worker,
                    "host": w.host,
                    "alive": w.alive,
                    "lease_expires_in_s": _round(w.lease_expires_in),
                    "takes": w.takes,
                    "tasks": list(w.tasks),
                    "kernel": w.kernel,
                }
                for w in self.workers
            ],
            "results": self.results,
            "results_written": max(self.results, self.results_written),
            "dead_letters": self.dead_letters,
            "served": self.served,
            "open_tasks": self.open_tasks,
            "policy": self.policy,
            "recent": {
                "window_s": self.recent.window,
                "results": self.recent.results,
                "per_s": round(self.recent.per_second, 3),
                "sampled": self.recent.sampled,
                "capped": self.recent.capped,
            },
        }


def gather(
    protocol: Protocol, window: float = RECENT_WINDOW, sample: int = RECENT_SAMPLE
) -> Status:
    return build(protocol.snapshot(sample), protocol.keys.namespace, window)


def build(snap: Snapshot, namespace: str, window: float = RECENT_WINDOW) -> Status:
    """A Status from raw reads; tolerant of anything unreadable found in Redis."""
    now = snap.time
    tiers = tuple(
        TierStatus(tier.value, length, _age(now, _field(head, "enqueued_at")))
        for tier, length, head in snap.tiers
    )
    in_flight = sorted(
        (_in_flight(task_id, claim, task, now) for task_id, claim, task in snap.claims),
        key=lambda c: (c.position is None, c.position or 0, c.id),
    )
    takes, kernels = dict(snap.epochs), dict(snap.kernels)
    workers = tuple(
        WorkerStatus(
            worker=worker,
            lease_expires_in=expiry / 1000.0 - now,
            takes=takes.get(worker, 0),
            tasks=tuple(c.id for c in in_flight if c.worker == worker),
            kernel=kernels.get(worker),
        )
        for worker, expiry in sorted(snap.workers)
    )
    finished = (_field(raw, "finished_at") for raw in snap.results_tail)
    recent = sum(1 for at in finished if at is not None and now - at <= window)
    return Status(
        namespace=namespace,
        time=now,
        tiers=tiers,
        in_flight=tuple(in_flight),
        workers=workers,
        results=snap.results,
        dead_letters=snap.dead,
        open_tasks=snap.open_tasks,
        recent=Recent(window, recent, len(snap.results_tail)),
        results_written=snap.results_written,
        policy=snap.policy,
    )


def _in_flight(task_id: str, claim_json: bytes, task: bytes | None, now: float) -> InFlight:
    try:
        claim: Claim | None = Claim.from_json(claim_json, task)
    except ValueError:
        claim = None  # shown, not hidden: an operator should see a claim we cannot read
    if claim is None:
        return InFlight(id=task_id, tier="?", worker="?", position=None, age=None)
    return InFlight(
        id=task_id,
        tier=claim.tier.value,
        worker=claim.worker,
        position=claim.position,
        age=_age(now, _field(claim.task, "enqueued_at")),
    )


def _object(raw: bytes | str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        body = load_json(raw, "item")
    except DecodeError:
        return None
    return body if isinstance(body, dict) else None


def _field(raw: bytes | str | None, name: str) -> float | None:
    """A numeric field of a JSON object, or None."""
    value = (_object(raw) or {}).get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _age(now: float, then: float | None) -> float | None:
    return None if then is None else now - then


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# --- rendering ------------------------------------------------------------------------------


def to_json(status: Status) -> str:
    return compact_json(status.to_dict())


def duration(seconds: float | None) -> str:
    """12.3 s, 4 m 05 s, 2 h 03 m, 3 d 04 h; '-' for None."""
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{sign}{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{sign}{whole // 60} m {whole % 60:02d} s"
    if whole < 86400:
        return f"{sign}{whole // 3600} h {whole % 3600 // 60:02d} m"
    return f"{sign}{whole // 86400} d {whole % 86400 // 3600:02d} h"


def _lease(expires_in: float) -> str:
    if expires_in > 0:
        return f"lease expires in {duration(expires_in)}"
    return f"lease ran out {duration(-expires_in)} ago"


#: The tables' columns; ids, workers and running lists are clipped first, then columns are
#: left out, so each table fits the terminal (``--json`` keeps everything).
TIER_COLUMNS = (Column("tier"), Column("queued", right=True), Column("oldest", right=True))
CLAIM_COLUMNS = (
    Column("id", shrink_to=16),
    Column("tier"),
    Column("worker", shrink_to=12),
    Column("position", right=True, drop=2),
    Column("enqueued", right=True, drop=1),
)
WORKER_COLUMNS = (
    Column("worker", shrink_to=12),
    Column("heartbeat"),
    Column("takes", right=True, drop=1),
    Column("kernel", drop=2),
    Column("running", shrink_to=16),
)


def render_table(status: Status, width: int | None = None) -> str:
    """The status as text, each table fitted to ``width`` cells (default: the terminal's,
    80 when unknown)."""
    width = tables.terminal_width() if width is None else width
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(status.time))
    out = [
        f"blpopq status  namespace={tables.printable(status.namespace)}  redis time {stamp} UTC",
        "",
    ]
    rows = []
    for t in status.tiers:
        unreadable = t.length and t.oldest_age is None
        rows.append((t.tier, str(t.length), "?" if unreadable else duration(t.oldest_age)))
    rows.append(("total", str(status.queued), ""))
    out += tables.render(TIER_COLUMNS, rows, width)
    out += ["", f"in flight: {len(status.in_flight)}"]
    if status.in_flight:
        claims = [
            (
                c.id,
                c.tier,
                c.worker,
                "-" if c.position is None else str(c.position),
                "-" if c.age is None else f"{duration(c.age)} ago",
            )
            for c in status.in_flight
        ]
        out += tables.render(CLAIM_COLUMNS, claims, width)
    hosts = status.hosts
    on = f" on {plural(len(hosts), 'host')}" if hosts else ""
    policy = f"   policy: {tables.printable(status.policy)}" if status.policy else ""
    out += ["", f"workers: {status.workers_alive} alive of {len(status.workers)}{on}{policy}"]
    for host, members in hosts.items():
        alive = sum(w.alive for w in members)
        out.append(f"host {tables.printable(host)}: {alive} alive of {len(members)}")
        workers = [
            (
                w.worker,
                _lease(w.lease_expires_in),
                str(w.takes),
                w.kernel or "-",
                ",".join(w.tasks) or "-",
            )
            for w in members
        ]
        out += tables.render(WORKER_COLUMNS, workers, width)
    recent = status.recent
    at_least = "at least " if recent.capped else ""
    out += [
        "",
        f"results: {status.results}   dead letters: {status.dead_letters}   "
        f"served: {status.served} (results + dead letters)   open tasks: {status.open_tasks}",
        f"recent: {at_least}{plural(recent.results, 'result')} in the last {recent.window:g} s "
        f"({at_least}{recent.per_second:.2f}/s; counted on the newest {recent.sampled})",
    ]
    return "\n".join(out) + "\n"
