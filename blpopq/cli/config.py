"""blpopq config: every setting, its effective value (secrets masked) and where it came from."""

from __future__ import annotations

import argparse
import os
from dataclasses import fields
from typing import TextIO

from ..config import Settings, resolve
from ..connection import mask_url
from ..errors import EXIT_OK
from .helptext import about
from .parser import (
    Subparsers,
    common_options,
    enqueue_options,
    log_sources,
    setting_sources,
    worker_options,
)


def register(commands: Subparsers) -> None:
    config = commands.add_parser("config", **about("config"))
    worker_options(config)
    enqueue_options(config)
    common_options(config)
    config.set_defaults(handler=cmd_config)


def cmd_config(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Every setting, its effective value (secrets masked) and where it came from; the worker
    count as it resolves on this machine; then the logging options and the config file."""
    environ = dict(os.environ)
    sources = resolve(*setting_sources(args, environ))
    rows: list[tuple[str, object, str]] = []
    for field in fields(Settings):
        value = getattr(settings, field.name)
        origin = sources.get(field.name, (None, "default"))[1]
        if field.name == "redis_url":
            value = mask_url(settings.url) + ("" if settings.redis_url else " (run: embedded)")
        elif field.name == "workers" and not settings.workers:
            value = settings.worker_count
            origin += " (0: the CPUs this process may use)"
        rows.append((field.name, value, origin))
    rows += [(name, value, origin) for name, (value, origin) in log_sources(args, environ).items()]
    if args.config:
        origin = "flag" if environ.get("BLPOPQ_CONFIG") != args.config else "env BLPOPQ_CONFIG"
        rows.append(("config", args.config, origin))
    for name, value, origin in rows:
        out.write(f"{name:<15} {value!s:<40} {origin}\n")
    return EXIT_OK
