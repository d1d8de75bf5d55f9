"""What every command does the same way: connect to Redis, read an instruction file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..config import Settings
from ..connection import check_reachable, make_client
from ..errors import InputError
from ..instructions import DEFAULT_MAX_WORK, InstructionError, Request, decode_source, parse
from ..protocol import Protocol


def connect(settings: Settings) -> Protocol:
    client = make_client(settings.url, settings.socket_timeout)
    check_reachable(client, settings.url)
    return Protocol(client, settings.keys)


def read_requests(
    path: str, fmt: str, max_difficulty: int, stdin: Any = None, max_work: int = DEFAULT_MAX_WORK
) -> list[Request]:
    """Parse and validate the whole file; InputError carries every bad line."""
    source = "<stdin>" if path == "-" else path
    try:
        data = (stdin or sys.stdin.buffer).read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return parse(decode_source(data, source), source, fmt, max_difficulty, max_work)
    except InstructionError as exc:
        raise InputError(str(exc)) from None
