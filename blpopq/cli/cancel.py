"""blpopq cancel BATCH|--all: end the waiting tasks of a batch as `cancelled` results."""

from __future__ import annotations

import argparse
from typing import TextIO

from .. import cancelling
from ..config import Settings
from ..errors import EXIT_OK, InputError
from ..words import plural
from .common import connect, resolve_batch
from .helptext import about
from .parser import Subparsers, common_options


def register(commands: Subparsers) -> None:
    cancel = commands.add_parser("cancel", **about("cancel"))
    cancel.add_argument(
        "batch",
        nargs="?",
        metavar="BATCH",
        help="the batch id produce printed, or last: the batch produced most recently",
    )
    cancel.add_argument("--all", action="store_true", help="the waiting tasks of every batch")
    common_options(cancel)
    cancel.set_defaults(handler=cmd_cancel)


def cmd_cancel(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if (args.batch is None) == (not args.all):
        raise InputError("give a BATCH or --all, not both" if args.all else "give a BATCH or --all")
    protocol = connect(settings)
    batch = None if args.all else resolve_batch(protocol, str(args.batch))
    count = cancelling.cancel(protocol, batch, keep=settings.keep_results)
    scope = "of every batch" if batch is None else f"of batch {batch}"
    out.write(f"cancelled {plural(count, 'waiting task')} {scope}\n")
    return EXIT_OK
