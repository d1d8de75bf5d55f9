"""The daemon: N worker processes, restarted when they die, stopped in two stages.

Signal handlers only record what arrived (logging or locking inside one can deadlock); a
self-pipe wakes the main loop, which does the work. Workers ignore SIGINT and take SIGTERM
from us only, so a Ctrl-C in a terminal, or systemd with KillMode=mixed, reaches each worker
once. First TERM/INT: workers stop taking, finish their task within the grace period or put
it back at the head of its tier. Second: we forward it again and workers put tasks back now.
Under systemd (Type=notify) the same loop reports readiness and status and feeds the watchdog
(notify.py); without NOTIFY_SOCKET that costs nothing.

Workers hold a lifeline to us (lifeline.py): if we die, even by SIGKILL, each gets one TERM,
the same graceful stop, and exits at the latest when we would have killed it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

import redis

from . import lifeline
from .backoff import Backoff
from .config import Settings
from .connection import make_client
from .errors import EXIT_REDIS_REFUSED
from .identity import WorkerId
from .kernels import fallback_note, select_kernel
from .metrics import Endpoint, start_endpoint
from .notify import Notifier
from .protocol import Protocol
from .recovery import recover
from .replication import OutcomeWait
from .words import plural
from .worker import worker_process_main

log = logging.getLogger(__name__)

#: A worker that dies sooner than this after its start counts as crash-looping (backoff grows).
_STABLE_AFTER = 10.0
#: Extra time over the grace period before a worker that ignores TERM is killed.
_KILL_MARGIN = 5.0


@dataclass
class _Slot:
    index: int
    backoff: Backoff
    process: BaseProcess | None = None
    started: float = 0.0
    restart_at: float = 0.0
    ready: Any = field(default=None)
    worker: WorkerId | None = None  # of the process now in the slot


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        notifier: Notifier | None = None,
        on_worker_started: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self._notifier = notifier or Notifier.from_environ()
        #: Told each worker's id as it starts (`run` learns which results its own pool wrote).
        self._on_worker_started = on_worker_started
        self._restarts = 0
        self._watchdog_due = 0.0
        self._context = multiprocessing.get_context("fork")
        self._lifeline: lifeline.Lifeline | None = None  # made in run(), held by every worker
        self._signals: list[int] = []
        self._slots = [
            _Slot(i, Backoff(settings.backoff_max)) for i in range(settings.worker_count)
        ]
        self._announced_ready = False
        self._metrics = Endpoint()
        self._refused: int | None = None  # set when a worker found Redis refusing us
        self._replicas = OutcomeWait(settings.wait_replicas)  # reaper's letters

    # --- public ------------------------------------------------------------------------------
    def run(self) -> int:
        """Run until stopped by a signal (or request_stop). Returns the exit status."""
        self._metrics = start_endpoint(self.settings)  # before any fork: workers inherit it
        note = fallback_note(self.settings.kernel)  # said once, not by every worker
        if note:
            log.warning("%s", note)
        wake_read, wake_write = socket.socketpair()
        wake_write.setblocking(False)
        previous = self._install_signal_handlers(wake_write.fileno())
        line = self._lifeline = lifeline.Lifeline()
        try:
            for slot in self._slots:
                self._start(slot)
            self._supervise(wake_read)
            return self._shut_down(wake_read)
        finally:
            self._restore_signal_handlers(previous)
            line.close()  # every worker has been joined (or killed) by now
            wake_read.close()
            wake_write.close()
            self._metrics.close()

    def request_stop(self) -> None:
        """Ask for a graceful stop as if SIGTERM arrived (for in-process users like `run`)."""
        os.kill(os.getpid(), signal.SIGTERM)

    @property
    def pids(self) -> list[int]:
        return [s.process.pid for s in self._slots if s.process and s.process.pid]

    # --- signals -----------------------------------------------------------------------------
    def _install_signal_handlers(self, wake_fd: int) -> dict[int, Any]:
        def record(signum: int, frame: object) -> None:
            self._signals.append(signum)

        previous: dict[int, Any] = {
            s: signal.signal(s, record) for s in (signal.SIGTERM, signal.SIGINT)
        }
        previous[-1] = signal.set_wakeup_fd(wake_fd, warn_on_full_buffer=False)
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        signal.set_wakeup_fd(previous.pop(-1))
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    # --- running -----------------------------------------------------------------------------
    def _start(self, slot: _Slot) -> None:
        lifeline.require_main_thread("a worker")
        # Block TERM/INT across fork so a child cannot run our handler before installing its own.
        blocked = {signal.SIGTERM, signal.SIGINT}
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        token = WorkerId.new(self.settings.host, 0).token  # drawn here: we must know the id
        try:
            slot.ready = self._context.Event()
            slot.process = self._context.Process(
                target=_child_main,
                args=(self.settings, slot.ready, self._lifeline, self._stop_deadline(), token),
                name=f"blpopq-worker-{slot.index}",
            )
            slot.process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        slot.started = time.monotonic()
        pid = slot.process.pid or 0
        slot.worker = WorkerId.new(self.settings.host, pid, token)
        log.info("worker %d started (pid %s) as %s", slot.index, pid, slot.worker.key)
        if self._on_worker_started is not None:
            self._on_worker_started(slot.worker.shown)

    def _supervise(self, wake: socket.socket) -> None:
        while not self._signals and self._refused is None:
            sentinels = [s.process.sentinel for s in self._slots if s.process is not None]
            timeout = self._next_timeout()
            multiprocessing.connection.wait([*sentinels, wake], timeout=timeout)
            _drain(wake)
            self._reap_and_restart()
            self._announce_ready()
            self._report()

    def _next_timeout(self) -> float:
        waiting = [s.restart_at for s in self._slots if s.process is None]
        pending_ready = not self._announced_ready
        soonest = min(waiting, default=time.monotonic() + 1.0)
        timeout = max(0.0, soonest - time.monotonic())
        if self._notifier.watchdog_interval is not None:
            timeout = min(timeout, max(0.0, self._watchdog_due - time.monotonic()))
        return min(timeout, 0.05) if pending_ready else timeout

    def _reap_and_restart(self) -> None:
        now = time.monotonic()
        for slot in self._slots:
            if slot.process is not None and not slot.process.is_alive():
                code, pid, worker = slot.process.exitcode, slot.process.pid, slot.worker
                slot.process.join()
                slot.process = slot.worker = None
                if code == EXIT_REDIS_REFUSED:
                    # Permanent (NOPERM, a wrong password, ...): every restart would fail the
                    # same way, so the whole pool stops with the worker's code for systemd.
                    log.error("worker %d: Redis refuses what blpopq needs; stopping", slot.index)
                    self._refused = code
                    return
                self._restarts += 1
                charged = False
                if pid is not None and worker is not None:
                    self._metrics.worker_exited(pid)
                    charged = self._report_death(pid, worker)
                if charged or now - slot.started >= _STABLE_AFTER:
                    # A death counted against the task it held ends by --max-deaths: waiting
                    # longer at each would let a few poison tasks at a tier's head hold
                    # every worker for minutes. The backoff is for deaths with no task.
                    slot.backoff.reset()
                delay = slot.backoff.next_delay()
                slot.restart_at = now + delay
                log.warning(
                    "worker %d exited with status %s; restarting in %.1f s", slot.index, code, delay
                )
            if slot.process is None and now >= slot.restart_at:
                self._start(slot)

    def _report_death(self, pid: int, worker: WorkerId) -> bool:
        """Tell Redis now, so the task the worker held is recovered at once, not when its
        lease runs out. Best effort: if Redis is away, the lease expiry still catches it.
        True when the pass recovered a task (put back with the death counted, or
        dead-lettered): the death was that task's."""
        settings = self.settings
        try:
            with make_client(settings.url, 5.0, namespace=settings.namespace) as client:
                protocol = Protocol(client, settings.keys)
                protocol.heartbeat(worker.key, "leave", 0)
                reaper = f"supervisor:{settings.host}:{os.getpid()}"
                done = recover(
                    protocol, settings.orphan_grace, settings.max_deaths, reaper,
                    replicas=self._replicas,
                )  # fmt: skip
                return done.requeued + done.dead_lettered > 0
        except redis.RedisError as exc:
            log.warning("could not report the death of worker pid %d: %s", pid, exc)
        except Exception:  # noqa: BLE001 - the pool must outlive any one bad item
            log.exception("reporting the death of worker pid %d failed: left to its lease", pid)
        return False

    def _announce_ready(self) -> None:
        if self._announced_ready:
            return
        if all(s.ready is not None and s.ready.is_set() for s in self._slots):
            self._announced_ready = True
            kernel = select_kernel(self.settings.kernel).name
            ready = plural(len(self._slots), "worker")
            log.info("ready: %s waiting for work (kernel %s)", ready, kernel)
            self._notifier.ready(self._status_text())

    def _report(self) -> None:
        """For systemd, when it listens: a status line when it changes, and a watchdog ping
        per interval while the pool is alive or coming back. Local datagrams, no Redis."""
        if not self._notifier.enabled:
            return
        self._notifier.status(self._status_text())
        interval = self._notifier.watchdog_interval
        now = time.monotonic()
        if interval is not None and now >= self._watchdog_due:
            self._watchdog_due = now + interval
            if self._healthy(now):
                self._notifier.watchdog()

    def _healthy(self, now: float) -> bool:
        """A worker is alive, or one is due back within the backoff cap. Short of that (or if
        this loop stops turning) the pings stop and systemd restarts the unit."""
        return any(
            s.process.is_alive()
            if s.process is not None
            else s.restart_at - now <= self.settings.backoff_max
            for s in self._slots
        )

    def _status_text(self) -> str:
        n = len(self._slots)
        if not self._announced_ready:
            connected = sum(1 for s in self._slots if s.ready is not None and s.ready.is_set())
            return f"starting: {connected} of {plural(n, 'worker')} connected"
        restarts = plural(self._restarts, "restart")
        return f"{len(self._alive())} of {plural(n, 'worker')} alive, {restarts}"

    # --- stopping ----------------------------------------------------------------------------
    def _shut_down(self, wake: socket.socket) -> int:
        log.info("stopping: finishing running tasks (grace %.1f s)", self.settings.grace)
        self._notifier.stopping(
            f"stopping: finishing running tasks (grace {self.settings.grace:g} s)"
        )
        self._forward(signal.SIGTERM)
        forwarded = 1
        self._unblock_idle_workers()
        deadline = time.monotonic() + self._stop_deadline()
        while time.monotonic() < deadline:
            # Checked before waiting: two signals that arrived together (``blpopq run`` on a
            # timeout sends both) left no wake-up byte for the wait below.
            if len(self._signals) > forwarded and forwarded < 2:
                log.info("second signal: putting running tasks back now")
                self._notifier.status("stopping: putting running tasks back now")
                self._forward(signal.SIGTERM)
                forwarded = 2
                deadline = min(
                    deadline, time.monotonic() + self.settings.block_timeout + _KILL_MARGIN
                )
            # One snapshot per turn: workers that exit between two looks must not leave us
            # waiting on no sentinel at all until the deadline.
            alive = self._alive()
            if not alive:
                break
            sentinels = [p.sentinel for p in alive]
            multiprocessing.connection.wait([*sentinels, wake], timeout=deadline - time.monotonic())
            _drain(wake)
        status = 0
        for process in self._alive():
            log.error("worker pid %s did not stop in time: killing it", process.pid)
            process.kill()
            status = 1
        for slot in self._slots:
            if slot.process is not None:
                slot.process.join()
        log.info("stopped")
        return self._refused or status

    def _stop_deadline(self) -> float:
        """How long a stopping worker may take before we kill it (see _shut_down)."""
        return self.settings.grace + self.settings.block_timeout + _KILL_MARGIN

    def _unblock_idle_workers(self) -> None:
        """Idle workers would notice the stop only when BLPOP times out; wake them now.
        Best effort: CLIENT may be disabled on managed Redis, and then they wait it out."""
        workers = [s.worker.key for s in self._slots if s.worker and s.process in self._alive()]
        try:
            client = make_client(self.settings.url, 5.0, namespace=self.settings.namespace)
            with contextlib.closing(client):
                Protocol(client, self.settings.keys).unblock(workers)
        except redis.RedisError as exc:
            log.debug("could not unblock idle workers: %s", exc)

    def _forward(self, signum: int) -> None:
        for process in self._alive():
            if process.pid:
                os.kill(process.pid, signum)

    def _alive(self) -> list[BaseProcess]:
        return [s.process for s in self._slots if s.process is not None and s.process.is_alive()]


def _drain(wake: socket.socket) -> None:
    wake.setblocking(False)
    try:
        while wake.recv(512):
            pass
    except BlockingIOError:
        pass


def _child_main(
    settings: Settings, ready: Any, line: lifeline.Lifeline, deadline: float, token: str
) -> None:
    signal.set_wakeup_fd(-1)  # the parent's self-pipe is not ours
    line.hold(deadline)  # first: the supervisor may die at any moment from now on
    worker_process_main(settings, ready.set, token)
