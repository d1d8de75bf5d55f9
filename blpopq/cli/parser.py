"""The argparse parser: the top level, the option groups several commands share, and the
Settings those options resolve to. Each command group (cli/produce.py, cli/run.py, ...) adds
its own subcommands through ``register``; this module knows none of them by name."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from typing import Any, TextIO, TypeAlias

from .. import __version__, logs
from ..collector import FORMATS
from ..config import ENVIRONMENT, Settings, build_settings, load_file
from ..kernels import SETTINGS as KERNEL_SETTINGS
from ..metrics import port_option as metrics_port

#: What a subcommand runs: parsed arguments and resolved settings in, exit status out.
Handler = Callable[[argparse.Namespace, Settings, TextIO], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
#: A command group's ``register``: adds its subcommands, each with ``set_defaults(handler=)``.
Register = Callable[[Subparsers], None]

DESCRIPTION = (
    "Command-line entry points: blpopq {produce,daemon,collect,run} and the blpopq-* aliases."
)


def build_parser(groups: Sequence[Register]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blpopq", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"blpopq {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for register in groups:
        register(commands)
    return parser


def common_options(parser: argparse.ArgumentParser) -> None:
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


def input_options(parser: argparse.ArgumentParser, *flags: str) -> None:
    parser.add_argument("file", help="instruction file, or - for standard input")
    parser.add_argument(
        *flags,
        "--input-format",
        dest="input_format",
        default="auto",
        choices=["auto", "text", "jsonl"],
        help="instruction format (auto: jsonl if the name ends in .jsonl)",
    )
    enqueue_options(parser)


def enqueue_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-difficulty", type=int, help="largest difficulty accepted (32)")
    parser.add_argument(
        "--max-work",
        type=int,
        help="largest expected work of a mine request, count * 2**difficulty attempts (2**40)",
    )
    parser.add_argument("--chunk-size", type=int, help="tasks per atomic enqueue (50000)")


def worker_options(parser: argparse.ArgumentParser) -> None:
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
    _pool_options(parser)


def _pool_options(parser: argparse.ArgumentParser) -> None:
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


def quiet_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress display while waiting (on a terminal: live; else a line every 5 s)",
    )


def output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", dest="output_format", choices=FORMATS, default="table")


# --- options -> Settings ----------------------------------------------------------------------

_SETTING_FLAGS = (
    "redis_url", "namespace", "workers", "grace", "block_timeout", "max_attempts",
    "max_difficulty", "chunk_size", "lease", "orphan_grace", "reaper_period", "max_deaths",
    "keep_results", "metrics_port", "kernel", "max_work",
)  # fmt: skip


def settings_from(args: argparse.Namespace, environ: dict[str, str]) -> Settings:
    return build_settings(*setting_sources(args, environ))


def setting_sources(
    args: argparse.Namespace, environ: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """Flags, environment and config file: the three sources Settings are resolved from."""
    flags = {name: getattr(args, name, None) for name in _SETTING_FLAGS}
    file_values = load_file(args.config) if args.config else {}
    return flags, environ, file_values
