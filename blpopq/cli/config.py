"""blpopq config: every setting, its effective value (secrets masked) and where it came from."""

from __future__ import annotations

import argparse
import os
from dataclasses import fields
from typing import TextIO

from ..config import Settings, resolve
from ..connection import mask_url
from ..errors import EXIT_OK
from .parser import Subparsers, common_options, enqueue_options, setting_sources, worker_options


def register(commands: Subparsers) -> None:
    config = commands.add_parser("config", help="print the effective configuration")
    worker_options(config)
    enqueue_options(config)
    common_options(config)
    config.set_defaults(handler=cmd_config)


def cmd_config(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Every setting, its effective value (secrets masked) and where it came from."""
    sources = resolve(*setting_sources(args, dict(os.environ)))
    for field in fields(Settings):
        value = getattr(settings, field.name)
        if field.name == "redis_url":
            value = mask_url(settings.url) + ("" if settings.redis_url else " (run: embedded)")
        origin = sources.get(field.name, (None, "default"))[1]
        out.write(f"{field.name:<15} {value!s:<40} {origin}\n")
    return EXIT_OK
