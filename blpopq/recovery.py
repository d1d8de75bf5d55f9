"""Giving lost work back: tasks whose worker died, and tasks BLPOP popped but nobody claimed.

The reaper script (``protocol.reap``) decides *which* claims have no live worker; this module
decides *what* happens to each: back to the head of its tier with one more death in its
history, or, after ``max_deaths`` deaths, to the dead-letter list with that history. Each step
is a fenced settle, so two reapers racing, or a reaper and a late worker, write one outcome.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from .jsontext import DecodeError, compact_json, load_json
from .outcomes import DeadLetter
from .protocol import Claim, Protocol, TakenKind, safe_text
from .replication import OutcomeWait
from .words import item_name, plural

log = logging.getLogger(__name__)

ORPHAN = "orphan"  # the worker name reap.lua gives tasks popped by BLPOP and never claimed


@dataclass(frozen=True)
class Recovered:
    requeued: int = 0
    dead_lettered: int = 0


def recover(
    protocol: Protocol,
    orphan_grace: float,
    max_deaths: int,
    reaper: str,
    expected_gap: float | None = None,
    replicas: OutcomeWait | None = None,
) -> Recovered:
    """One reaper pass and what follows from it. ``expected_gap``: the pass is one of the
    reapers' scheduled passes, due at most this long after the last (see Protocol.reap).
    ``replicas``: after a pass that wrote dead letters, wait for them (--wait-replicas)."""
    requeued = dead = 0
    lost = protocol.reap(orphan_grace, expected_gap)
    for (key, record), task in zip(lost, protocol.registered(k for k, _ in lost), strict=True):
        try:
            claim = Claim.from_json(record, task)
        except ValueError as exc:
            dead += _drop_unreadable(protocol, key, record, str(exc), reaper)
            continue
        if _recover_one(protocol, key, claim, max_deaths, reaper):
            requeued += 1
        else:
            dead += 1
    if dead and replicas is not None:
        replicas.after_outcome(protocol)
    return Recovered(requeued, dead)


def _drop_unreadable(protocol: Protocol, key: bytes, record: bytes, why: str, reaper: str) -> int:
    """A claim record nobody can read (written by other code, or damaged): its letter keeps
    the record itself, the only trace of what it held."""
    reason = f"a claim record that cannot be read ({why})"
    letter = DeadLetter.for_item(record, reason, tier=None, worker=reaper, with_id=False)
    letter = replace(letter, id=safe_text(key))
    if protocol.drop_claim(key, record, letter.to_json()):
        log.error("dead-lettered claim %s: %s", safe_text(key), reason)
        return 1
    return 0


def _recover_one(
    protocol: Protocol, key: bytes, claim: Claim, max_deaths: int, reaper: str
) -> bool:
    """Requeue (True) or dead-letter (False) one claim nobody alive holds."""
    tier, position, raw = claim.tier, claim.position, claim.task
    event = "popped but never claimed" if claim.worker == ORPHAN else "worker died"
    kind = claim.as_taken(key).kind
    body = _object(raw) if kind is TakenKind.TASK else None
    history: list[Any] = []
    if body is not None:
        body.setdefault("id", safe_text(key))  # a minimal task keeps the id its take gave it
        earlier = body.get("history")
        history = [*(earlier if isinstance(earlier, list) else []), _death(claim, event)]
        body["history"] = history
    if body is None or len(history) >= max_deaths:
        if body is not None:
            reason = (
                f"its worker died {plural(len(history), 'time')} while it ran (limit {max_deaths})"
            )
        elif kind is TakenKind.DUPLICATE:
            reason = "a copy reusing the id of an open task (its worker died before refusing it)"
        else:
            reason = "a recovered item that is not a task blpopq can read"
        item: bytes | str = raw if body is None else _dumps(body)
        # A copy reusing an open task's id names no id: that id's outcome is the live task's.
        with_id = kind is not TakenKind.DUPLICATE
        letter = DeadLetter.for_item(item, reason, tier=tier.value, worker=reaper, with_id=with_id)
        if protocol.settle_dead(key, position, letter.to_json()):
            name = safe_text(key)  # an item that is not a task is claimed as ~<position>
            what = f"{item_name(None)} ({name})" if name.startswith("~") else item_name(name)
            log.error("dead-lettered %s: %s", what, reason)
        return False
    if protocol.requeue(key, position, tier, _dumps(body)):
        log.warning(
            "task %s back at the head of %s (%s: %s)",
            safe_text(key),
            tier.value,
            event,
            claim.worker,
        )
    return True


def _death(claim: Claim, event: str) -> dict[str, Any]:
    return {"worker": claim.worker, "event": event, "at": time.time()}


def _object(raw: bytes) -> dict[str, Any] | None:
    """The task as a JSON object, or None when it is not one (see messages.load_json)."""
    try:
        body = load_json(raw, "task")
    except DecodeError:
        return None
    return body if isinstance(body, dict) else None


def _dumps(body: dict[str, Any]) -> str:
    return compact_json(body)
