"""One worker process: take work by priority, run it, settle exactly one outcome.

The loop never exits on a bad task (it becomes a dead letter) nor on a lost connection
(it reconnects with backoff); it exits when asked to stop. Stopping is two-stage: the
first request lets the running task finish within the grace period, then puts it back at
the head of its tier; a second request puts it back at once.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from .config import Settings
from .connection import make_client
from .messages import DeadLetter, DecodeError, Task, peek_identity
from .pow import Cancelled
from .protocol import Protocol, Taken
from .runner import run_task

log = logging.getLogger(__name__)


class StopFlag:
    """Set from signal handlers (which must do nothing else), read by the loop and the kernel."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.requested_at: float | None = None
        self.hard = False

    @property
    def requested(self) -> bool:
        return self.requested_at is not None

    def request(self) -> None:
        if self.requested_at is None:
            self.requested_at = time.monotonic()
        else:
            self.hard = True

    def abort_running_task(self) -> bool:
        """True once a running task should be given up: second request, or grace spent."""
        if self.requested_at is None:
            return False
        return self.hard or time.monotonic() - self.requested_at >= self.grace


@dataclass(frozen=True)
class _Outcome:
    """A settle waiting to be written; kept across reconnects so a result is not dropped."""

    kind: str  # "result" | "dead" | "requeue"
    taken: Taken
    task_id: str
    value: str


class Backoff:
    """Exponential backoff from 0.1 s up to ``cap``."""

    def __init__(self, cap: float) -> None:
        self.cap = cap
        self.failures = 0

    def next_delay(self) -> float:
        self.failures += 1
        return float(min(self.cap, 0.1 * 2 ** (self.failures - 1)))

    def reset(self) -> None:
        self.failures = 0


def worker_identity(pid: int) -> str:
    """host:pid, the ``worker`` of results and the owner of claims."""
    return f"{socket.gethostname()}:{pid}"


class Worker:
    def __init__(self, settings: Settings, stop: StopFlag, worker_id: str | None = None) -> None:
        self.settings = settings
        self.stop = stop
        self.worker_id = worker_id or worker_identity(os.getpid())
        self._pending: _Outcome | None = None

    def serve(self, on_ready: Callable[[], None] = lambda: None) -> None:
        """Serve until stopped. Connection failures are logged and retried with backoff."""
        backoff = Backoff(self.settings.backoff_max)
        while not self.stop.requested or self._pending is not None:
            name = self.settings.keys.worker_client_name(self.worker_id)
            client = make_client(self.settings.url, self.settings.socket_timeout, name)
            try:
                protocol = Protocol(client, self.settings.keys)
                client.ping()
                on_ready()
                backoff.reset()
                self._serve(protocol)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if self.stop.hard:
                    self._log_abandoned()
                    return
                delay = backoff.next_delay()
                log.warning("Redis connection lost (%s); retrying in %.1f s", exc, delay)
                self._sleep_unless_stopped(delay)
            finally:
                client.close()

    def _serve(self, protocol: Protocol) -> None:
        while True:
            if self._pending is not None:
                self._settle(protocol, self._pending)
            if self.stop.requested:
                return
            taken = protocol.take(self.worker_id)
            if taken is None:
                popped = protocol.block(self.settings.block_timeout)
                if popped is None:
                    continue
                taken = protocol.claim(self.worker_id, *popped)
            self._pending = self._handle(taken)

    def _handle(self, taken: Taken) -> _Outcome:
        try:
            task = Task.from_json(taken.raw)
        except DecodeError as exc:
            return self._dead_letter(taken, str(exc))
        try:
            result = run_task(
                task,
                position=taken.position,
                worker=self.worker_id,
                max_attempts=self.settings.max_attempts,
                should_stop=self.stop.abort_running_task,
            )
        except Cancelled:
            log.info("stopping: task %s goes back to the head of %s", task.id, taken.tier.value)
            return _Outcome("requeue", taken, task.id, taken.raw)
        log.debug("task %s %s at position %d", task.id, result.status, taken.position)
        return _Outcome("result", taken, task.id, result.to_json())

    def _dead_letter(self, taken: Taken, reason: str) -> _Outcome:
        task_id, batch = peek_identity(taken.raw)
        log.warning("dead-lettering task %s from %s: %s", task_id, taken.tier.value, reason)
        letter = DeadLetter(
            reason=reason,
            raw=taken.raw,
            id=task_id,
            batch=batch,
            tier=taken.tier.value,
            worker=self.worker_id,
            at=time.time(),
        )
        return _Outcome("dead", taken, task_id or "", letter.to_json())

    def _settle(self, protocol: Protocol, outcome: _Outcome) -> None:
        taken = outcome.taken
        if outcome.kind == "dead" and not taken.claimed:
            protocol.dead_letter_unclaimed(outcome.value)
            written = True
        elif outcome.kind == "requeue":
            written = protocol.requeue(outcome.task_id, taken.position, taken.tier, outcome.value)
        elif outcome.kind == "dead":
            written = protocol.settle_dead(outcome.task_id, taken.position, outcome.value)
        else:
            written = protocol.settle_result(outcome.task_id, taken.position, outcome.value)
        if not written:
            # Fenced off: the claim was settled already (a retry after a lost reply) or was
            # taken over by a newer take of the same task. Either way one outcome exists.
            log.info(
                "outcome of task %s fenced off (claim %d gone)", outcome.task_id, taken.position
            )
        self._pending = None

    def _log_abandoned(self) -> None:
        if self._pending is not None:
            log.error(
                "stopping with Redis unreachable: outcome of task %s not written; its claim "
                "stays in flight",
                self._pending.task_id,
            )

    def _sleep_unless_stopped(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stop.hard and time.monotonic() < deadline:
            time.sleep(min(0.05, seconds))


def install_stop_handlers(stop: StopFlag) -> None:
    """In a worker process: TERM requests a stop (twice: at once); INT is the supervisor's."""

    def on_term(signum: int, frame: object) -> None:
        stop.request()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def worker_process_main(settings: Settings, on_ready: Callable[[], None]) -> None:
    """Entry point of a worker process started by the supervisor."""
    stop = StopFlag(settings.grace)
    install_stop_handlers(stop)
    # The supervisor forks with TERM/INT blocked so that no signal lands before our handlers.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    Worker(settings, stop).serve(on_ready)
