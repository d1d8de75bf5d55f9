"""collect's --summary and --plot: the results read once, then numbers per tier and client,
or a picture of the timeline, instead of the attention order. Kept beside collect.py so that
module keeps one job (reading and printing results) and matplotlib stays an optional extra."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from types import ModuleType
from typing import TextIO

from .. import summary
from ..errors import EXIT_OK, ConfigError
from ..outcomes import Result

#: What --plot can write, by file name suffix.
PLOT_SUFFIXES = (".svg", ".png")
PLOT_INSTALL = "pip install 'blpopq[plot]'"


def add_options(collect: argparse.ArgumentParser) -> None:
    collect.add_argument(
        "--summary",
        action="store_true",
        help="per tier and per client: tasks, wait p50/p99/max, run time p50/max, attempts, "
        "statuses (--format table|jsonl|csv) instead of the results",
    )
    collect.add_argument(
        "--plot",
        metavar="FILE",
        help="draw the timeline (a lane per worker, a bar per task) and the waiting tasks per "
        "tier into FILE.svg or FILE.png; prints the file's name (needs blpopq[plot])",
    )


def check(args: argparse.Namespace) -> None:
    """ConfigError (exit 2) for option mixes that make no sense, before Redis is asked."""
    if args.summary and args.plot:
        raise ConfigError("give --summary or --plot, not both")
    wanted = "--summary" if args.summary else "--plot" if args.plot else None
    if wanted is None:
        return
    for flag, given in (("--follow", args.follow), ("--drain", args.drain)):
        if given:
            raise ConfigError(f"{wanted} reads the results once: it cannot be given {flag}")
    if args.plot and Path(args.plot).suffix.lower() not in PLOT_SUFFIXES:
        raise ConfigError(f"--plot {args.plot}: the file name must end in .svg or .png")
    if args.plot:
        _plot_module()  # no matplotlib: say so before waiting for results


def wanted(args: argparse.Namespace) -> bool:
    return bool(args.summary or args.plot)


def write(args: argparse.Namespace, results: list[Result], out: TextIO) -> int:
    if args.summary:
        out.write(summary.render(summary.summarize(results), args.output_format))
        return EXIT_OK
    plot = _plot_module()
    try:
        plot.write_timeline(results, args.plot)
    except OSError as exc:
        raise ConfigError(f"--plot {args.plot}: cannot write: {exc.strerror or exc}") from None
    out.write(f"{args.plot}\n")
    return EXIT_OK


def _plot_module() -> ModuleType:
    """blpopq.plot, which imports matplotlib; ConfigError with the install line without it."""
    try:
        return importlib.import_module("blpopq.plot")
    except ImportError as exc:
        raise ConfigError(f"--plot needs matplotlib ({exc.msg}): {PLOT_INSTALL}") from None
