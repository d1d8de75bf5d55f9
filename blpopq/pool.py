"""A worker pool that lives as long as one call: ``blpopq run``'s Redis and daemon.

``redis_for_run`` gives the configured Redis, or a private embedded one; ``daemon_process``
runs the Supervisor in a forked child for the duration of a ``with`` block. Neither is in
the caller's process group, so a terminal's Ctrl-C reaches only the caller, which decides how
to stop them (the pool first, its Redis last). Both end with
their parent even if it is SIGKILLed (lifeline.py), so a killed ``run`` leaves nothing behind.
No printing and no exit codes here: the CLI decides those.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from .config import Settings
from .embedded import RedisServer
from .lifeline import Lifeline, require_main_thread
from .supervisor import Supervisor

log = logging.getLogger(__name__)

#: Seconds over the grace period and a BLPOP that the daemon may take to stop before a kill.
_STOP_MARGIN = 15.0
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def redis_for_run(settings: Settings) -> Iterator[str]:
    """The configured Redis, or a private embedded one that lives as long as the run: it gets
    SIGTERM if we die (Linux), and its directory goes at the next start (everywhere). It is
    in a session of its own: a terminal's Ctrl-C reaches us, and we stop it last."""
    if settings.redis_url:
        yield settings.redis_url
        return
    with RedisServer(die_with_parent=True, own_session=True) as server:
        log.info("embedded redis-server %s at %s", server.binary, server.url)
        yield server.url


class PoolProcess:
    """The daemon child as ``daemon_process`` yields it: asked to stop, watched until it has,
    and asked which workers it started."""

    def __init__(self, process: BaseProcess, started: Connection) -> None:
        self._process = process
        self._asked = 0  # stop requests sent: 1 graceful, 2 at once
        self._worker_ids: set[str] = set()
        # Read as they come, so that a pool restarting workers never blocks on a full pipe.
        self._reader = threading.Thread(
            target=self._read_ids, args=(started,), name="worker-ids", daemon=True
        )
        self._reader.start()

    def _read_ids(self, started: Connection) -> None:
        with started, contextlib.suppress(EOFError, OSError):  # EOF: the pool has exited
            while True:
                self._worker_ids.add(started.recv_bytes().decode())

    def worker_ids(self) -> set[str]:
        """The ids of the workers this pool has started (restarted ones included): what
        their results name as ``worker``. Complete once the pool has exited."""
        if not self._process.is_alive():
            self._reader.join(5.0)
        return set(self._worker_ids)

    def stop(self, now: bool = False) -> None:
        """The daemon's first SIGTERM: workers finish their task within the grace or put it
        back. With ``now``, also the second request, which puts running tasks back at once.
        That one is a SIGINT (the supervisor treats both alike): two signals of one kind sent
        together may reach it as one."""
        pid = self._process.pid
        if pid is None or not self._process.is_alive():
            return
        if self._asked == 0:
            os.kill(pid, signal.SIGTERM)
            self._asked = 1
        if now and self._asked == 1:
            os.kill(pid, signal.SIGINT)
            self._asked = 2

    def wait(self, timeout: float) -> bool:
        """True once the daemon has exited (waiting at most ``timeout`` seconds)."""
        self._process.join(timeout)
        return not self._process.is_alive()


class _StderrRelay:
    """The daemon's stderr (its workers' too: they inherit it) through a pipe, each line
    handed to ``sink``: a live display on our terminal prints them above itself, where
    direct writes would tear it."""

    def __init__(self, sink: Callable[[str], None]) -> None:
        self._sink = sink
        self.read_fd, self.write_fd = os.pipe()
        self._thread = threading.Thread(target=self._pump, name="stderr-relay", daemon=True)

    def in_child(self) -> None:
        os.dup2(self.write_fd, 2)
        os.close(self.write_fd)
        os.close(self.read_fd)

    def start(self) -> None:
        """In the parent, after the fork: only children hold the write end now, so the
        pipe ends when the last of them exits."""
        os.close(self.write_fd)
        self._thread.start()

    def _pump(self) -> None:
        with open(self.read_fd, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                self._sink(line)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


@contextlib.contextmanager
def daemon_process(
    settings: Settings, stderr_lines: Callable[[str], None] | None = None
) -> Iterator[PoolProcess]:
    """The worker pool in a child process (its own signal handling, its own session), stopped
    on exit, or by its lifeline if we die first: the same SIGTERM, so it stops its workers
    gracefully. The caller may stop it sooner through the handle. With ``stderr_lines``, the
    pool's log lines are handed to it instead of going to our stderr."""
    require_main_thread("the daemon")
    lifeline = Lifeline()
    relay = _StderrRelay(stderr_lines) if stderr_lines is not None else None
    context = multiprocessing.get_context("fork")
    started, started_in_child = context.Pipe(duplex=False)
    process = context.Process(
        target=_daemon_main,
        args=(settings, lifeline, relay, started_in_child),
        name="blpopq-daemon",
    )
    # Blocked across fork, so that nothing reaches the child before it has left our process
    # group and set its own handlers (_daemon_main); a signal for us waits until after start.
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    started_in_child.close()
    if relay is not None:
        relay.start()
    pool = PoolProcess(process, started)
    try:
        yield pool
    finally:
        pool.stop()  # the pool's graceful stop, unless it was asked already
        process.join(settings.grace + settings.block_timeout + _STOP_MARGIN)
        if process.is_alive():
            process.kill()
            process.join()
        lifeline.close()
        if relay is not None:
            relay.join(5.0)  # the last lines, once every child has closed the pipe


def _daemon_main(
    settings: Settings, lifeline: Lifeline, relay: _StderrRelay | None, started: Connection
) -> None:
    # A session of its own: a terminal's Ctrl-C (SIGINT to its foreground process group) is
    # for `run`, which asks the pool to stop once, not twice. A SIGINT that reached us before
    # setsid is pending (blocked by the parent) and SIG_IGN discards it; a SIGTERM from the
    # parent before the Supervisor's handlers exist ends us, before any worker exists.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.setsid()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    if relay is not None:
        relay.in_child()
    lifeline.hold(deadline=None)  # the supervisor bounds its own stop (and kills stragglers)

    def tell(worker_id: str) -> None:
        started.send_bytes(worker_id.encode())

    sys.exit(Supervisor(settings, on_worker_started=tell).run())
