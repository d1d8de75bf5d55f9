"""blpopq schema NAME: the wire format as shipped, for producers and readers in any language:
the JSON Schemas of a task, a result and a dead letter, and the Lua of the lossless enqueue
(the EVAL script, or the function library to FUNCTION LOAD by hand)."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import TextIO

from .. import wire
from ..config import Settings
from ..errors import EXIT_OK
from .helptext import about
from .parser import Subparsers

#: What each NAME prints.
_TEXTS: dict[str, Callable[[], str]] = {
    **{name: functools.partial(wire.schema, name) for name in wire.SCHEMAS},
    "script": wire.enqueue_script,
    "library": wire.enqueue_library,
}


def register(commands: Subparsers) -> None:
    schema = commands.add_parser("schema", **about("schema"))
    schema.add_argument(
        "name",
        choices=tuple(_TEXTS),
        help="task, result or dead: a JSON Schema; script: the enqueue for EVAL; "
        "library: the same as a function library for FUNCTION LOAD",
    )
    # No Redis and no settings here; main still resolves them (from the environment only).
    schema.set_defaults(handler=cmd_schema, config=None)


def cmd_schema(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    text = _TEXTS[args.name]()
    out.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK
