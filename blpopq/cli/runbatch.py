"""blpopq run's life: enqueue one file, serve it on a pool of its own, and end on the batch's
last outcome, a timeout or Ctrl-C, with what finished in hand whichever way it ends.

A terminal's Ctrl-C is SIGINT to its whole foreground process group. The pool and the
embedded Redis are out of that group (pool.py), so only this process hears it, and it asks
the pool to stop once, as an operator's first SIGTERM does: workers finish their task within
the grace or put it back at the head of its tier. A second Ctrl-C asks again: put back now.
A timeout asks twice at once, since nothing more is waited for. The embedded Redis stops
last, once the pool has written every outcome and put back every task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..collector import Outcomes, ResultsMissed, wait_until
from ..config import Settings
from ..connection import mask_url
from ..errors import EXIT_INTERRUPTED, EXIT_TIMEOUT, BlpopqError, WaitTimeout
from ..pool import PoolProcess, daemon_process, redis_for_run
from ..producer import EnqueueReport, RequestSource
from ..protocol import Protocol
from ..words import plural
from .common import Stops, announce, connect, enqueue_reporting, hold_policy
from .progress import reporter

log = logging.getLogger("blpopq")

#: Seconds between reads of the results while the pool stops (and between looks at it).
_POLL = 0.1


@dataclass
class Ending:
    """How far a run got and why it ended, filled in as it goes: when serving raises (a Redis
    error), it still holds what finished."""

    stops: Stops
    embedded: bool
    outcomes: Outcomes | None = None
    report: EnqueueReport | None = None
    interrupted: bool = False
    timeout: WaitTimeout | None = None
    #: Tasks of the batch open in Redis once the pool stopped: waiting, and claimed (by a
    #: worker killed on the way out: its lease puts the task back).
    left: tuple[int, int] | None = None
    where: str = ""
    #: Tasks of other batches (queued in the same namespace) that this run's workers served.
    served_others: int = 0

    def exit_status(self, failure: BlpopqError | None, tasks: int) -> int:
        """The first that applies of 130 (interrupted), 4 (timed out), the ``failure``'s
        (3 or 5: Redis), then ``tasks`` (1 if a task failed, else 0): how it ended comes
        before what it found, since an early end explains missing rows."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.timeout is not None:
            return EXIT_TIMEOUT
        return failure.exit_code if failure is not None else tasks

    def others_line(self) -> str | None:
        """Said when the pool also served tasks of other batches: they share the queue."""
        if not self.served_others:
            return None
        return (
            f"also served {plural(self.served_others, 'task')} of other batches queued in "
            f"{self.where} "
            "(not shown: collect prints them)"
        )

    def left_line(self) -> str | None:
        """The summary's last line when the batch did not finish: how many of its tasks are
        left and where they are."""
        if self.left is None or self.report is None:
            return None
        queued, claimed = self.left
        why = "interrupted" if self.interrupted else "timed out"
        if isinstance(self.timeout, ResultsMissed):
            why = "results removed unread"  # retention or a drain: the error line says which
        line = (
            f"{why}: {queued} of {len(self.report.ids)} tasks of batch {self.report.batch} "
            f"left queued in {self.where}"
        )
        if claimed:
            line += f"; {claimed} still claimed (their lease puts them back)"
        if self.embedded:
            return line + ", which is gone with them (--redis-url keeps them for a daemon)"
        return line + ": a daemon on that Redis will serve them"


def serve_batch(
    settings: Settings,
    requests: RequestSource,
    timeout: float | None,
    ending: Ending,
    quiet: bool = False,
) -> None:
    """Enqueue the batch and serve it until it ends (see the module's docstring), showing
    progress unless ``quiet``; ``ending`` says how it ended. The pool stops before its Redis,
    and the results are read once more after it has stopped."""
    with redis_for_run(settings) as url:
        settings = replace(settings, redis_url=url)
        where = "the embedded Redis" if ending.embedded else mask_url(url)
        ending.where = f"namespace {settings.namespace} on {where}"
        protocol = connect(settings)
        hold_policy(protocol, settings)
        private = "a private, embedded Redis, gone at exit (--redis-url names yours)"
        announce("run", settings, quiet, where=private if ending.embedded else "")
        outcomes = Outcomes.from_now(protocol)
        report = enqueue_reporting(protocol, requests, settings)
        log.info("%s", report.summary())
        outcomes.batch = report.batch
        ending.outcomes, ending.report = outcomes, report
        tiers = {tier.value: count for tier, count in report.counts.items()}
        shown = reporter(len(report.ids), tiers, quiet)
        # The pool is forked before the display starts its thread, and sends its log lines
        # through it when the display would be torn by them.
        relay = shown.log_line if shown.relays_stderr else None
        with daemon_process(settings, relay) as pool, shown:
            _wait(protocol, pool, ending, timeout, shown.update)
            _until_stopped(protocol, pool, ending, shown.update)
            outcomes.refresh(protocol)  # those finished while the pool stopped
            shown.update(outcomes)
        ours = pool.worker_ids()
        ending.served_others = sum(
            n for worker, n in outcomes.others_by_worker.items() if worker in ours
        )
        if outcomes.count < len(report.ids):
            ending.left = protocol.open_tasks(report.ids)
        protocol.client.close()


def _wait(
    protocol: Protocol,
    pool: PoolProcess,
    ending: Ending,
    timeout: float | None,
    on_refresh: Callable[[Outcomes], None],
) -> None:
    """Until every outcome of the batch is read, the timeout, or a stop request; then ask
    the pool to stop: at once on the timeout, else within the grace."""
    assert ending.outcomes is not None and ending.report is not None
    outcomes, expected, stops = ending.outcomes, len(ending.report.ids), ending.stops
    try:
        wait_until(
            protocol,
            outcomes,
            lambda o: o.count >= expected or stops.count > 0,
            timeout,
            on_refresh=on_refresh,
        )
    except WaitTimeout as exc:
        ending.timeout = exc
        pool.stop(now=True)
        return
    if outcomes.count < expected:
        ending.interrupted = True
        log.warning(
            "interrupted: running tasks finish within the grace or go back to their queue; "
            "Ctrl-C again to put them back now"
        )
    pool.stop()


def _until_stopped(
    protocol: Protocol,
    pool: PoolProcess,
    ending: Ending,
    on_refresh: Callable[[Outcomes], None],
) -> None:
    """Read results while the pool stops (tasks finishing within the grace); a second stop
    request puts running tasks back now."""
    assert ending.outcomes is not None
    while not pool.wait(_POLL):
        if ending.stops.count > 1:
            pool.stop(now=True)
        ending.outcomes.refresh(protocol)
        on_refresh(ending.outcomes)
