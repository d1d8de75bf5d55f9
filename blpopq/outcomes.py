"""What a task ends as, as JSON: a result, or a dead letter saying why it will not run.

Pure: no I/O. The result keys are a public contract (RESULT_FIELDS: add, never rename).
"""

from __future__ import annotations

import base64
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .jsontext import DecodeError, compact_json, json_object

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
        values = vars(self)  # every field is a plain attribute: no getattr per key
        body = {name: values[name] for name in RESULT_FIELDS}
        body["blocks"] = list(self.blocks)
        return {**body, **self.extra}

    def to_json(self) -> str:
        return compact_json(self.to_dict())

    @classmethod
    def from_json(cls, raw: bytes | str) -> Result:
        body = json_object(raw, "result")
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
        return compact_json(body)

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeadLetter:
        body = json_object(raw, "dead letter")
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
        body = json_object(raw, "task")
    except DecodeError:
        return None, None
    if body is None:
        return None, None
    ident, batch = body.get("id"), body.get("batch")
    return (ident if isinstance(ident, str) else None, batch if isinstance(batch, str) else None)
