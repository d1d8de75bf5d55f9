"""blpopq collect (blpopq-collect): print the attention order, once, when N arrived, or as
results arrive (--follow); --drain removes what was printed."""

from __future__ import annotations

import argparse
import contextlib
from typing import TextIO

from ..collector import Outcomes, attention_order, render, table_layout, wait_for, wait_until
from ..config import Settings
from ..errors import EXIT_OK, ConfigError
from ..protocol import Protocol
from . import pictures
from .common import announce, connect, resolve_batch
from .helptext import about
from .parser import Subparsers, common_options, output_options, quiet_option
from .progress import reporter


def register(commands: Subparsers) -> None:
    collect = commands.add_parser("collect", **about("collect"))
    collect.add_argument(
        "--batch",
        metavar="ID|last",
        help="only this batch (last: the one produced most recently in the namespace), its "
        "rows numbered 1..N in the table and csv (default: every batch, numbered by the "
        "namespace-wide attention position)",
    )
    collect.add_argument("--follow", action="store_true", help="keep printing new results")
    collect.add_argument(
        "--expect",
        type=int,
        metavar="N",
        help="wait until N results and dead letters have arrived: of the --batch if one is "
        "given, else of every batch in the namespace, old ones included (default: print what "
        "is there now)",
    )
    collect.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="with --expect: give up after S seconds, exit 4 (default: wait as long as it takes)",
    )
    collect.add_argument(
        "--drain",
        action="store_true",
        help="remove the results from Redis once printed (not with --batch)",
    )
    pictures.add_options(collect)
    quiet_option(collect)
    output_options(collect)
    common_options(collect)
    collect.set_defaults(handler=cmd_collect)


def cmd_collect(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if args.drain and args.batch is not None:
        # Results leave from the head of one list: taking one batch's would mean removing
        # others' from the middle (reordering), or dropping them unprinted.
        raise ConfigError("--drain takes every batch's results away: it cannot be given --batch")
    pictures.check(args)
    protocol = connect(settings)
    announce("collect", settings, args.quiet)
    outcomes = Outcomes(batch=resolve_batch(protocol, args.batch))
    first_row = None if outcomes.batch is None else 1
    if args.follow:
        return _follow(protocol, outcomes, args.output_format, out, args.drain, first_row)
    if args.expect is not None:
        with reporter(args.expect, quiet=args.quiet) as shown:
            wait_for(protocol, outcomes, args.expect, args.timeout, on_refresh=shown.update)
    else:
        outcomes.refresh(protocol)
    if pictures.wanted(args):
        return pictures.write(args, outcomes.results, out)
    out.write(render(attention_order(outcomes.results), args.output_format, first_row=first_row))
    if args.drain:
        out.flush()  # printed first, removed after: a failed write leaves them in Redis
        outcomes.discard_read(protocol)
    return EXIT_OK


def _follow(
    protocol: Protocol,
    outcomes: Outcomes,
    fmt: str,
    out: TextIO,
    drain: bool = False,
    first_row: int | None = None,
) -> int:
    """Print results as they arrive (each arrival in attention order), until interrupted;
    with ``drain``, remove each arrival from Redis once it is printed. With ``first_row``
    (one batch), rows are numbered on from it as printed: a result that arrives after one
    taken later (a longer task) gets the next number, not its rank in the batch."""
    header = fmt != "jsonl"
    fixed = None  # a table keeps the columns of its first arrival, under one header
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            wait_until(protocol, outcomes, lambda o: bool(o.results), None, tolerate_missed=True)
            arrival = attention_order(outcomes.results)
            if fmt == "table" and fixed is None:
                fixed = table_layout(arrival)
            out.write(render(arrival, fmt, header=header, fixed=fixed, first_row=first_row))
            if first_row is not None:
                first_row += len(arrival)
            out.flush()
            if drain:
                outcomes.discard_read(protocol)
            header = False
            outcomes.results.clear()  # printed: keep memory flat while following
            outcomes.dead.clear()
    return EXIT_OK
