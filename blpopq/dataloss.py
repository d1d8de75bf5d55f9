"""Noticing a Redis that came back empty, and naming it as the cause of what follows.

A Redis restarted without persistence (no RDB, no AOF), or flushed, has lost every queued and
running task, and nothing can bring them back. A worker does not see that directly. It sees
what follows from it: its lease is gone, so it is "declared dead", and its claim is gone, so
the outcome it was about to write is "fenced off". Both lines are true, but neither names the
cause. This module logs one ERROR line that does.

How: each worker process keeps the server's ``run_id`` (INFO server; every redis-server start
gets a new one) from the connection it last made. On a new connection, or when it is told it
is declared dead, it asks again. A different run_id, together with none of the namespace's
bookkeeping keys left (the sessions every worker writes when it connects, the position and
results counters, the tier sequences, the open-task registry), means the data did not survive.
A different run_id with those keys still there is a restart that kept its data, or a
failover, and needs no comment.

This is a diagnosis, not part of the protocol: it only reads, and a Redis error here (INFO
refused by an ACL, a dropped connection) just means it has nothing to say this time.
"""

from __future__ import annotations

import logging

import redis

from .config import Settings
from .connection import mask_url
from .protocol import Protocol

log = logging.getLogger(__name__)


class DataLossWatch:
    """One per worker process: ``check`` whenever it talks to a Redis it may not know yet."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._run_id: str | None = None

    def check(self, protocol: Protocol) -> bool:
        """True, after logging the ERROR line, if this server is a new one that lost the
        namespace's data since the last check."""
        previous = self._run_id
        try:
            run_id = protocol.server_run_id()
            changed = previous is not None and run_id != previous
            lost = changed and not protocol.has_bookkeeping()
        except redis.RedisError:
            return False
        self._run_id = run_id
        if lost:
            log.error(
                "Redis at %s lost its data: it restarted (run_id %.8s -> %.8s) without "
                "blpopq's keys of namespace %s, so every task queued or running there before "
                "the restart was lost and must be produced again (configure RDB or AOF "
                "persistence to keep them); workers declared dead or outcomes fenced off now "
                "follow from this loss",
                mask_url(self.settings.url),
                previous,
                run_id,
                self.settings.namespace,
            )
        return lost
