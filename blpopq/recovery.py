"""Giving lost work back: tasks whose worker died, and tasks BLPOP popped but nobody claimed.

The reaper script (``protocol.reap``) decides *which* claims have no live worker; this module
decides *what* happens to each: back to the head of its tier with one more death in its
history, or, after ``max_deaths`` deaths, to the dead-letter list with that history. Each step
is a fenced settle, so two reapers racing, or a reaper and a late worker, write one outcome.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from .messages import DeadLetter, peek_identity
from .protocol import Claim, Protocol

log = logging.getLogger(__name__)

ORPHAN = "orphan"  # the worker name reap.lua gives tasks popped by BLPOP and never claimed


@dataclass(frozen=True)
class Recovered:
    requeued: int = 0
    dead_lettered: int = 0


def recover(protocol: Protocol, orphan_grace: float, max_deaths: int, reaper: str) -> Recovered:
    requeued = dead = 0
    for task_id, claim in protocol.reap(orphan_grace):
        if _recover_one(protocol, task_id, claim, max_deaths, reaper):
            requeued += 1
        else:
            dead += 1
    return Recovered(requeued, dead)


def _recover_one(
    protocol: Protocol, task_id: str, claim: Claim, max_deaths: int, reaper: str
) -> bool:
    """Requeue (True) or dead-letter (False) one claim nobody alive holds."""
    tier, position, raw = claim.tier, claim.position, claim.task
    event = "popped but never claimed" if claim.worker == ORPHAN else "worker died"
    try:
        body = json.loads(raw)
        history = [
            *body.get("history", []),
            {"worker": claim.worker, "event": event, "at": time.time()},
        ]
        body["history"] = history
    except (ValueError, AttributeError, TypeError):
        history, body = [], None
    if body is None or len(history) >= max_deaths:
        reason = (
            f"its worker died {len(history)} times while it ran (limit {max_deaths})"
            if body is not None
            else "a recovered task that is not a JSON object"
        )
        letter = _dead_letter(
            raw if body is None else _dumps(body), task_id, tier.value, reason, reaper
        )
        if protocol.settle_dead(task_id, position, letter):
            log.error("dead-lettered task %s: %s", task_id, reason)
        return False
    if protocol.requeue(task_id, position, tier, _dumps(body)):
        log.warning(
            "task %s back at the head of %s (%s: %s)", task_id, tier.value, event, claim.worker
        )
    return True


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _dead_letter(raw: str, task_id: str, tier: str, reason: str, reaper: str) -> str:
    _, batch = peek_identity(raw)
    return DeadLetter(reason, raw, task_id, batch, tier, reaper, time.time()).to_json()
