"""How a worker process is asked to stop: a flag that signal handlers set and the loop and
the proof-of-work kernel read. Stopping is two-stage: the first request lets the running
task finish within the grace period; a second one (or the grace spent) gives it up at once.
"""

from __future__ import annotations

import signal
import socket
import time


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


def install_stop_handlers(stop: StopFlag) -> None:
    """In a worker process: TERM requests a stop (twice: at once); INT is the supervisor's.

    Two TERMs that arrive while the main thread is inside the native search (GIL released)
    reach Python as ONE handler call, so the handler counts deliveries instead: the C-level
    handler writes one byte per signal to the wakeup fd."""
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)

    def on_term(signum: int, frame: object, _keep: object = writer) -> None:
        try:
            count = reader.recv(64).count(signal.SIGTERM)
        except BlockingIOError:
            count = 0
        for _ in range(max(1, count)):
            stop.request()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
