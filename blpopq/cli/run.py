"""blpopq daemon (blpopq-daemon) and blpopq run: the worker pool, served for good or for one
file. The processes themselves are supervisor.py's and pool.py's; this module only parses,
checks and reports."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TextIO

import redis

from .. import wire
from ..collector import Outcomes, attention_order, render, summary
from ..config import Settings
from ..connection import mask_url
from ..errors import (
    EXIT_OK,
    EXIT_TASK_FAILED,
    BlpopqError,
    ConfigError,
    RedisRefused,
    RedisUnavailable,
)
from ..outcomes import FAILED_STATUSES
from ..protocol import Protocol
from ..supervisor import Supervisor
from ..words import plural
from .common import as_failure, connect, hold_policy, read_requests, recorded_stops, warn_heavy
from .helptext import about
from .parser import (
    Subparsers,
    common_options,
    input_options,
    output_options,
    quiet_option,
    replica_option,
    worker_options,
)
from .runbatch import Ending, serve_batch

log = logging.getLogger("blpopq")


def register(commands: Subparsers) -> None:
    daemon = commands.add_parser("daemon", **about("daemon"))
    worker_options(daemon)
    replica_option(daemon)
    common_options(daemon)
    daemon.set_defaults(handler=cmd_daemon)

    run = commands.add_parser("run", **about("run"))
    input_options(run)
    worker_options(run)
    output_options(run)
    run.add_argument(
        "--timeout", type=float, help="stop after S seconds: running tasks go back (exit 4)"
    )
    quiet_option(run)
    common_options(run)
    run.set_defaults(handler=cmd_run)


def cmd_daemon(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    protocol = connect(settings)  # fail fast, with a clear message, if Redis is unreachable
    check_eviction(protocol, args.allow_eviction)
    offer_enqueue_function(protocol)
    hold_policy(protocol, settings)
    protocol.client.close()
    log.info(
        "blpopq daemon: %s on %s namespace %s, policy %s",
        plural(settings.worker_count, "worker"),
        mask_url(settings.url),
        settings.namespace,
        settings.policy,
    )
    return Supervisor(settings).run()


def check_eviction(protocol: Protocol, allowed: bool) -> None:
    """An allkeys-* policy lets Redis delete task lists, claims or results when memory runs
    short, silently breaking every guarantee; volatile-* policies only touch keys with a TTL,
    and blpopq's task keys have none."""
    policy = protocol.eviction_policy()
    if policy is None or not policy.startswith("allkeys"):
        return
    message = f"Redis maxmemory-policy is {policy}: it may silently evict queued tasks"
    if not allowed:
        raise ConfigError(message + " (use noeviction, or --allow-eviction to start anyway)")
    log.warning("%s; starting anyway (--allow-eviction)", message)


def offer_enqueue_function(protocol: Protocol) -> None:
    """Load FCALL blpopq_enqueue for other clients (README "Wire format"), this daemon's
    version replacing any other. Refused is no reason to stop serving: producers still
    have EVAL and raw RPUSH."""
    try:
        outcome = protocol.load_library(replace=True)
    except redis.ResponseError as exc:
        log.warning(
            "could not load the function library %s (%s): other clients cannot FCALL %s; "
            "they can still EVAL the script `blpopq schema script` prints",
            wire.LIBRARY,
            exc,
            wire.ENQUEUE_FUNCTION,
        )
        return
    if outcome == "unsupported":
        log.info(
            "Redis has no functions (before 7.0): other clients enqueue losslessly with EVAL "
            "(`blpopq schema script`)"
        )
    else:
        log.info("function %s loaded: any client may FCALL it to enqueue", wire.ENQUEUE_FUNCTION)


def cmd_run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Exit status: the first of 130 (interrupted), 4 (timed out), 3 or 5 (Redis failed),
    1 (a task failed), 0. Whatever finished is printed in every case."""
    requests = read_requests(
        args.file, args.input_format, settings.max_difficulty, max_work=settings.max_work
    )
    warn_heavy("run", requests.heavy, settings.kernel)
    failure: BlpopqError | None = None
    with requests, recorded_stops() as stops:
        ending = Ending(stops, embedded=not settings.redis_url)
        try:
            serve_batch(settings, requests, args.timeout, ending, args.quiet)
        except (redis.RedisError, RedisUnavailable, RedisRefused) as exc:
            if ending.outcomes is None:
                raise  # nothing was enqueued: main says why
            failure = as_failure(exc)
    assert ending.outcomes is not None
    tasks = _report(ending.outcomes, args.output_format, out)
    out.flush()  # the table first, then the lines that explain an early end
    for line in (ending.others_line(), ending.left_line()):
        if line is not None:
            sys.stderr.write(f"blpopq run: {line}\n")
    for error in (ending.timeout, failure):
        if error is not None:
            sys.stderr.write(f"blpopq run: error: {error}\n")
    return ending.exit_status(failure, tasks)


def _report(outcomes: Outcomes, fmt: str, out: TextIO) -> int:
    """The batch's attention order on ``out`` (rows 1..N; jsonl keeps the namespace-wide
    position), the summary and dead letters on stderr; the status
    the tasks alone call for (0, or 1 if any failed)."""
    out.write(render(attention_order(outcomes.results), fmt, first_row=1))
    sys.stderr.write(summary(outcomes.results, outcomes.dead) + "\n")
    for letter in outcomes.dead:
        sys.stderr.write(f"dead letter {letter.id} ({letter.tier}): {letter.reason}\n")
    failed = outcomes.dead or any(r.status in FAILED_STATUSES for r in outcomes.results)
    return EXIT_TASK_FAILED if failed else EXIT_OK
