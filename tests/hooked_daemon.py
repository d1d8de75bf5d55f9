"""``blpopq daemon`` with test hooks injected from outside the product.

    python tests/hooked_daemon.py [--pause-after-blpop] [--crash-on-client NAME] -- ARGS...

The fault tests and scripts/chaos.py need a few exact moments: a worker stopped between its
BLPOP and its claim, a task that kills its worker. Production code has no switch for them:
this launcher wraps two functions of blpopq.worker before the supervisor forks its workers
(which inherit the wrapped code), then runs the daemon with ARGS as usual.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Any

from blpopq import worker
from blpopq.cli import main
from blpopq.messages import Task

log = logging.getLogger("blpopq.worker")


def pause_after_blpop() -> None:
    """A worker that BLPOP handed a task stops itself (SIGSTOP) before claiming it."""
    block = worker.Worker._block

    def _block(self: worker.Worker, protocol: Any) -> None:
        block(self, protocol)
        if self._popped is not None:
            log.warning("test hook: paused between BLPOP and claim")
            os.kill(os.getpid(), signal.SIGSTOP)

    worker.Worker._block = _block  # type: ignore[method-assign]


def crash_on_client(client: str) -> None:
    """A worker about to run a task of ``client`` exits at once (status 70), as a crash."""
    run_task = worker.run_task

    def _run_task(task: Task, **kwargs: Any) -> Any:
        if task.client == client:
            log.warning("test hook: crashing on task %s", task.id)
            os._exit(70)
        return run_task(task, **kwargs)

    worker.run_task = _run_task  # type: ignore[assignment]


def launch(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pause-after-blpop", action="store_true")
    parser.add_argument("--crash-on-client")
    parser.add_argument("daemon_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.pause_after_blpop:
        pause_after_blpop()
    if args.crash_on_client:
        crash_on_client(args.crash_on_client)
    rest = args.daemon_args[1:] if args.daemon_args[:1] == ["--"] else args.daemon_args
    return main(["daemon", *rest])


def command(*hooks: str) -> list[str]:
    """The argv prefix that starts a hooked daemon: ``[python, this file, hooks..., "--"]``."""
    return [sys.executable, os.path.abspath(__file__), *hooks, "--"]


if __name__ == "__main__":
    sys.exit(launch(sys.argv[1:]))
