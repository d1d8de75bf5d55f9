"""Command-line entry points: blpopq {produce,daemon,collect,run} and the blpopq-* aliases.

Only this module prints, configures logging, reads the environment and picks exit codes
(see errors.py); everything it calls takes a Settings and returns values.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, TextIO

import redis

from . import __version__, deadletters, logs
from .collector import FORMATS, Outcomes, attention_order, render, summary, wait_for, wait_until
from .config import ENVIRONMENT, Settings, build_settings, load_file, resolve
from .connection import check_reachable, make_client, mask_url
from .embedded import RedisServer
from .errors import (
    EXIT_OK,
    EXIT_TASK_FAILED,
    BlpopqError,
    ConfigError,
    InputError,
)
from .instructions import InstructionError, Request, decode_source, parse
from .kernels import SETTINGS as KERNEL_SETTINGS
from .lifeline import Lifeline, require_main_thread
from .messages import FAILED_STATUSES
from .metrics import port_option as metrics_port
from .producer import enqueue
from .protocol import Protocol
from .redis_errors import as_blpopq_error
from .status import gather, render_table, to_json
from .supervisor import Supervisor

log = logging.getLogger("blpopq")

# --- argument parsing ----------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url",
        help=f"Redis URL (env {ENVIRONMENT['redis_url']}; "
        "default redis://localhost:6379; `run` embeds its own Redis)",
    )
    parser.add_argument(
        "--namespace",
        help="key namespace: keys are {NAMESPACE}:vip ... (env BLPOPQ_NAMESPACE, default blpopq)",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("BLPOPQ_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
    )
    parser.add_argument(
        "--log-format",
        default=os.environ.get("BLPOPQ_LOG_FORMAT", "human"),
        choices=logs.FORMATS,
        help="human lines, or one JSON object per line for log shippers (env BLPOPQ_LOG_FORMAT)",
    )
    parser.add_argument(
        "--config",
        default=os.environ.get("BLPOPQ_CONFIG"),
        help="TOML file of settings, below flags and environment (env BLPOPQ_CONFIG)",
    )


def _input_options(parser: argparse.ArgumentParser, *flags: str) -> None:
    parser.add_argument("file", help="instruction file, or - for standard input")
    parser.add_argument(
        *flags,
        "--input-format",
        dest="input_format",
        default="auto",
        choices=["auto", "text", "jsonl"],
        help="instruction format (auto: jsonl if the name ends in .jsonl)",
    )
    parser.add_argument("--max-difficulty", type=int, help="largest difficulty accepted (32)")
    parser.add_argument("--chunk-size", type=int, help="tasks per atomic enqueue (50000)")


def _worker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", "-w", type=int, help="worker processes (default: CPUs)")
    parser.add_argument("--grace", type=float, help="seconds to finish a task on stop (30)")
    parser.add_argument("--block-timeout", type=float, help="BLPOP timeout in seconds (2)")
    parser.add_argument("--max-attempts", type=int, help="nonces tried per block (2**36)")
    parser.add_argument(
        "--lease",
        type=float,
        help="seconds without a heartbeat before a worker is declared dead (15)",
    )
    parser.add_argument(
        "--orphan-grace",
        type=float,
        help="seconds before a task popped but never claimed is taken back (5)",
    )
    parser.add_argument("--reaper-period", type=float, help="seconds between reaper passes (5)")
    parser.add_argument(
        "--max-deaths",
        type=int,
        help="worker deaths a task may cause before it is dead-lettered (3)",
    )
    parser.add_argument(
        "--keep-results",
        type=int,
        metavar="N",
        help="keep only the newest N results in Redis, trimmed as each is written (0: all)",
    )
    parser.add_argument(
        "--metrics-port",
        type=metrics_port,
        metavar="PORT",
        help="serve Prometheus metrics at http://127.0.0.1:PORT/metrics (needs blpopq[metrics])",
    )
    parser.add_argument(
        "--kernel",
        choices=KERNEL_SETTINGS,
        help="proof-of-work kernel: best available, best native, portable C, hashlib (auto)",
    )
    parser.add_argument(
        "--allow-eviction",
        action="store_true",
        help="start even if Redis's maxmemory-policy may evict tasks",
    )


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", dest="output_format", choices=FORMATS, default="table")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blpopq", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"blpopq {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    produce = commands.add_parser("produce", help="validate a file and enqueue its requests")
    _input_options(produce, "--format")
    _common(produce)

    daemon = commands.add_parser("daemon", help="run the worker pool until SIGTERM/SIGINT")
    _worker_options(daemon)
    _common(daemon)

    collect = commands.add_parser("collect", help="print the attention order")
    collect.add_argument("--batch", help="only this batch")
    collect.add_argument("--follow", action="store_true", help="keep printing new results")
    collect.add_argument("--expect", type=int, help="wait until N results (and dead letters)")
    collect.add_argument("--timeout", type=float, help="with --expect: give up after S seconds")
    collect.add_argument(
        "--drain",
        action="store_true",
        help="remove the results from Redis once printed (not with --batch)",
    )
    _output_options(collect)
    _common(collect)

    run = commands.add_parser("run", help="produce, work and collect one file, then exit")
    _input_options(run)
    _worker_options(run)
    _output_options(run)
    run.add_argument("--timeout", type=float, help="give up waiting after S seconds")
    _common(run)
    _operations_parsers(commands)

    config = commands.add_parser("config", help="print the effective configuration")
    _worker_options(config)
    config.add_argument("--max-difficulty", type=int, help="largest difficulty accepted (32)")
    config.add_argument("--chunk-size", type=int, help="tasks per atomic enqueue (50000)")
    _common(config)
    return parser


_SETTING_FLAGS = (
    "redis_url", "namespace", "workers", "grace", "block_timeout", "max_attempts",
    "max_difficulty", "chunk_size", "lease", "orphan_grace", "reaper_period", "max_deaths",
    "keep_results", "metrics_port", "kernel",
)  # fmt: skip


def settings_from(args: argparse.Namespace, environ: dict[str, str]) -> Settings:
    return build_settings(*_setting_sources(args, environ))


def _setting_sources(
    args: argparse.Namespace, environ: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    flags = {name: getattr(args, name, None) for name in _SETTING_FLAGS}
    file_values = load_file(args.config) if args.config else {}
    return flags, environ, file_values


# --- commands ---------------------------------------------------------------------------------


def read_requests(path: str, fmt: str, max_difficulty: int, stdin: Any = None) -> list[Request]:
    """Parse and validate the whole file; InputError carries every bad line."""
    source = "<stdin>" if path == "-" else path
    try:
        data = (stdin or sys.stdin.buffer).read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return parse(decode_source(data, source), source, fmt, max_difficulty)
    except InstructionError as exc:
        raise InputError(str(exc)) from None


def connect(settings: Settings) -> Protocol:
    client = make_client(settings.url, settings.socket_timeout)
    check_reachable(client, settings.url)
    return Protocol(client, settings.keys)


def cmd_produce(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    requests = read_requests(args.file, args.input_format, settings.max_difficulty)
    report = enqueue(connect(settings), requests, settings.chunk_size)
    out.write(report.summary() + "\n")
    return EXIT_OK


def cmd_daemon(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    protocol = connect(settings)  # fail fast, with a clear message, if Redis is unreachable
    check_eviction(protocol, args.allow_eviction)
    protocol.client.close()
    log.info(
        "blpopq daemon: %d workers on %s namespace %s",
        settings.worker_count,
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


def cmd_collect(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if args.drain and args.batch is not None:
        # Results leave from the head of one list: taking one batch's would mean removing
        # others' from the middle (reordering), or dropping them unprinted.
        raise ConfigError("--drain takes every batch's results away: it cannot be given --batch")
    protocol = connect(settings)
    outcomes = Outcomes(batch=args.batch)
    if args.follow:
        return _follow(protocol, outcomes, args.output_format, out, args.drain)
    if args.expect is not None:
        wait_for(protocol, outcomes, args.expect, args.timeout)
    else:
        outcomes.refresh(protocol)
    out.write(render(attention_order(outcomes.results), args.output_format))
    if args.drain:
        out.flush()  # printed first, removed after: a failed write leaves them in Redis
        outcomes.discard_read(protocol)
    return EXIT_OK


def _follow(
    protocol: Protocol, outcomes: Outcomes, fmt: str, out: TextIO, drain: bool = False
) -> int:
    """Print results as they arrive (each arrival in attention order), until interrupted;
    with ``drain``, remove each arrival from Redis once it is printed."""
    header = fmt != "jsonl"
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            wait_until(protocol, outcomes, lambda o: bool(o.results), None, tolerate_missed=True)
            out.write(render(attention_order(outcomes.results), fmt, header=header))
            out.flush()
            if drain:
                outcomes.discard_read(protocol)
            header = False
            outcomes.results.clear()  # printed: keep memory flat while following
            outcomes.dead.clear()
    return EXIT_OK


def cmd_run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    requests = read_requests(args.file, args.input_format, settings.max_difficulty)
    with _redis_for_run(settings) as url:
        settings = replace(settings, redis_url=url)
        protocol = connect(settings)
        outcomes = Outcomes.from_now(protocol)
        report = enqueue(protocol, requests, settings.chunk_size)
        log.info("%s", report.summary())
        outcomes.batch = report.batch
        with _daemon(settings):
            wait_for(protocol, outcomes, len(report.ids), args.timeout)
        protocol.client.close()
    out.write(render(attention_order(outcomes.results), args.output_format))
    sys.stderr.write(summary(outcomes.results, outcomes.dead) + "\n")
    for letter in outcomes.dead:
        sys.stderr.write(f"dead letter {letter.id} ({letter.tier}): {letter.reason}\n")
    failed = outcomes.dead or any(r.status in FAILED_STATUSES for r in outcomes.results)
    return EXIT_TASK_FAILED if failed else EXIT_OK


@contextlib.contextmanager
def _redis_for_run(settings: Settings) -> Iterator[str]:
    """The configured Redis, or a private embedded one that lives as long as the run: it gets
    SIGTERM if we die (Linux), and its directory goes at the next start (everywhere)."""
    if settings.redis_url:
        yield settings.redis_url
        return
    with RedisServer(die_with_parent=True) as server:
        log.info("embedded redis-server %s at %s", server.binary, server.url)
        yield server.url


@contextlib.contextmanager
def _daemon(settings: Settings) -> Iterator[None]:
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
        process.join(settings.grace + settings.block_timeout + 15)
        if process.is_alive():
            process.kill()
            process.join()
        lifeline.close()


def _daemon_main(settings: Settings, lifeline: Lifeline) -> None:
    lifeline.hold(deadline=None)  # the supervisor bounds its own stop (and kills stragglers)
    sys.exit(Supervisor(settings).run())


# --- operations: status and dead letters ------------------------------------------------------

CLEAR_SCREEN = "\x1b[H\x1b[2J"


def _operations_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser(
        "status", help="queue lengths and ages, tasks in flight, workers, dead letters, rate"
    )
    status.add_argument(
        "--json", action="store_true", help="one JSON object (stable keys) instead of tables"
    )
    status.add_argument(
        "--watch",
        nargs="?",
        const=2.0,
        type=float,
        metavar="SECONDS",
        help="refresh every SECONDS (default 2) until Ctrl-C; with --json, one line each",
    )
    _common(status)

    dead = commands.add_parser("dead", help="list, show, requeue or purge dead letters")
    actions = dead.add_subparsers(dest="dead_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="id, tier, batch, when and why of each letter")
    _common(listing)
    show = actions.add_parser("show", help="the full dead letters, as pretty JSON")
    show.add_argument("ids", nargs="+", metavar="ID", help="task id, or @N as `dead list` shows")
    _common(show)
    requeue = actions.add_parser(
        "requeue", help="run dead tasks again: back at the tail of their tier, history cleared"
    )
    purge = actions.add_parser("purge", help="delete dead letters")
    for parser in (requeue, purge):
        parser.add_argument(
            "ids", nargs="*", metavar="ID", help="task id, or @N as `dead list` shows"
        )
        parser.add_argument("--all", action="store_true", help="every dead letter")
        _common(parser)


def cmd_status(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if args.watch is not None and not args.watch > 0:
        raise ConfigError("--watch needs a positive number of seconds")
    protocol = connect(settings)

    def text() -> str:
        status = gather(protocol)
        return to_json(status) + "\n" if args.json else render_table(status)

    if args.watch is None:
        out.write(text())
        return EXIT_OK
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            out.write(text() if args.json else CLEAR_SCREEN + text())
            out.flush()
            time.sleep(args.watch)
    return EXIT_OK


def cmd_dead(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if args.dead_command in ("requeue", "purge") and bool(args.ids) == bool(args.all):
        what = "give IDs or --all, not both" if args.all else "give the dead letters' IDs, or --all"
        raise InputError(f"{args.dead_command}: {what}")
    protocol = connect(settings)
    letters = deadletters.load(protocol)
    if args.dead_command == "list":
        out.write(deadletters.render_list(letters))
        return EXIT_OK
    chosen = letters if getattr(args, "all", False) else deadletters.select(letters, args.ids)
    if args.dead_command == "show":
        out.write(deadletters.render_show(chosen))
        return EXIT_OK
    if args.dead_command == "requeue":
        plans, done = deadletters.plans_for(chosen, skip_unrequeueable=args.all)
        if done.problems:
            raise InputError("; ".join(done.problems) + " (nothing was requeued)")
        done = deadletters.requeue(protocol, plans, done)
    else:
        done = deadletters.purge(protocol, chosen)
    out.write("".join(line + "\n" for line in done.lines))
    for line in [*done.notes, *done.problems]:
        sys.stderr.write(f"blpopq dead {args.dead_command}: {line}\n")
    return InputError.exit_code if done.problems else EXIT_OK


def cmd_config(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Every setting, its effective value (secrets masked) and where it came from."""
    sources = resolve(*_setting_sources(args, dict(os.environ)))
    for field in fields(Settings):
        value = getattr(settings, field.name)
        if field.name == "redis_url":
            value = mask_url(settings.url) + ("" if settings.redis_url else " (run: embedded)")
        origin = sources.get(field.name, (None, "default"))[1]
        out.write(f"{field.name:<15} {value!s:<40} {origin}\n")
    return EXIT_OK


_COMMANDS = {
    "config": cmd_config,
    "produce": cmd_produce,
    "daemon": cmd_daemon,
    "collect": cmd_collect,
    "run": cmd_run,
    "status": cmd_status,
    "dead": cmd_dead,
}


def main(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level, args.log_format)
    try:
        settings = settings_from(args, dict(os.environ if environ is None else environ))
        return _COMMANDS[args.command](args, settings, sys.stdout)
    except BlpopqError as exc:
        sys.stderr.write(f"blpopq {args.command}: error: {exc}\n")
        return exc.exit_code
    except redis.RedisError as exc:
        error = as_blpopq_error(exc, "Redis failed")
        sys.stderr.write(f"blpopq {args.command}: error: {error}\n")
        return error.exit_code
    except KeyboardInterrupt:
        return 130


def _alias(command: str) -> int:
    return main([command, *sys.argv[1:]])


def produce_main() -> int:
    return _alias("produce")


def daemon_main() -> int:
    return _alias("daemon")


def collect_main() -> int:
    return _alias("collect")


def status_main() -> int:
    return _alias("status")
