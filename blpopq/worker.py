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
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from .backoff import Backoff
from .config import Settings
from .connection import make_client
from .dataloss import DataLossWatch
from .early import EarlyStart
from .errors import EXIT_REDIS_REFUSED, RedisRefused
from .heartbeat import Heartbeat
from .identity import WorkerId
from .jsontext import DecodeError
from .kernels import select_kernel
from .messages import Task, unreadable_reason, with_progress
from .metrics import NO_METRICS, Metrics, worker_metrics
from .outcomes import DeadLetter, Result, peek_identity
from .policy import TierOrders
from .pow import Cancelled, Progress
from .protocol import DeclaredDead, Protocol, StaleSession, Taken, TakenKind, safe_text
from .redis_errors import Kind, classify
from .replication import OutcomeWait
from .runner import run_task
from .stopping import StopFlag, install_stop_handlers
from .tiers import Tier
from .words import item_name

log = logging.getLogger(__name__)

#: Exit status of a worker that found itself declared dead (the supervisor restarts it).
EXIT_DECLARED_DEAD = 75


@dataclass(frozen=True)
class _Outcome:
    """A settle waiting to be written; kept across reconnects so a result is not dropped."""

    kind: str  # "result" | "dead" | "requeue"
    taken: Taken
    task_id: str  # for logs
    value: str | bytes


def _offer_enqueue_function(protocol: Protocol) -> None:
    """Load FCALL blpopq_enqueue if it is missing: a Redis restarted without its data has no
    functions, and the daemon loaded them only at its start. A refusal was logged by the
    daemon then (cli/run.py); a worker serves on without it."""
    try:
        protocol.load_library(replace=False)
    except redis.ResponseError as exc:
        log.debug("function library not loaded: %s", exc)


def _fields(task: Task) -> dict[str, str]:
    """The stable log fields of a task (see logs.FIELDS)."""
    return {"task_id": task.id, "tier": task.tier.value, "client": task.client}


class Worker:
    def __init__(
        self,
        settings: Settings,
        stop: StopFlag,
        worker_id: WorkerId | str | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        """``worker_id``: drawn by the supervisor (its token), else drawn here; a plain
        name (tests, tools) is recorded and shown as given."""
        self.settings = settings
        self.metrics = metrics
        self.stop = stop
        if not isinstance(worker_id, str):
            worker_id = worker_id or WorkerId.new(settings.host, os.getpid())
            self.worker_id, self.shown_as = worker_id.key, worker_id.shown
        else:
            self.worker_id = self.shown_as = worker_id
        self.kernel = select_kernel(settings.kernel)
        self.declared_dead = threading.Event()
        self._pending: _Outcome | None = None
        self._popped: tuple[Tier, bytes] | None = None  # BLPOP's reply, until it is claimed
        self._adopted: Taken | None = None  # a claim found after a lost reply, to run next
        self._early: EarlyStart | None = None  # the run begun while the last claim was sent
        self.orders = TierOrders(settings.fairness)  # this process's own draws
        self.data_loss = DataLossWatch(settings)  # names a Redis restarted empty as the cause
        self.replicas = OutcomeWait(settings.wait_replicas)

    def serve(self, on_ready: Callable[[], None] = lambda: None) -> None:
        """Serve until stopped. Connection failures are logged and retried with backoff.

        Raises DeclaredDead when the reaper gave this worker's claims away (its lease ran out
        while it was stopped or cut off): the process must exit and start afresh."""
        heartbeat = Heartbeat(
            self.settings, self.worker_id, self.declared_dead, kernel=self.kernel.name
        )
        backoff = Backoff(self.settings.backoff_max)
        try:
            while not self.stop.requested or self._pending is not None:
                if self._serve_connected(on_ready, heartbeat, backoff):
                    break
        finally:
            heartbeat.leave()
        if self.declared_dead.is_set():
            raise DeclaredDead(f"worker {self.worker_id} was declared dead")

    def _serve_connected(
        self, on_ready: Callable[[], None], heartbeat: Heartbeat, backoff: Backoff
    ) -> bool:
        """One connection's worth of serving; True when the worker is done for good."""
        name = self.settings.keys.worker_client_name(self.worker_id)
        client = make_client(
            self.settings.url,
            self.settings.socket_timeout,
            name,
            namespace=self.settings.namespace,
            pinned=True,  # one thread's: one connection, no pool bookkeeping per command
        )
        try:
            protocol = Protocol(client, self.settings.keys)
            self.data_loss.check(protocol)
            _offer_enqueue_function(protocol)
            heartbeat.join(protocol)
            self._reconcile_claims(protocol)
            on_ready()
            backoff.reset()
            self._serve(protocol)
            return True
        except DeclaredDead:
            self.data_loss.check(protocol)  # a Redis restarted empty forgot every lease
            self.declared_dead.set()
            return True
        except (redis.RedisError, StaleSession) as exc:
            return self._after_failure(exc, backoff)
        finally:
            client.close()

    def _after_failure(self, exc: Exception, backoff: Backoff) -> bool:
        """A failed connection or command: True to stop for good, False to reconnect. Every
        failure that may pass keeps what this worker holds (its outcome, its pop) for later."""
        kind = classify(exc) if isinstance(exc, redis.RedisError) else Kind.TRANSIENT
        if kind is Kind.REFUSED:
            raise RedisRefused(f"Redis refuses what blpopq needs: {exc}") from None
        if self.stop.hard or self.declared_dead.is_set():
            self._log_abandoned()
            return True
        delay = backoff.next_delay()
        if kind is Kind.TRANSIENT:
            log.warning("Redis unavailable (%s); retrying in %.1f s", exc, delay)
        else:
            log.error("unexpected Redis error (%s); retrying in %.1f s", exc, delay)
        self._sleep_unless_stopped(delay)
        return False

    def _serve(self, protocol: Protocol) -> None:
        while not self.declared_dead.is_set():
            pending = self._pending
            if pending is not None and pending.kind == "result" and self._can_take_more():
                # The common case: write the result and take the next task in one call.
                written, taken = protocol.settle_and_take(
                    self.worker_id,
                    pending.taken.key,
                    pending.taken.position,
                    pending.value,
                    self.settings.keep_results,
                    order=self.orders.next(),
                    overdue_after=self.orders.overdue_after,
                )
                self._pending = None
                self._confirm(protocol, written, pending)
                if taken is None:
                    self._block(protocol)
            else:
                if pending is not None:
                    self._settle(protocol, pending)
                if self._popped is None and self._adopted is None and self.stop.requested:
                    return
                taken = self._take(protocol)
            if taken is not None:
                self._pending = self._handle(taken)
        raise DeclaredDead(self.worker_id)

    def _can_take_more(self) -> bool:
        return self._popped is None and self._adopted is None and not self.stop.requested

    def _take(self, protocol: Protocol) -> Taken | None:
        """Run what a reconnect adopted; else claim what BLPOP handed over; else take by
        priority; else wait in BLPOP once.

        ``_popped`` is kept until its claim succeeds, so a connection lost in between only
        delays the claim: the next connection first looks for it (``_reconcile_claims``)."""
        if self._adopted is not None:
            adopted, self._adopted = self._adopted, None
            return adopted
        if self._popped is not None:
            # Claimed with the task started meanwhile (early.py): _handle takes it from there.
            early = EarlyStart(*self._popped, self._run, self._abort_running_task)
            claimed = protocol.claim(self.worker_id, *self._popped, meanwhile=early)
            self._popped, self._early = None, early
            return claimed
        taken = protocol.take(self.worker_id, self.orders.next(), self.orders.overdue_after)
        if taken is None:
            self._block(protocol)
        return taken

    def _block(self, protocol: Protocol) -> None:
        self._popped = protocol.block(self.settings.block_timeout)

    def _reconcile_claims(self, protocol: Protocol) -> None:
        """After a reconnect, settle what a lost reply left unknown, each claim exactly once.

        A new session first, so that no take or claim still on its way from the old
        connection can add a claim after this look. Then each claim of ours is either the
        outcome we are about to write (kept), the claim of the task BLPOP handed us (adopted:
        claiming it again would run it twice), or one whose reply was lost (given back)."""
        protocol.open_session(self.worker_id)
        keep = self._pending.taken.position if self._pending is not None else None
        for key, claim in protocol.claims_of(self.worker_id):
            if claim.position == keep:
                continue
            popped = self._popped
            if popped is not None and (claim.tier, claim.task) == popped:
                self._adopted = claim.as_taken(key)
                self._popped = None
                log.info("adopted task %s: claimed before a lost reply", safe_text(key))
            elif protocol.requeue(key, claim.position, claim.tier, claim.task):
                log.warning("gave back task %s: claimed before a lost reply", safe_text(key))

    def _handle(self, taken: Taken) -> _Outcome:
        early, self._early = self._early, None
        if taken.kind is TakenKind.UNREADABLE:
            return self._dead_letter(taken, unreadable_reason(taken.raw))
        if taken.kind is TakenKind.DUPLICATE:
            task_id, _ = peek_identity(taken.raw)
            reason = f"id {task_id!r} is already open as another task: refused, not run"
            return self._dead_letter(taken, reason, duplicate=True)
        ahead = early.ahead_for(taken) if early is not None else None
        try:
            task = ahead.task if ahead is not None else self._decode(taken)
        except DecodeError as exc:
            return self._dead_letter(taken, str(exc))
        self.metrics.taken(taken.tier.value, task.op)
        if ahead is not None and ahead.result is not None:
            return self._finished(task, taken, ahead.result)  # it ended before the reply
        started = ahead.started if ahead is not None else None
        try:
            result = self._run(task, self._abort_running_task, started, taken.position)
        except Cancelled as stopped:
            return self._put_back(task, taken, stopped.progress)
        return self._finished(task, taken, result)

    @staticmethod
    def _decode(taken: Taken) -> Task:
        """A task that names no id has its claim key as id (take.lua gave it one), and was
        first seen now if it names no enqueue time."""
        return Task.from_json(taken.raw, tier=taken.tier, key=taken.task_id, seen_at=time.time())

    def _run(
        self,
        task: Task,
        should_stop: Callable[[], bool],
        started: float | None = None,
        position: int = 0,
    ) -> Result:
        """Run ``task``; ``position`` 0 while its claim is on the way (early.py)."""
        with self.metrics.busy():
            return run_task(
                task,
                position=position,
                worker=self.shown_as,
                max_attempts=self.settings.max_attempts,
                should_stop=should_stop,
                kernel=self.kernel,
                started_at=started,
            )

    def _put_back(self, task: Task, taken: Taken, progress: Progress) -> _Outcome:
        """A run stopped half-way: back to the head of its tier, with what it found so far."""
        log.info(
            "stopping: task %s goes back to the head of %s (%d of %d blocks kept)",
            task.id,
            taken.tier.value,
            len(progress.blocks),
            task.count,
            extra=_fields(task),
        )
        again = with_progress(taken.raw, progress, task)
        return _Outcome("requeue", taken, task.id, again)

    def _finished(self, task: Task, taken: Taken, result: Result) -> _Outcome:
        self.metrics.finished(result)
        if log.isEnabledFor(logging.DEBUG):  # not even its fields built, task after task
            log.debug(
                "task %s %s at position %d",
                task.id,
                result.status,
                taken.position,
                extra=_fields(task),
            )
        return _Outcome("result", taken, task.id, result.to_json())

    def _abort_running_task(self) -> bool:
        return self.declared_dead.is_set() or self.stop.abort_running_task()

    def _dead_letter(self, taken: Taken, reason: str, duplicate: bool = False) -> _Outcome:
        """The outcome for an item that will not run. A duplicate's letter names no id: the
        id belongs to the open task, whose outcome a reader waiting on it must not mistake."""
        self.metrics.dead_lettered(taken.tier.value)
        letter = DeadLetter.for_item(
            taken.raw, reason, tier=taken.tier.value, worker=self.shown_as, with_id=not duplicate
        )
        log.warning(
            "dead-lettering %s from %s: %s",
            "a copy of an open task" if duplicate else item_name(letter.id),
            taken.tier.value,
            reason,
            extra={"task_id": letter.id, "tier": taken.tier.value},
        )
        return _Outcome("dead", taken, taken.task_id, letter.to_json())

    def _settle(self, protocol: Protocol, outcome: _Outcome) -> None:
        taken = outcome.taken
        if outcome.kind == "requeue":
            written = protocol.requeue(taken.key, taken.position, taken.tier, outcome.value)
        elif outcome.kind == "dead":
            written = protocol.settle_dead(taken.key, taken.position, outcome.value)
        else:
            written = protocol.settle_result(
                taken.key, taken.position, outcome.value, self.settings.keep_results
            )
        self._pending = None
        self._confirm(protocol, written, outcome)

    def _confirm(self, protocol: Protocol, written: bool, outcome: _Outcome) -> None:
        """After a settle: with --wait-replicas, wait for a result or letter written to
        reach the replicas (a warning if not: replication.py)."""
        if written:
            if outcome.kind != "requeue":
                self.replicas.after_outcome(protocol)
            return
        # Fenced off: the claim was settled already (a retry after a lost reply) or was
        # taken over by a newer take of the same task. Either way one outcome exists.
        position = outcome.taken.position
        log.info("outcome of task %s fenced off (claim %d gone)", outcome.task_id, position)

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


def worker_process_main(
    settings: Settings, on_ready: Callable[[], None], token: str | None = None
) -> None:
    """Entry point of a worker process started by the supervisor, which drew ``token``
    (so it knows this worker's id: to report its death, to wake it on stop)."""
    stop = StopFlag(settings.grace)
    install_stop_handlers(stop)
    # The supervisor forks with TERM/INT blocked so that no signal lands before our handlers.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        identity = WorkerId.new(settings.host, os.getpid(), token)
        Worker(settings, stop, identity, worker_metrics(settings)).serve(on_ready)
    except DeclaredDead as exc:
        log.error("%s: exiting so the supervisor starts a fresh worker", exc)
        sys.exit(EXIT_DECLARED_DEAD)
    except RedisRefused as exc:
        log.error("%s: exiting; restarting cannot help until Redis is changed", exc)
        sys.exit(EXIT_REDIS_REFUSED)
