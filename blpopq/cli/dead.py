"""blpopq dead list|show|requeue|purge: look at dead letters, run them again, or delete them."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from .. import deadletters
from ..config import Settings
from ..errors import EXIT_OK, InputError
from .common import connect
from .helptext import about
from .parser import Subparsers, common_options

_ID_HELP = "task id, or @N as `dead list` shows"


def register(commands: Subparsers) -> None:
    dead = commands.add_parser("dead", **about("dead"))
    dead.set_defaults(handler=cmd_dead)
    actions = dead.add_subparsers(dest="dead_command", required=True, metavar="ACTION")
    listing = _action(actions, "list", "id, tier, batch, when and why of each letter")
    common_options(listing)
    show = _action(actions, "show", "the full dead letters, as pretty JSON")
    show.add_argument("ids", nargs="+", metavar="ID", help=_ID_HELP)
    common_options(show)
    requeue = _action(
        actions,
        "requeue",
        "run dead tasks again: back at the tail of their tier, registered like new tasks, "
        "their history of worker deaths cleared",
    )
    purge = _action(actions, "purge", "delete dead letters for good")
    for parser in (requeue, purge):
        parser.add_argument("ids", nargs="*", metavar="ID", help=_ID_HELP)
        parser.add_argument("--all", action="store_true", help="every dead letter")
        common_options(parser)


def _action(actions: Subparsers, name: str, text: str) -> argparse.ArgumentParser:
    """A ``dead`` action whose --help describes it too (argparse shows ``help`` only in the
    list of actions)."""
    return actions.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")


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
