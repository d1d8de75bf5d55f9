"""``main`` and the console scripts, and the one place where an exception becomes an exit
status and a line on stderr (the codes themselves live beside the exceptions, errors.py)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import redis

from .. import logs
from ..errors import EXIT_INTERRUPTED, EXIT_OK, BlpopqError
from ..redis_errors import as_blpopq_error
from . import acl, cancel, collect, config, dead, produce, run, schema, status, web
from .parser import Handler, Register, log_sources, settings_from
from .parser import build_parser as _build_parser

#: Every command group, in the order ``blpopq --help`` lists them. A new group is one module
#: with a ``register`` and one name here.
GROUPS: tuple[Register, ...] = (
    produce.register,
    run.register,
    collect.register,
    status.register,
    cancel.register,
    dead.register,
    config.register,
    schema.register,
    web.register,
    acl.register,
)


def build_parser() -> argparse.ArgumentParser:
    return _build_parser(GROUPS)


def main(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    environ = dict(os.environ if environ is None else environ)
    try:
        logging_ = log_sources(args, environ)
        logs.configure(logging_["log_level"][0], logging_["log_format"][0])
        settings = settings_from(args, environ)
        handler: Handler = args.handler
        status = handler(args, settings, sys.stdout)
        sys.stdout.flush()  # here, not at exit: a closed pipe must be caught below
        return status
    except BrokenPipeError:
        return _stdout_closed()
    except BlpopqError as exc:
        return _fail(args.command, exc)
    except redis.RedisError as exc:
        return _fail(args.command, as_blpopq_error(exc, "Redis failed"))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _stdout_closed() -> int:
    """The reader went away (``blpopq status --watch | head``): that ends the output, and is
    no error. Python would flush stdout again at exit and complain on stderr, so stdout now
    points at /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_OK


def _fail(command: str, error: BlpopqError) -> int:
    sys.stderr.write(f"blpopq {command}: error: {error}\n")
    return error.exit_code


def _alias(command: str) -> int:
    return main([command, *sys.argv[1:]])


def produce_main() -> int:
    return _alias("produce")


def daemon_main() -> int:
    return _alias("daemon")


def collect_main() -> int:
    return _alias("collect")


def run_main() -> int:
    return _alias("run")


def status_main() -> int:
    return _alias("status")
