"""A worker's heartbeat: the thread that renews its lease and, in turn, runs the reaper.

A thread of the worker process (not the supervisor), so that a stopped or frozen process stops
beating while a long search, which releases the GIL or holds it in short slices, keeps beating.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import redis

from .config import Settings
from .connection import make_client
from .protocol import Protocol
from .recovery import recover
from .redis_errors import Kind, classify
from .replication import OutcomeWait

log = logging.getLogger(__name__)


class Heartbeat:
    """A thread that renews this worker's lease and, when no one else has lately, runs the
    reaper. A thread (not the supervisor) so that a stopped or frozen process stops beating,
    while a long search holding the GIL in short slices keeps beating."""

    def __init__(
        self,
        settings: Settings,
        worker_id: str,
        declared_dead: threading.Event,
        kernel: str = "unknown",
    ) -> None:
        self.settings = settings
        self.worker_id = worker_id
        self.declared_dead = declared_dead
        self.kernel = kernel  # recorded on join: `blpopq status` shows what each worker runs
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._replicas = OutcomeWait(settings.wait_replicas)  # reaper's letters

    def join(self, protocol: Protocol) -> None:
        """Register (or renew) the lease on the main connection, then start beating."""
        if self._thread is None:
            protocol.heartbeat(
                self.worker_id, "join", self.settings.lease, self._gap, kernel=self.kernel
            )
            self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
            self._thread.start()

    def leave(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(self.settings.socket_timeout)
        if self.declared_dead.is_set():
            return
        with contextlib.suppress(redis.RedisError), self._client() as client:
            Protocol(client, self.settings.keys).heartbeat(self.worker_id, "leave", 0)

    def _client(self) -> redis.Redis:
        return make_client(
            self.settings.url, self.settings.heartbeat_interval, namespace=self.settings.namespace
        )

    def _run(self) -> None:
        with self._client() as client:
            protocol = Protocol(client, self.settings.keys)
            while not self._stopped.wait(self.settings.heartbeat_interval):
                if not self._guarded(self._beat, protocol):
                    log.error("declared dead by the reaper (lease ran out): stopping")
                    self.declared_dead.set()
                    return
                # Apart from the beat: a beat refused (a full Redis, say) must not stop the
                # reaper, which may be what frees the room.
                self._guarded(self._maybe_reap, protocol)

    def _beat(self, protocol: Protocol) -> bool:
        return protocol.heartbeat(self.worker_id, "beat", self.settings.lease, self._gap)

    @staticmethod
    def _guarded(step: Callable[[Protocol], bool | None], protocol: Protocol) -> bool:
        """Run one step of the beat; False only when it says so (declared dead): any failure
        is logged and passes, since a heartbeat thread that died would get us declared dead."""
        try:
            return step(protocol) is not False
        except redis.RedisError as exc:
            if classify(exc) is Kind.REFUSED:  # an ACL without a command: an operator's to fix
                log.error("heartbeat or reaper step refused by Redis: %s", exc)
            else:
                log.debug("heartbeat step failed: %s", exc)
        except Exception:  # noqa: BLE001 - see the docstring
            log.exception("heartbeat or reaper pass failed; beating on")
        return True

    def _maybe_reap(self, protocol: Protocol) -> None:
        s = self.settings
        if protocol.try_lock_reaper(self.worker_id, s.reaper_period):
            recover(
                protocol, s.orphan_grace, s.max_deaths, self.worker_id, self._gap, self._replicas
            )

    @property
    def _gap(self) -> float:
        """The longest time between two beats or passes of a live pool: a beat interval
        (each worker beats once per interval) plus a reaper period."""
        return self.settings.heartbeat_interval + self.settings.reaper_period
