"""What travels through Redis: tasks, results and dead letters, as JSON.

Pure: no I/O. JSON only (never pickle, never eval), so any language can read the queue.
A task that cannot be decoded raises DecodeError with a reason fit for a dead letter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .instructions import Request
from .jsontext import DecodeError, compact_json, json_object, load_json
from .pow import Block, Progress, check_blocks
from .tiers import Tier

SCHEMA_VERSION = 1
OPS = ("mine", "verify")
_HEX = frozenset("0123456789abcdef")
_TIER_NAMED = {tier.value: tier for tier in Tier}  # a lookup per task, not an Enum call


@dataclass(frozen=True)
class Task(Request):
    """A request with its identity in the queue: what a tier list carries, as JSON."""

    id: str
    batch: str
    enqueued_at: float
    #: Set on a mine task put back by a stopping worker: the blocks it finished, so the next
    #: run goes on from there (every hash computed for it, across runs, is in ``attempts``).
    progress: Progress | None = None

    def to_json(self) -> str:
        # Spelled out rather than dataclasses.asdict(): producing 100,000 tasks spent most
        # of its time in asdict's deep copy (scripts/bench_queue.py).
        body = {
            "v": SCHEMA_VERSION,
            "id": self.id,
            "batch": self.batch,
            "tier": self.tier.value,
            "client": self.client,
            "op": self.op,
            "prev": self.prev,
            "difficulty": self.difficulty,
            "count": self.count,
            "nonce": self.nonce,
            "source": self.source,
            "line": self.line,
            "enqueued_at": self.enqueued_at,
        }
        if self.progress is not None:
            body["progress"] = progress_body(self.progress)
        return compact_json(body)

    @classmethod
    def from_json(
        cls,
        raw: bytes | str,
        *,
        tier: Tier | None = None,
        key: str | None = None,
        seen_at: float | None = None,
    ) -> Task:
        """Decode and check a task (README "Wire format"). What a task may leave out comes
        from where it was found: ``tier``, the list it was taken from (a ``tier`` field must
        name it); ``key``, its claim key, which take.lua gives a task without an id; and
        ``seen_at``, when blpopq first saw it. The schema version defaults to the current
        one, ``count`` to 1, ``batch`` and ``source`` to "" and ``line`` to 0."""
        body = json_object(raw, "task")
        if body is None:
            raise DecodeError("task is not a JSON object")
        version = body.get("v", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise DecodeError(f"unsupported task schema version {version!r}")
        return _task_from_fields(body, _Found(tier, key, seen_at))


@dataclass(frozen=True)
class _Found:
    """What a task's place in Redis says about it: the defaults of its optional fields."""

    tier: Tier | None
    key: str | None
    seen_at: float | None


_KINDS = {str: "a string", int: "a whole number", (int, float): "a number"}
_MISSING = object()


def _field(body: dict[str, Any], name: str, kind: Any, default: Any = _MISSING) -> Any:
    """Field ``name`` of the task, of type ``kind``; ``default`` when it is left out (none:
    the field is required). A reason that names the field otherwise."""
    value = body.get(name, _MISSING)
    if value.__class__ is kind:  # the common case, one test (a bool's class is never int)
        return value
    if value is _MISSING:
        if default is _MISSING:
            raise DecodeError(f"field {name!r} is missing")
        return default
    # bool is an int subclass, and `true` is never a valid number here.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DecodeError(f"field {name!r} is not {_KINDS[kind]}")
    return value


def _task_from_fields(body: dict[str, Any], found: _Found) -> Task:
    tier = _tier(body, found.tier)
    client = _field(body, "client", str)
    op = _field(body, "op", str)
    if op not in OPS:
        raise DecodeError(f"field 'op' is {op!r}, not one of {', '.join(OPS)}")
    prev = _field(body, "prev", str)
    if len(prev) != 64 or not _HEX.issuperset(prev):
        raise DecodeError("field 'prev' must be 64 lower-case hexadecimal digits")
    difficulty = _field(body, "difficulty", int)
    if not 0 <= difficulty <= 256:
        raise DecodeError(f"field 'difficulty' is {difficulty}, outside 0..256")
    count = _field(body, "count", int, 1)
    if count < 1:
        raise DecodeError(f"field 'count' is {count}, below 1")
    nonce = _nonce(body, op)
    ident = _field(body, "id", str, _or_required(found.key))
    if not ident:
        raise DecodeError("field 'id' is empty")
    return Task(
        id=ident,
        batch=_field(body, "batch", str, ""),
        tier=tier,
        client=client,
        op=op,
        prev=prev,
        difficulty=difficulty,
        count=count,
        nonce=nonce,
        source=_field(body, "source", str, ""),
        line=_field(body, "line", int, 0),
        enqueued_at=float(_field(body, "enqueued_at", (int, float), _or_required(found.seen_at))),
        progress=_progress(body, prev, difficulty, count) if op == "mine" else None,
    )


def _or_required(default: Any) -> Any:
    return _MISSING if default is None else default


def _tier(body: dict[str, Any], found: Tier | None) -> Tier:
    """The tier of the list a task was taken from; a ``tier`` field must agree with it."""
    named = body.get("tier", _MISSING)
    if named is _MISSING:
        if found is None:
            raise DecodeError("field 'tier' is missing")
        return found
    tier = _TIER_NAMED.get(named) if isinstance(named, str) else None
    if tier is None:
        raise DecodeError(f"field 'tier' is {named!r}, an unknown tier")
    if found is not None and tier is not found:
        raise DecodeError(f"field 'tier' is {tier.value!r}, but the task was on {found.value}")
    return tier


def _nonce(body: dict[str, Any], op: str) -> int | None:
    nonce = body.get("nonce")
    if op == "verify":
        nonce = _field(body, "nonce", int)
        if not 0 <= nonce < 2**64:
            raise DecodeError(f"field 'nonce' is {nonce}, outside 0..2**64-1")
    elif nonce is not None:
        raise DecodeError("field 'nonce' is set, but a mine task carries no nonce")
    return nonce


def unreadable_reason(raw: bytes | str) -> str:
    """Why take.lua found no task in ``raw`` (not JSON, not an object, or an ``id`` that is
    not a non-empty string), as precisely as Python can say it. Lua's decoder refuses a few
    items Python reads (nested deeper than its limit): those get the general reason."""
    try:
        body = load_json(raw, "task")
    except DecodeError as exc:
        return str(exc)
    if not isinstance(body, dict):
        return "task is not a JSON object"
    ident = body.get("id", "-")
    if not isinstance(ident, str) or not ident:
        return "field 'id' is not a non-empty string"
    return "not a JSON object with a non-empty string id (as Lua's JSON decoder reads it)"


def progress_body(progress: Progress) -> dict[str, Any]:
    """The ``progress`` field of a task's JSON."""
    return {
        "blocks": [{"nonce": b.nonce, "hash": b.hash} for b in progress.blocks],
        "attempts": progress.attempts,
        "next_nonce": progress.next_nonce,
    }


def with_progress(raw: bytes | str, progress: Progress, task: Task) -> str:
    """``raw`` (a task that decoded as ``task``) with its ``progress`` field set, every other
    field kept as it was (``history`` among them: a stop must not reset the count of
    deaths). A minimal task gets the id and enqueue time it was given: they stay its own."""
    body = json.loads(raw)
    body.setdefault("id", task.id)
    body.setdefault("enqueued_at", task.enqueued_at)
    body["progress"] = progress_body(progress)
    return compact_json(body)


def _progress(body: dict[str, Any], prev: str, difficulty: int, count: int) -> Progress | None:
    """The task's progress, checked: well-formed, and its blocks a valid chain (one hash each),
    so a result never carries a block nobody verified."""
    value = body.get("progress")
    if value is None:
        return None
    try:
        blocks = tuple(Block(_natural(b["nonce"]), _text(b["hash"])) for b in value["blocks"])
        attempts, next_nonce = _natural(value["attempts"]), _natural(value["next_nonce"])
    except (KeyError, TypeError, ValueError):
        raise DecodeError("field 'progress' is not {blocks, attempts, next_nonce}") from None
    if len(blocks) >= count:
        raise DecodeError(f"field 'progress' has {len(blocks)} blocks of {count}")
    problem = check_blocks(prev, difficulty, blocks)
    if problem is not None:
        raise DecodeError(f"field 'progress': {problem}")
    return Progress(blocks, attempts, next_nonce)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    return value


def _natural(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a whole number >= 0")
    return value
