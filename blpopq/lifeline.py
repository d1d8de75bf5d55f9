"""Children that end with their parent: workers with their supervisor, and the daemon and the
embedded redis-server with ``blpopq run``.

A SIGKILLed parent runs no cleanup, so the child must notice on its own; a worker left
running holds its task for ever (its heartbeat keeps the lease alive). The child gets exactly
one SIGTERM, the same graceful stop an operator sends (finish within the grace period or put
the task back), from whichever mechanism works here:

- Linux: ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` right after fork. The kernel sends it when the
  *thread* that forked exits, so parents fork from their main thread only
  (``require_main_thread``). The parent may die before prctl runs, so the child then compares
  ``getppid()`` with the parent's pid and, if it changed, signals itself.
- Elsewhere: a pipe whose write end only the parent holds. A thread blocked reading the other
  end gets EOF when the parent dies (the kernel closes its descriptors), with no polling.

A second TERM would mean "put the task back now", which is why the pipe thread signals only
where prctl is missing. Its other job, everywhere, is a backstop: once the parent is gone no
one kills a child that cannot finish its stop (say, Redis is gone too and a result waits), so
after ``deadline`` seconds the child exits; its claim then expires like any dead worker's.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
#: Exit status of a child that outlived its parent's stop deadline.
EXIT_ORPHANED = 1


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl, looked up once in the parent: the child (and a Popen preexec_fn) should
    only call it, not load libraries between fork and exec."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()


def require_main_thread(what: str) -> None:
    """Refuse to fork from another thread: PR_SET_PDEATHSIG would fire when that thread ends."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError(f"{what} must be started from the main thread (parent-death signal)")


def die_with_parent(parent: int, signum: int = signal.SIGTERM) -> bool:
    """In a child right after fork: ask the kernel for ``signum`` when ``parent`` dies. True if
    armed (Linux); then, if the parent died before we asked, we send ``signum`` ourselves.
    Also used as a Popen preexec_fn: the kernel keeps the setting across exec."""
    if _PRCTL is None or _PRCTL(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:
        os.kill(os.getpid(), signum)
    return True


class Lifeline:
    """Made by the parent before it forks (one for all its children), passed to each child,
    which calls ``hold`` first thing; the parent calls ``close`` once its children are gone."""

    def __init__(self) -> None:
        self.parent = os.getpid()
        # Not inherited across exec (os.pipe is O_CLOEXEC): a redis-server never holds it.
        self._read, self._write = os.pipe()

    def hold(self, deadline: float | None) -> None:
        """In the child: take one SIGTERM when the parent dies, and with ``deadline`` exit that
        many seconds later if still alive."""
        os.close(self._write)  # else our own copy keeps the pipe open and EOF never comes
        armed = die_with_parent(self.parent)
        if armed and deadline is None:
            os.close(self._read)
            return
        watcher = threading.Thread(
            target=self._watch, args=(not armed, deadline), name="lifeline", daemon=True
        )
        watcher.start()

    def _watch(self, send_term: bool, deadline: float | None) -> None:
        while os.read(self._read, 1):  # nothing is ever written: only EOF ends this
            pass
        log.warning("parent process %d died: stopping", self.parent)
        if send_term:
            os.kill(os.getpid(), signal.SIGTERM)
        if deadline is None:
            return
        time.sleep(deadline)  # one deadline, as the parent would have enforced it
        log.error("still running %.1f s after the parent died: exiting", deadline)
        os._exit(EXIT_ORPHANED)

    def close(self) -> None:
        """In the parent, when no child is left."""
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):  # closed already
                os.close(fd)
