"""What blpopq reads back from Redis, decoded: a claimed item, a claim record, a snapshot.

Pure: no Redis here (protocol.py sends the commands). Whatever another client may have
written is decoded defensively: bytes stay bytes until read on purpose, and a record that is
not ours raises ValueError for the caller's policy (a dead letter), never anything else.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .outcomes import peek_identity
from .tiers import TIERS, Tier


def safe_text(value: bytes | str) -> str:
    """Text of anything Redis returns, never raising: bytes that are not UTF-8 are shown
    backslash-escaped (any client may have written them)."""
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


class TakenKind(str, Enum):
    """What take.lua found: a task to run, or an item to dead-letter without running."""

    TASK = "task"
    UNREADABLE = "unreadable"  # not a JSON object with a string id
    DUPLICATE = "duplicate"  # its id is open already as another task


@dataclass(frozen=True)
class Taken:
    """One claimed item, exactly as Redis handed it over."""

    tier: Tier
    raw: bytes  # the item as popped: any bytes at all (another client may have pushed them)
    position: int  # the claim's generation: settles must name it
    key: bytes  # its claim's field in {ns}:inflight: the task id, or a key of its own
    kind: TakenKind = TakenKind.TASK

    @property
    def task_id(self) -> str:
        """The claim key as text (ids are text; undecodable bytes are backslash-escaped)."""
        return safe_text(self.key)


@dataclass(frozen=True)
class Claim:
    """A task in flight, as the taking scripts and reap.lua record it in ``{ns}:inflight``."""

    position: int  # the claim's generation: settles must name it
    worker: str  # HOST:PID/TOKEN (older claims: HOST:PID), or "orphan": popped, unclaimed
    tier: Tier
    task: bytes  # the item exactly as taken

    @classmethod
    def from_json(cls, raw: bytes | str, registered: bytes | None = None) -> Claim:
        """Decode one claim; ValueError if it is not one of ours.

        A claim of a registered task holds no copy of it (taking.lua, claim_record): the
        task is ``registered``, its ``{ns}:tasks`` entry under the claim key (read after the
        record: Protocol.registered). Lua's cjson copies the bytes of a task it does copy
        into the record as they are, valid UTF-8 or not; surrogateescape gives them back."""
        text = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw
        try:
            body = json.loads(text)
            tier = _tier_of(body["tier"])
            position, worker = int(body["position"]), body["worker"]
            task = (body["task"] or "") if "task" in body else registered
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise ValueError(f"not a claim record: {exc}") from None
        if task is None:
            raise ValueError("not a claim record: its task is neither in it nor registered")
        if not isinstance(worker, str) or not isinstance(task, (str, bytes)):
            raise ValueError("not a claim record: a field of the wrong type")
        if not worker.isprintable() or not worker.isascii():
            raise ValueError("not a claim record: a worker name that is not printable ASCII")
        if isinstance(task, str):
            task = task.encode("utf-8", "surrogateescape")
        return cls(position, worker, tier, task)

    def as_taken(self, key: bytes) -> Taken:
        """This claim as take.lua would have returned it (for a claim found after a lost
        reply): a key that is not the task's own id marks an item claimed to be refused."""
        if key.startswith(b"~") and _peek_id(self.task) != key:
            kind = TakenKind.DUPLICATE if _peek_id(self.task) else TakenKind.UNREADABLE
            return Taken(self.tier, self.task, self.position, key, kind)
        return Taken(self.tier, self.task, self.position, key)


#: What the 1-based tier index of a claim written by blpopq 0.1 means: claims in flight
#: across an upgrade keep their tier, whatever TIERS becomes.
_V01_TIER_INDEX = (Tier.VIP, Tier.ALTO, Tier.COMUN)


def _tier_of(recorded: Any) -> Tier:
    """A claim's tier: its name, or (claims written by blpopq 0.1) its 1-based index."""
    if isinstance(recorded, str):
        return Tier(recorded)
    index = recorded if isinstance(recorded, int) and not isinstance(recorded, bool) else 0
    if 1 <= index <= len(_V01_TIER_INDEX):
        return _V01_TIER_INDEX[index - 1]
    raise ValueError(f"unknown tier {recorded!r}")


def _peek_id(raw: bytes) -> bytes | None:
    ident, _ = peek_identity(raw)
    return ident.encode() if ident else None


@dataclass(frozen=True)
class Snapshot:
    """The raw reads behind ``blpopq status``, all from one MULTI/EXEC (one instant)."""

    time: float  # Redis TIME, seconds since the epoch
    tiers: tuple[tuple[Tier, int, str | None], ...]  # (tier, length, head task) by priority
    # (task id, claim record from inflight, the task registered under that id or None)
    claims: tuple[tuple[str, bytes, bytes | None], ...]
    workers: tuple[tuple[str, float], ...]  # (worker, lease expiry in ms on Redis's clock)
    epochs: tuple[tuple[str, int], ...]  # (worker, takes begun)
    results: int
    results_tail: tuple[str, ...]  # the last results, oldest first
    dead: int
    open_tasks: int
    results_written: int = 0  # results ever written: more than `results` after retention
    kernels: tuple[tuple[str, str], ...] = ()  # (worker, the kernel it runs)
    policy: str | None = None  # the fairness policy recorded by the daemons (None: never set)


class DeclaredDead(Exception):
    """This worker's lease ran out and the reaper gave its claims to others: it must stop."""


class StaleSession(Exception):
    """A take was refused: it came from a connection this worker has since replaced."""


#: TakenKind by the bytes the taking scripts reply with (a lookup per task, not an Enum call).
_KIND_OF = {kind.value.encode(): kind for kind in TakenKind}


def taken_from_reply(reply: Any, order: Sequence[Tier] = TIERS) -> Taken | None:
    """A taking script's reply (taking.lua) as a Taken, None, or the exception it means."""
    if reply[0] != b"taken":  # every task's reply is: the checks are for the rare others
        status = safe_text(reply[0])
        if status == "empty":
            return None
        if status == "dead":
            raise DeclaredDead("this worker's lease ran out; its claims went to others")
        if status == "stale":
            raise StaleSession("a take from a connection this worker has replaced was refused")
    _, tier_index, raw, position, key, kind = reply
    found = _KIND_OF.get(kind) or TakenKind(safe_text(kind))
    return Taken(order[int(tier_index) - 1], raw, int(position), key, found)
