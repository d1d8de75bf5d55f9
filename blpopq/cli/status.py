"""blpopq status (blpopq-status): queue lengths and ages, tasks in flight, workers, rate."""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import TextIO

from ..config import Settings
from ..errors import EXIT_OK, ConfigError
from ..status import gather, render_table, to_json
from .common import connect
from .helptext import about
from .parser import Subparsers, common_options

CLEAR_SCREEN = "\x1b[H\x1b[2J"


def register(commands: Subparsers) -> None:
    status = commands.add_parser("status", **about("status"))
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
    common_options(status)
    status.set_defaults(handler=cmd_status)


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
