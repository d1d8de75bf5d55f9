"""Helpers of chaos.py: the requests and foreign items it pushes, how dead letters are matched
to foreign items, and the checks of its report.

A foreign item is matched to its letter by its exact bytes (the letter's ``raw_b64`` when the
item was not UTF-8, else ``raw``), never by id: most foreign items have none.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import secrets
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from blpopq.instructions import Request
from blpopq.keyspace import Keyspace
from blpopq.tiers import TIERS

POISON = "poison"  # the client whose tasks crash their worker (a test hook of the daemon)

#: Keeps Redis busy for ARGV[1] microseconds on its own clock: other clients get BUSY once
#: the server's lua-time-limit has passed. TIME is {seconds, microseconds}.
BUSY_SCRIPT = """
local t = redis.call('TIME')
local start = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
repeat
  local now = redis.call('TIME')
  local elapsed = tonumber(now[1]) * 1000000 + tonumber(now[2]) - start
until elapsed >= limit
return 1
"""

#: Copy the task at the head of KEYS[1] (only if it is exactly the open task KEYS[2] holds
#: under its id) with its client changed, and push the copy in front of it, in one step: the
#: copy is then taken while its id is surely open. Returns the copy, or false.
FORGE_SCRIPT = """
local raw = redis.call('LINDEX', KEYS[1], 0)
if not raw then return false end
local ok, task = pcall(cjson.decode, raw)
if not ok or type(task) ~= 'table' or type(task.id) ~= 'string' then return false end
if redis.call('HGET', KEYS[2], task.id) ~= raw then return false end
local forged, n = string.gsub(raw, '"client":"', '"client":"forged-', 1)
if n ~= 1 then return false end
redis.call('LPUSH', KEYS[1], forged)
return forged
"""

#: Kinds of tier-list garbage, each (name, weight).
GARBAGE_KINDS = (("random bytes", 5), ("empty", 1), ("deep nesting", 1), ("id + non-UTF-8", 2))


@dataclass(frozen=True)
class Foreign:
    """One injected item and what its one dead letter may say."""

    kind: str
    raw: bytes
    ids: frozenset[str | None]  # the ids its letter may carry
    reason_has: str = ""  # text its letter's reason must contain

    def fits(self, letter: dict[str, Any]) -> bool:
        return letter.get("id") in self.ids and self.reason_has in str(letter.get("reason"))


def garbage(rng: random.Random) -> Foreign:
    """One random item for a tier list."""
    kind = rng.choices([k for k, _ in GARBAGE_KINDS], [w for _, w in GARBAGE_KINDS])[0]
    if kind == "random bytes":
        return Foreign(kind, rng.randbytes(rng.randrange(0, 201)), frozenset({None}))
    if kind == "empty":
        return Foreign(kind, b"", frozenset({None}))
    if kind == "deep nesting":
        return Foreign(kind, b"[" * 1200 + b"]" * 1200, frozenset({None}))
    ident = f"foreign-{secrets.token_hex(6)}"
    raw = json.dumps({"id": ident, "client": "@", "v": 1}).encode().replace(b"@", b"\xff")
    return Foreign(kind, raw, frozenset({None, ident}))


def forged(raw: bytes) -> Foreign:
    """A copy of a real task with a changed field: refused as a reused id, naming none."""
    return Foreign("reused id", raw, frozenset({None}), "already open")


def claim_junk(rng: random.Random) -> tuple[str, Foreign]:
    """(key, item) for junk written into the in-flight hash: the reaper letters it by key."""
    key = f"junk-{secrets.token_hex(6)}"
    return key, Foreign("claim junk", rng.randbytes(rng.randrange(0, 201)), frozenset({key}))


def letter_bytes(letter: dict[str, Any]) -> bytes:
    """The exact bytes a dead letter holds."""
    if letter.get("raw_b64") is not None:
        return base64.b64decode(letter["raw_b64"])
    return str(letter.get("raw")).encode("utf-8", "surrogatepass")


class Ledger:
    """What was injected (surely, or maybe: a write whose reply was lost), and the matching
    of dead letters to it. Identical bytes may be injected many times: one letter each."""

    def __init__(self) -> None:
        self.sure: list[Foreign] = []
        self.maybe: list[Foreign] = []

    def add(self, item: Foreign, sure: bool = True) -> None:
        (self.sure if sure else self.maybe).append(item)

    def match(self, letters: list[dict[str, Any]]) -> tuple[Counter[str], list[dict[str, Any]]]:
        """(counts, letters that match no injected item)."""
        waiting: dict[bytes, list[tuple[Foreign, bool]]] = defaultdict(list)
        for item in self.sure:
            waiting[item.raw].append((item, True))
        for item in self.maybe:
            waiting[item.raw].append((item, False))
        counts: Counter[str] = Counter()
        others = []
        for letter in letters:
            candidates = waiting.get(letter_bytes(letter))
            if not candidates:
                others.append(letter)
                continue
            fit = next((c for c in candidates if c[0].fits(letter)), None)
            if fit is None:
                fit = candidates[0]
                counts["foreign letters with a wrong id or reason"] += 1
            candidates.remove(fit)
            counts["foreign dead letters" if fit[1] else "maybe-injected items that landed"] += 1
        counts["foreign items without a letter"] = sum(
            1 for group in waiting.values() for _, sure in group if sure
        )
        return counts, others


def children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (the daemon's workers), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in "ZX":
            found.append(int(stat.parent.name))
    return found


def random_request(rng: random.Random, n: int, poison_rate: float) -> Request:
    tier = rng.choice(TIERS)
    prev = hashlib.sha256(f"chaos-{n}".encode()).hexdigest()
    client = POISON if rng.random() < poison_rate else f"client{rng.randrange(50)}"
    if rng.random() < 0.2:
        return Request(tier, client, "verify", prev, 4, 1, rng.randrange(100), "chaos", n)
    difficulty, count = rng.randrange(0, 13), rng.randrange(1, 3)
    return Request(tier, client, "mine", prev, difficulty, count, None, "chaos", n)


def refusal(exc: redis.RedisError) -> str:
    """How a produce failed: refused (nothing ran) or without a reply (it may have run)."""
    if isinstance(exc, redis.OutOfMemoryError):  # redis-py drops the OOM from its message
        return "produce refused (OOM)"
    if isinstance(exc, redis.ResponseError):
        return f"produce refused ({str(exc).split(' ', 1)[0]})"
    return "produce failed (no reply)"


def meets(result: dict[str, object]) -> bool:
    """Recompute every block of a mine result: each hash right and meeting the difficulty."""
    prev, difficulty = str(result["prev"]), int(result["difficulty"])  # type: ignore[call-overload]
    for block in result["blocks"]:  # type: ignore[attr-defined]
        digest = hashlib.sha256(f"{prev}{block['nonce']}".encode()).digest()
        if digest.hex() != block["hash"] or int.from_bytes(digest, "big") >> (256 - difficulty):
            return False
        prev = block["hash"]
    return True


#: Report lines that must be 0 for a run to pass.
MUST_BE_ZERO = (
    "lost", "duplicated", "healthy tasks dead-lettered", "wrong results",
    "foreign items without a letter", "foreign letters with a wrong id or reason",
    "other dead letters", "results of foreign items", "failed produces: partial chunks",
)  # fmt: skip


def passed(report: dict[str, object]) -> bool:
    exact = report["foreign dead letters"] == report["foreign items injected"]
    return exact and all(not report.get(k) for k in MUST_BE_ZERO) and report["daemon"] == "running"


def dump(client: redis.Redis, keys: Keyspace, lost: set[str], others: list[dict[str, Any]]) -> None:
    """Where the lost tasks are, and what else is left: for the reproduction."""
    for task_id in sorted(lost)[:10]:
        where = {
            "tasks": client.hget(keys.tasks, task_id),
            "inflight": client.hget(keys.inflight, task_id),
            "queued": [client.zscore(q, task_id) for q in keys.queued_sets],
            "suspects": client.hget(keys.suspects, task_id),
        }
        print(f"lost {task_id}: {where}", file=sys.stderr)
    for letter in others[:10]:
        print(f"other dead letter: {letter}", file=sys.stderr)
    print(f"inflight: {client.hgetall(keys.inflight)}", file=sys.stderr)
    print(f"workers: {client.zrange(keys.workers, 0, -1, withscores=True)}", file=sys.stderr)
    print(f"lists: {[client.lrange(t, 0, 5) for t in keys.tiers]}", file=sys.stderr)
