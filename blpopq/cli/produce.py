"""blpopq produce (blpopq-produce): validate a whole instruction file, then enqueue it.

The batch id is printed once the whole batch is in Redis. If produce stops half-way, stderr
says how much of which batch got in (common.enqueue_reporting)."""

from __future__ import annotations

import argparse
from typing import TextIO

from ..config import Settings
from ..errors import EXIT_OK
from .common import announce, connect, enqueue_reporting, read_requests, warn_heavy
from .helptext import about
from .parser import (
    INPUT_FORMATS,
    DeprecatedAlias,
    Subparsers,
    common_options,
    input_options,
)


def register(commands: Subparsers) -> None:
    produce = commands.add_parser("produce", **about("produce"))
    input_options(produce)
    produce.add_argument(  # renamed after 0.1.0: --format names output formats only
        "--format",
        dest="input_format",
        choices=INPUT_FORMATS,
        action=DeprecatedAlias,
        new="--input-format",
        help="deprecated spelling of --input-format (removed in the next release)",
    )
    common_options(produce)
    produce.set_defaults(handler=cmd_produce)


def cmd_produce(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with read_requests(
        args.file, args.input_format, settings.max_difficulty, max_work=settings.max_work
    ) as requests:
        warn_heavy("produce", requests.heavy, settings.kernel)
        protocol = connect(settings)
        announce("produce", settings)
        report = enqueue_reporting(protocol, requests, settings)
    out.write(report.summary() + "\n")
    return EXIT_OK
