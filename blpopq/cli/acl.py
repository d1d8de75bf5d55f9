"""blpopq acl ROLE: the ACL rules a role needs on one namespace, and no more (access.py)."""

from __future__ import annotations

import argparse
from typing import TextIO

from ..access import ROLES, acl_rules
from ..config import Settings
from ..errors import EXIT_OK
from .helptext import about
from .parser import Subparsers, common_options


def register(commands: Subparsers) -> None:
    acl = commands.add_parser("acl", **about("acl"))
    acl.add_argument("role", choices=tuple(ROLES), metavar="ROLE", help=", ".join(ROLES))
    common_options(acl)
    acl.set_defaults(handler=cmd_acl)


def cmd_acl(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    out.write(acl_rules(args.role, settings.namespace) + "\n")
    return EXIT_OK
