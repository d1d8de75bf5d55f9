"""The argparse parser: the top level, the option groups several commands share, and the
Settings those options resolve to. Each command group (cli/produce.py, cli/run.py, ...) adds
its own subcommands through ``register``; this module knows none of them by name."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO, TypeAlias

from .. import __version__, logs
from ..collector import FORMATS
from ..config import ENVIRONMENT, Settings, build_settings, default_workers, load_file
from ..errors import ConfigError
from ..kernels import SETTINGS as KERNEL_SETTINGS
from ..metrics import port_option as metrics_port
from . import helptext

#: What a subcommand runs: parsed arguments and resolved settings in, exit status out.
Handler = Callable[[argparse.Namespace, Settings, TextIO], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
#: A command group's ``register``: adds its subcommands, each with ``set_defaults(handler=)``.
Register = Callable[[Subparsers], None]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: The logging options: environment variable and default. They are not Settings (workers get
#: them by inheriting the configured logging when they fork), so no config file sets them.
LOG_OPTIONS = {
    "log_level": ("BLPOPQ_LOG_LEVEL", "INFO", LOG_LEVELS),
    "log_format": ("BLPOPQ_LOG_FORMAT", "human", logs.FORMATS),
}

#: Instruction formats (``--input-format``); see blpopq.instructions.detect_format for auto.
INPUT_FORMATS = ("auto", "text", "jsonl")


def build_parser(groups: Sequence[Register]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blpopq",
        description=helptext.TOP,
        epilog=helptext.TOP_EPILOG,
        formatter_class=helptext.FORMATTER,
    )
    parser.add_argument("--version", action="version", version=f"blpopq {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in groups:
        register(commands)
    return parser


def _spell(value: object) -> str:
    """A default as a user would write it: 2**36 rather than 68719476736."""
    if isinstance(value, int) and value >= 2**16 and value & (value - 1) == 0:
        return f"2**{value.bit_length() - 1}"
    return f"{value:g}" if isinstance(value, float) else str(value)


#: How a default reads where the bare value would not say enough.
_DEFAULT_WORDS = {
    "redis_url": "redis://localhost:6379; run: a private Redis of its own",
    "workers": f"one per CPU this process may use, {default_workers()} here",
    "keep_results": "0, keep all",
    "metrics_port": "0, off",
}


def setting_help(name: str, text: str) -> str:
    """``text`` and where the setting's value comes from when the flag is not given: its
    environment variable, then the default (a flag > environment > --config file > default)."""
    default = _DEFAULT_WORDS.get(name) or _spell(getattr(DEFAULTS, name))
    return f"{text} (env {ENVIRONMENT[name]}; default {default})"


DEFAULTS = Settings()


def common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", metavar="URL", help=setting_help("redis_url", "Redis URL"))
    parser.add_argument(
        "--namespace",
        metavar="NS",
        help=setting_help("namespace", "key namespace: keys are {NS}:vip ..."),
    )
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        type=str.upper,
        help="least severe log lines shown (env BLPOPQ_LOG_LEVEL; default INFO)",
    )
    parser.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        help="human lines, or one JSON object per line for log shippers "
        "(env BLPOPQ_LOG_FORMAT; default human)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=os.environ.get("BLPOPQ_CONFIG"),
        help="TOML file of settings, below flags and environment (env BLPOPQ_CONFIG; default none)",
    )


def input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="instruction file, or - for standard input")
    parser.add_argument(
        "--input-format",
        dest="input_format",
        default="auto",
        choices=INPUT_FORMATS,
        help="instruction format (default auto: jsonl if the name ends in .jsonl or the "
        "first non-blank line starts with '{', else text)",
    )
    enqueue_options(parser)


class DeprecatedAlias(argparse.Action):
    """An old spelling of another option: stores into the new option's ``dest`` and says, on
    stderr, which spelling to use instead. Kept for one release after it was renamed."""

    def __init__(self, *args: Any, new: str, **kwargs: Any) -> None:
        self.new = new
        super().__init__(*args, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        sys.stderr.write(
            f"{parser.prog}: warning: {option_string} is deprecated here and will be removed "
            f"in the next release: use {self.new} (--format names output formats only)\n"
        )
        setattr(namespace, self.dest, values)


def enqueue_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-difficulty",
        type=int,
        metavar="D",
        help=setting_help("max_difficulty", "largest difficulty accepted"),
    )
    parser.add_argument(
        "--max-work",
        type=int,
        metavar="N",
        help=setting_help(
            "max_work", "largest expected work of a mine request, count * 2**difficulty attempts"
        ),
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        metavar="N",
        help=setting_help("chunk_size", "requests per atomic enqueue"),
    )
    replica_option(parser)


def replica_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait-replicas",
        type=int,
        metavar="N",
        help=setting_help(
            "wait_replicas",
            "replicas that must confirm each enqueue chunk (else exit 3), result and dead "
            "letter (else a warning), with Redis WAIT",
        ),
    )


def worker_options(parser: argparse.ArgumentParser) -> None:
    options = [
        ("--workers", "-w", int, "N", "workers", "worker processes"),
        ("--grace", None, float, "S", "grace", "seconds a running task may take to finish on stop"),
        ("--block-timeout", None, float, "S", "block_timeout", "BLPOP timeout in seconds"),
        ("--max-attempts", None, int, "N", "max_attempts", "nonces tried per block"),
        ("--lease", None, float, "S", "lease",
         "seconds without a heartbeat before a worker is declared dead"),
        ("--orphan-grace", None, float, "S", "orphan_grace",
         "seconds before a task popped but never claimed is taken back"),
        ("--reaper-period", None, float, "S", "reaper_period", "seconds between reaper passes"),
        ("--max-deaths", None, int, "N", "max_deaths",
         "worker deaths a task may cause before it is dead-lettered"),
    ]  # fmt: skip
    for flag, short, kind, metavar, name, text in options:
        flags = [flag, short] if short else [flag]
        parser.add_argument(*flags, type=kind, metavar=metavar, help=setting_help(name, text))
    _pool_options(parser)


def _pool_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep-results",
        type=int,
        metavar="N",
        help=setting_help(
            "keep_results", "keep only the newest N results in Redis, trimmed as each is written"
        ),
    )
    parser.add_argument(
        "--metrics-port",
        type=metrics_port,
        metavar="PORT",
        help=setting_help(
            "metrics_port",
            "serve Prometheus metrics at http://127.0.0.1:PORT/metrics (needs blpopq[metrics])",
        ),
    )
    parser.add_argument(
        "--kernel",
        choices=KERNEL_SETTINGS,
        help=setting_help(
            "kernel", "proof-of-work kernel: best available, best native, portable C, hashlib"
        ),
    )
    parser.add_argument(
        "--policy",
        metavar="POLICY",
        help=setting_help(
            "policy",
            "which tier goes first: strict, weighted:vip=6,alto=3,comun=1, aging:SECONDS or "
            "aging:alto=30,comun=120",
        ),
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
    parser.add_argument(
        "--format",
        dest="output_format",
        choices=FORMATS,
        default="table",
        help="output: a table fitted to the terminal, JSON Lines with every field, or csv "
        "(default table)",
    )


# --- options -> Settings ----------------------------------------------------------------------

#: Every setting may have a flag (``--chunk-size`` -> ``chunk_size``): a command that lacks
#: one leaves it None, so environment and file decide. Read from the one table of settings,
#: so that a new setting's flag is never forgotten here.
_SETTING_FLAGS = tuple(ENVIRONMENT)


def settings_from(args: argparse.Namespace, environ: dict[str, str]) -> Settings:
    return build_settings(*setting_sources(args, environ))


def setting_sources(
    args: argparse.Namespace, environ: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """Flags, environment and config file: the three sources Settings are resolved from."""
    flags = {name: getattr(args, name, None) for name in _SETTING_FLAGS}
    file_values = load_file(args.config) if args.config else {}
    return flags, environ, file_values


def log_sources(args: argparse.Namespace, environ: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Log level and format, each as (value, where it came from): flag over environment over
    default. A variable set to something else than a choice is a ConfigError."""
    sources = {}
    for name, (variable, default, choices) in LOG_OPTIONS.items():
        flag = getattr(args, name, None)
        text = environ.get(variable, "")
        value = text.upper() if name == "log_level" else text
        if flag is not None:
            sources[name] = (flag, "flag")
        elif not text:
            sources[name] = (default, "default")
        elif value in choices:
            sources[name] = (value, f"env {variable}")
        else:
            raise ConfigError(f"{variable}={text!r} is not one of {', '.join(choices)}")
    return sources
