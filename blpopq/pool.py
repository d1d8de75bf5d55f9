"""A worker pool that lives as long as one call: ``blpopq run``'s Redis and daemon.

``redis_for_run`` gives the configured Redis, or a private embedded one; ``daemon_process``
runs the Supervisor in a forked child for the duration of a ``with`` block. Both end with
their parent even if it is SIGKILLed (lifeline.py), so a killed ``run`` leaves nothing behind.
No printing and no exit codes here: the CLI decides those.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import sys
from collections.abc import Iterator

from .config import Settings
from .embedded import RedisServer
from .lifeline import Lifeline, require_main_thread
from .supervisor import Supervisor

log = logging.getLogger(__name__)

#: Seconds over the grace period and a BLPOP that the daemon may take to stop before a kill.
_STOP_MARGIN = 15.0


@contextlib.contextmanager
def redis_for_run(settings: Settings) -> Iterator[str]:
    """The configured Redis, or a private embedded one that lives as long as the run: it gets
    SIGTERM if we die (Linux), and its directory goes at the next start (everywhere)."""
    if settings.redis_url:
        yield settings.redis_url
        return
    with RedisServer(die_with_parent=True) as server:
        log.info("embedded redis-server %s at %s", server.binary, server.url)
        yield server.url


@contextlib.contextmanager
def daemon_process(settings: Settings) -> Iterator[None]:
    """The worker pool in a child process (its own signal handling), stopped on exit, or by
    its lifeline if we die first: the same SIGTERM, so it stops its workers gracefully."""
    require_main_thread("the daemon")
    lifeline = Lifeline()
    process = multiprocessing.get_context("fork").Process(
        target=_daemon_main, args=(settings, lifeline), name="blpopq-daemon"
    )
    process.start()
    try:
        yield
    finally:
        process.terminate()  # SIGTERM: the pool's graceful stop
        process.join(settings.grace + settings.block_timeout + _STOP_MARGIN)
        if process.is_alive():
            process.kill()
            process.join()
        lifeline.close()


def _daemon_main(settings: Settings, lifeline: Lifeline) -> None:
    lifeline.hold(deadline=None)  # the supervisor bounds its own stop (and kills stragglers)
    sys.exit(Supervisor(settings).run())
