"""What the dashboard shows, read from Redis at most once a second however many browsers
watch: a ``Watcher`` keeps the last reading and hands it to every request that comes within
``MIN_INTERVAL`` of it; the first request after that reads again, the others wait for it.

A reading reuses the commands the terminal tools use: ``blpopq status``'s snapshot (one
MULTI/EXEC), ``blpopq dead list``'s letters, and collect's reader for the results of the
batch produced last (incremental: each reading asks only for results written since the
last). No module here imports the web framework: the numbers are tested on their own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import deadletters, identity, status, timeline
from ..collector import Outcomes
from ..protocol import Protocol

#: Seconds a reading is served before the next one is taken.
MIN_INTERVAL = 1.0
#: Dead letters listed on the page (their count is always given in full).
DEAD_SHOWN = 100
#: The timeline's width in the page, in pixels: what aggregation is measured against.
TIMELINE_PX = 1000


@dataclass(frozen=True)
class Reading:
    """One reading of Redis: its raw parts, before they are put in the page's shape."""

    status: status.Status
    letters: tuple[deadletters.Letter, ...]
    batch: str | None
    results: tuple[Any, ...]  # the batch's Result values read so far


def hosts(workers: Sequence[status.WorkerStatus]) -> list[dict[str, Any]]:
    """Workers grouped by host, hosts by name, each worker as ``status --json`` has it."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for w in workers:
        grouped.setdefault(identity.host_of(w.worker), []).append(
            {
                "worker": w.worker,
                "alive": w.alive,
                "lease_expires_in_s": round(w.lease_expires_in, 3),
                "kernel": w.kernel,
                "tasks": list(w.tasks),
            }
        )
    return [{"host": host, "workers": grouped[host]} for host in sorted(grouped)]


def page_state(reading: Reading, actions: bool) -> dict[str, Any]:
    """The JSON the page draws itself from (``/api/state``). Add keys, never rename."""
    letters = reading.letters
    return {
        "status": reading.status.to_dict(),
        "hosts": hosts(reading.status.workers),
        "dead": {
            "count": len(letters),
            "letters": [
                {
                    "handle": letter.handle,
                    "id": letter.id,
                    "tier": letter.tier,
                    "batch": letter.batch,
                    "reason": letter.reason,
                    "at": letter.at,
                }
                for letter in letters[:DEAD_SHOWN]
            ],
        },
        "batch": None
        if reading.batch is None
        else {
            "id": reading.batch,
            "results": len(reading.results),
            "timeline": timeline.to_dict(timeline.build(reading.results, TIMELINE_PX)),
        },
        "actions": actions,
    }


class Watcher:
    """The one reader of Redis behind the dashboard, shared by every request.

    ``state()`` returns the page state of a reading at most ``interval`` seconds old. Readings
    are serialised by a lock: callers that arrive while one is under way wait for it and get
    it, instead of starting their own. ``readings`` counts them (tests check the bound)."""

    def __init__(
        self,
        protocol: Protocol,
        actions: bool = False,
        interval: float = MIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.protocol = protocol
        self.actions = actions
        self.interval = interval
        self.clock = clock
        self.readings = 0
        self._lock = threading.Lock()
        self._state: dict[str, Any] | None = None
        self._taken_at = 0.0
        self._outcomes: Outcomes | None = None

    def state(self) -> dict[str, Any]:
        with self._lock:
            if self._state is None or self.clock() - self._taken_at >= self.interval:
                self._state = page_state(self._read(), self.actions)
                self._taken_at = self.clock()
            return self._state

    def invalidate(self) -> None:
        """Read afresh at the next request (after an action changed Redis)."""
        with self._lock:
            self._state = None

    def _read(self) -> Reading:
        self.readings += 1
        snapshot = status.gather(self.protocol)
        letters = tuple(deadletters.load(self.protocol))
        batch = self.protocol.last_batch()
        if batch is None:
            return Reading(snapshot, letters, None, ())
        if self._outcomes is None or self._outcomes.batch != batch:
            self._outcomes = Outcomes(batch=batch)  # a new batch: read its results from the head
        self._outcomes.refresh(self.protocol)
        return Reading(snapshot, letters, batch, tuple(self._outcomes.results))
