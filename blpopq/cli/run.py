"""blpopq daemon (blpopq-daemon) and blpopq run: the worker pool, served for good or for one
file. The processes themselves are supervisor.py's and pool.py's; this module only parses,
checks and reports."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from typing import TextIO

import redis

from ..collector import Outcomes, attention_order, render, summary, wait_for
from ..config import Settings
from ..connection import mask_url
from ..errors import EXIT_OK, EXIT_TASK_FAILED, ConfigError, RedisRefused, RedisUnavailable
from ..instructions import Request
from ..messages import FAILED_STATUSES
from ..pool import daemon_process, redis_for_run
from ..protocol import Protocol
from ..supervisor import Supervisor
from ..words import plural
from .common import connect, enqueue_reporting, read_requests
from .helptext import about
from .parser import Subparsers, common_options, input_options, output_options, worker_options

log = logging.getLogger("blpopq")


def register(commands: Subparsers) -> None:
    daemon = commands.add_parser("daemon", **about("daemon"))
    worker_options(daemon)
    common_options(daemon)
    daemon.set_defaults(handler=cmd_daemon)

    run = commands.add_parser("run", **about("run"))
    input_options(run)
    worker_options(run)
    output_options(run)
    run.add_argument("--timeout", type=float, help="give up waiting after S seconds")
    common_options(run)
    run.set_defaults(handler=cmd_run)


def cmd_daemon(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    protocol = connect(settings)  # fail fast, with a clear message, if Redis is unreachable
    check_eviction(protocol, args.allow_eviction)
    protocol.client.close()
    log.info(
        "blpopq daemon: %s on %s namespace %s",
        plural(settings.worker_count, "worker"),
        mask_url(settings.url),
        settings.namespace,
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


def cmd_run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    requests = read_requests(
        args.file, args.input_format, settings.max_difficulty, max_work=settings.max_work
    )
    read: list[Outcomes] = []  # the batch's outcomes, once it is enqueued
    try:
        _serve_batch(args, settings, requests, read)
    except (redis.RedisError, RedisUnavailable, RedisRefused):
        for outcomes in read:  # what finished is printed before main prints the error
            _report(outcomes, args.output_format, out)
            out.flush()
        raise
    return _report(read[0], args.output_format, out)


def _serve_batch(
    args: argparse.Namespace, settings: Settings, requests: list[Request], read: list[Outcomes]
) -> None:
    """Enqueue the batch, run a pool until all its outcomes are read (into ``read[0]``,
    which stays readable if this raises), then stop the pool and any embedded Redis."""
    with redis_for_run(settings) as url:
        settings = replace(settings, redis_url=url)
        protocol = connect(settings)
        outcomes = Outcomes.from_now(protocol)
        report = enqueue_reporting(protocol, requests, settings.chunk_size)
        log.info("%s", report.summary())
        outcomes.batch = report.batch
        read.append(outcomes)
        with daemon_process(settings):
            wait_for(protocol, outcomes, len(report.ids), args.timeout)
        protocol.client.close()


def _report(outcomes: Outcomes, fmt: str, out: TextIO) -> int:
    """The attention order on ``out``, the summary and dead letters on stderr; the status
    the tasks alone call for (0, or 1 if any failed)."""
    out.write(render(attention_order(outcomes.results), fmt))
    sys.stderr.write(summary(outcomes.results, outcomes.dead) + "\n")
    for letter in outcomes.dead:
        sys.stderr.write(f"dead letter {letter.id} ({letter.tier}): {letter.reason}\n")
    failed = outcomes.dead or any(r.status in FAILED_STATUSES for r in outcomes.results)
    return EXIT_TASK_FAILED if failed else EXIT_OK
