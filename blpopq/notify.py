"""The sd_notify protocol, spoken directly: systemd's readiness, status and watchdog messages.

A ``Type=notify`` unit gets ``NOTIFY_SOCKET`` in its environment: the address of a datagram
socket where the service reports ``READY=1``, ``STATUS=...``, ``STOPPING=1`` and
``WATCHDOG=1``, one datagram per report, newline-separated ``KEY=value`` lines (see
sd_notify(3)). That is a few lines of stdlib socket code, so there is no dependency on
libsystemd or a binding for it. Without ``NOTIFY_SOCKET`` every method does nothing, so the
daemon behaves the same under any other supervisor or in a terminal.

Sending is best effort and never raises: the service must keep working if systemd (or a
test) stopped listening. Failures are logged at debug level only.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def socket_address(value: str) -> str | None:
    """The AF_UNIX address named by ``NOTIFY_SOCKET``: a path, or an abstract name for '@...'.

    None for anything else (systemd 253+ may also offer ``vsock:``, which we do not speak)."""
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def watchdog_interval(
    environ: Mapping[str, str] | None = None, pid: int | None = None
) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings: half of ``WATCHDOG_USEC``, as sd_watchdog_enabled(3)
    advises, or None when no watchdog is asked of this process.

    ``WATCHDOG_PID``, when set, names the process the watchdog is meant for; any other process
    (a child that inherited the environment) must not ping, so it gets None too."""
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    target = env.get("WATCHDOG_PID")
    if target:
        try:
            if int(target) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    return usec / 2_000_000


class Notifier:
    """Reports to the service manager at ``address`` (None: a no-op notifier)."""

    def __init__(self, address: str | None, watchdog_interval: float | None = None) -> None:
        self.address = address
        #: How often to send watchdog(); None when no watchdog is configured (or no socket).
        self.watchdog_interval = watchdog_interval if address is not None else None
        self._last_status: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        value = env.get("NOTIFY_SOCKET", "")
        address = socket_address(value) if value else None
        if value and address is None:
            log.debug("NOTIFY_SOCKET=%r is not a unix socket address: not notifying", value)
        return cls(address, watchdog_interval(env))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def ready(self, status: str | None = None) -> bool:
        """Startup is complete (``Type=notify`` units count as started from here)."""
        return self.notify("READY=1", *self._status_lines(status))

    def status(self, text: str) -> bool:
        """One line for ``systemctl status``. A text equal to the last one sent is not resent,
        so callers may report on every turn of a loop and pay only for changes."""
        if text == self._last_status:
            return True
        return self.notify(*self._status_lines(text))

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown has begun (systemd then waits up to TimeoutStopSec= for the exit)."""
        return self.notify("STOPPING=1", *self._status_lines(status))

    def watchdog(self) -> bool:
        """Still healthy: each ping must come within ``WatchdogSec=`` of the previous one."""
        return self.notify("WATCHDOG=1")

    def notify(self, *lines: str) -> bool:
        """Send ``KEY=value`` lines as one datagram; True if it was sent (or nothing to do)."""
        if self.address is None or not lines:
            return True
        message = "\n".join(lines).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message, self.address)
        except OSError as exc:
            log.debug("sd_notify %r failed: %s", lines, exc)
            return False
        return True

    def _status_lines(self, status: str | None) -> list[str]:
        if status is None:
            return []
        self._last_status = status
        return ["STATUS=" + " ".join(status.splitlines())]
