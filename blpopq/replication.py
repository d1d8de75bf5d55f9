"""``--wait-replicas N``: after a write a failover must not undo, wait until N replicas have it.

Redis replicates asynchronously: a primary acknowledges a write before any replica has it,
and a replica promoted after the primary died has only what reached it. ``WAIT N timeout``
blocks until N replicas acknowledged every write of this connection so far, or the timeout
passed, and says how many did. It makes nothing atomic or consistent (a write not confirmed
is still on the primary, and may or may not reach a replica later); it tells the writer
what is known to be safe, which is what blpopq reports:

- produce waits after each enqueue chunk; a chunk not confirmed by N replicas in
  PRODUCE_TIMEOUT stops the enqueue (exit 3) and ``enqueued K of N`` counts only tasks
  confirmed, so a caller knows which tasks survive a failover.
- workers (and the reaper) wait after each result or dead letter they write (OutcomeWait);
  an outcome not confirmed in OUTCOME_TIMEOUT is warned about (at most once a minute) and
  work goes on: the outcome is written, and stopping the pool would not make it safer.

N = 0, the default, sends no WAIT: no round trip is added to any write.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from .errors import RedisUnavailable
from .protocol import Protocol

log = logging.getLogger(__name__)

#: Seconds one enqueue chunk may wait for its replicas: a chunk is up to --chunk-size tasks
#: (megabytes), which a replica behind a slow link takes a while to copy.
PRODUCE_TIMEOUT = 5.0
#: Seconds one result or dead letter may wait: a worker waits this long before its next
#: task, so a replica that is down costs each write this much (and is warned about).
OUTCOME_TIMEOUT = 1.0
#: Once replicas fell short: seconds between two asks, and how long such an ask waits.
PROBE_EVERY = 5.0
PROBE_TIMEOUT = 0.05
#: Seconds between two warnings about unconfirmed outcomes from one process.
WARN_EVERY = 60.0


class NotReplicated(RedisUnavailable):
    """Fewer replicas than asked confirmed an enqueue chunk: it is on the primary only."""

    def __init__(self, confirmed: int, wanted: int, timeout: float) -> None:
        super().__init__(
            f"only {confirmed} of {wanted} replicas confirmed the enqueue within {timeout:g} s "
            "(--wait-replicas): those tasks are on the primary only, and a failover may lose them"
        )
        self.confirmed, self.wanted = confirmed, wanted
        #: How far the enqueue got (producer.Progress), where the caller attached it.
        self.progress: Any = None


class ReplicaWait:
    """WAIT after each enqueue chunk. ``replicas`` 0: never waits."""

    def __init__(self, replicas: int, timeout: float = PRODUCE_TIMEOUT) -> None:
        self.replicas = replicas
        self.timeout = timeout

    def after_enqueue(self, protocol: Protocol) -> None:
        """NotReplicated (exit 3) unless the chunk just written reached enough replicas."""
        if self.replicas:
            got = protocol.wait_for_replicas(self.replicas, self.timeout)
            if got < self.replicas:
                raise NotReplicated(got, self.replicas, self.timeout)


class OutcomeWait:
    """WAIT after each result or dead letter, for one process. ``replicas`` 0: never waits.

    While the replicas answer, each outcome waits for them (at most OUTCOME_TIMEOUT): a
    worker then runs at most one outcome ahead of its replicas, which bounds what a failover
    can undo. Once a wait falls short (a replica down, or none left after a failover),
    waiting longer would only slow the pool, not save anything: the outcomes are written on
    the primary either way. So the process stops waiting, counts what goes unconfirmed,
    warns at most every WARN_EVERY seconds, and every PROBE_EVERY seconds asks again with a
    PROBE_TIMEOUT wait; the first one that is answered resumes waiting."""

    def __init__(
        self,
        replicas: int,
        timeout: float = OUTCOME_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.replicas = replicas
        self.timeout = timeout
        self._clock = clock
        self._short_since: float | None = None  # the last wait that fell short (None: none)
        self._warned_at: float | None = None
        self.unconfirmed = 0  # outcomes not confirmed since the last warning

    def after_outcome(self, protocol: Protocol) -> bool:
        """Wait for the outcome just written, as the class says; True when confirmed."""
        if not self.replicas:
            return True
        now = self._clock()
        if self._short_since is not None and now - self._short_since < PROBE_EVERY:
            return self._unconfirmed(None, now)
        timeout = self.timeout if self._short_since is None else PROBE_TIMEOUT
        got = protocol.wait_for_replicas(self.replicas, timeout)
        if got >= self.replicas:
            if self._short_since is not None:
                log.info("%d replicas confirm outcomes again (--wait-replicas)", got)
            self._short_since = None
            return True
        self._short_since = self._clock()
        return self._unconfirmed(got, now)

    def _unconfirmed(self, got: int | None, now: float) -> bool:
        self.unconfirmed += 1
        if self._warned_at is None or now - self._warned_at >= WARN_EVERY:
            seen = "no wait (replicas short)" if got is None else f"{got} of {self.replicas}"
            log.warning(
                "outcomes not confirmed by %d replicas (--wait-replicas; last: %s): %d "
                "outcome(s) on the primary only, which a failover may lose; working on, "
                "asking again every %g s (next warning in %g s at most)",
                self.replicas,
                seen,
                self.unconfirmed,
                PROBE_EVERY,
                WARN_EVERY,
            )
            self._warned_at, self.unconfirmed = now, 0
        return False
