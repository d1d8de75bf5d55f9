"""What travels through Redis: tasks, results and dead letters, as JSON.

Pure: no I/O. JSON only (never pickle, never eval), so any language can read the queue.
A task that cannot be decoded raises DecodeError with a reason fit for a dead letter.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .instructions import Request
from .pow import Block, Progress, check_blocks
from .tiers import Tier

SCHEMA_VERSION = 1
OPS = ("mine", "verify")
_HEX = frozenset("0123456789abcdef")


class DecodeError(ValueError):
    """A task in Redis is not one blpopq can run; the message is the dead-letter reason."""


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
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))

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
        body = _json_object(raw, "task")
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


#: A \uD800-\uDFFF escape: JSON can spell a lone UTF-16 surrogate, which Python then holds
#: in a str that no UTF-8 write (a result, a letter, a log line) can encode.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def load_json(raw: bytes | str, what: str) -> Any:
    """``raw`` parsed as JSON that is text all through, or DecodeError saying why not.

    Anything read from Redis goes through here: its bytes must be UTF-8, its nesting within
    the decoder's limit, and its strings free of lone surrogates, so that whatever is built
    from it can be written back (one such id once crashed every process that read it)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise DecodeError(f"{what} is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise DecodeError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise DecodeError(f"{what} nests deeper than the JSON decoder's limit") from None
    if _SURROGATE_ESCAPE.search(text) and not _writable(body):
        raise DecodeError(f"{what} holds a lone UTF-16 surrogate (\\uD800-\\uDFFF): not text")
    return body


def _writable(body: Any) -> bool:
    """True when ``body`` encodes to UTF-8 (only checked when an escape hints otherwise:
    valid surrogate pairs decode to ordinary characters)."""
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return False
    return True


def _json_object(raw: bytes | str, what: str) -> dict[str, Any] | None:
    """``raw`` parsed, if a JSON object; None if other JSON; DecodeError if not JSON at all."""
    body = load_json(raw, what)
    return body if isinstance(body, dict) else None


_KINDS = {str: "a string", int: "a whole number", (int, float): "a number"}
_MISSING = object()


def _field(body: dict[str, Any], name: str, kind: Any, default: Any = _MISSING) -> Any:
    """Field ``name`` of the task, of type ``kind``; ``default`` when it is left out (none:
    the field is required). A reason that names the field otherwise."""
    if name not in body:
        if default is _MISSING:
            raise DecodeError(f"field {name!r} is missing")
        return default
    value = body[name]
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
    try:
        tier = Tier(named)
    except ValueError:
        raise DecodeError(f"field 'tier' is {named!r}, an unknown tier") from None
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
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


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


#: The result keys users' scripts depend on, in the order they are written. Add, never rename.
RESULT_FIELDS = (
    "position", "id", "batch", "source", "line", "tier", "client", "op", "status",
    "prev", "difficulty", "nonce", "hash", "blocks", "attempts", "worker",
    "enqueued_at", "started_at", "finished_at", "error",
)  # fmt: skip

#: The status of a task cancelled while it waited (`blpopq cancel`): no failure.
CANCELLED = "cancelled"

#: Statuses that make `blpopq run` exit 1 (`invalid` is a correct answer to a verify).
FAILED_STATUSES = frozenset({"error", "exhausted"})


@dataclass(frozen=True)
class Result:
    position: int
    id: str
    batch: str
    source: str
    line: int
    tier: str
    client: str
    op: str
    status: str  # ok | exhausted | valid | invalid | error | cancelled
    prev: str
    difficulty: int
    nonce: int | None
    hash: str | None
    blocks: tuple[dict[str, Any], ...]
    attempts: int
    worker: str
    enqueued_at: float
    started_at: float
    finished_at: float
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def wait_ms(self) -> float:
        return (self.started_at - self.enqueued_at) * 1000.0

    @property
    def run_ms(self) -> float:
        return (self.finished_at - self.started_at) * 1000.0

    def to_dict(self) -> dict[str, Any]:
        body = {name: getattr(self, name) for name in RESULT_FIELDS}
        body["blocks"] = list(self.blocks)
        return {**body, **self.extra}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Result:
        body = _json_object(raw, "result")
        if body is None:
            raise DecodeError("result is not a JSON object")
        known = {name: body.pop(name) for name in RESULT_FIELDS if name in body}
        known["blocks"] = tuple(known.get("blocks", ()))
        return cls(**known, extra=body)


@dataclass(frozen=True)
class DeadLetter:
    """An item that will not be run, with why. ``raw`` is the item as found in Redis, as text;
    when those bytes were not UTF-8, the undecodable ones are backslash-escaped there and
    ``raw_b64`` holds the exact bytes (base64), else ``raw_b64`` is None."""

    reason: str
    raw: str
    id: str | None
    batch: str | None
    tier: str | None
    worker: str
    at: float
    raw_b64: str | None = None
    #: Its number among the namespace's letters, given by Redis as it is pushed (None until
    #: then, and for letters written before numbering existed).
    seq: int | None = None

    @classmethod
    def for_item(
        cls, raw: bytes | str, reason: str, *, tier: str | None, worker: str, with_id: bool = True
    ) -> DeadLetter:
        """The letter of any item at all: its id and batch where they can be read."""
        task_id, batch = peek_identity(raw) if with_id else (None, None)
        text, exact = readable(raw)
        return cls(reason, text, task_id, batch, tier, worker, time.time(), exact)

    def to_json(self) -> str:
        body = asdict(self)
        del body["seq"]  # Redis numbers a letter as it is pushed (lua/dead.lua), never us
        if body["raw_b64"] is None:
            del body["raw_b64"]  # letters of readable items look as they always did
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeadLetter:
        body = _json_object(raw, "dead letter")
        if body is None:
            raise DecodeError("dead letter is not a JSON object")
        known = {f.name for f in fields(cls)}
        return cls(**{name: value for name, value in body.items() if name in known})


def readable(raw: bytes | str) -> tuple[str, str | None]:
    """(text, base64 of the exact bytes or None): what a letter needs to show any item."""
    if isinstance(raw, str):
        return raw, None
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), base64.b64encode(raw).decode("ascii")


def peek_identity(raw: bytes | str) -> tuple[str | None, str | None]:
    """Best-effort (id, batch) of a task that failed to decode, for its dead letter. Bytes
    that are not UTF-8 read as U+FFFD here: the id is for people, raw_b64 keeps the bytes."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        body = _json_object(raw, "task")
    except DecodeError:
        return None, None
    if body is None:
        return None, None
    ident, batch = body.get("id"), body.get("batch")
    return (ident if isinstance(ident, str) else None, batch if isinstance(batch, str) else None)
