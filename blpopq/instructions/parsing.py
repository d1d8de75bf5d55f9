"""Whole inputs: the format, the encoding, and every line checked."""

from __future__ import annotations

import codecs
from collections.abc import Callable

from ..pow import MAX_DIFFICULTY
from .jsonl import json_request
from .model import (
    DEFAULT_MAX_DIFFICULTY,
    DEFAULT_MAX_WORK,
    BadLine,
    InstructionError,
    LineError,
    Request,
    expected_work,
    truncate,
)
from .text import text_request


def parse(
    text: str,
    source: str,
    fmt: str = "auto",
    max_difficulty: int = DEFAULT_MAX_DIFFICULTY,
    max_work: int = DEFAULT_MAX_WORK,
) -> list[Request]:
    """Parse ``text`` as ``fmt``: "text", "jsonl", or "auto" (see :func:`detect_format`)."""
    if fmt == "auto":
        fmt = detect_format(text, source)
    if fmt == "text":
        return parse_text(text, source, max_difficulty, max_work)
    if fmt == "jsonl":
        return parse_jsonl(text, source, max_difficulty, max_work)
    raise ValueError(f"unknown instruction format {fmt!r}: expected text, jsonl or auto")


def detect_format(text: str, source: str) -> str:
    """The format "auto" means: jsonl for a name ending in ``.jsonl`` or a first non-blank
    line that starts with ``{``, text otherwise. No text line can start with ``{`` (it is
    never a tier), so the guess only turns a file that would fail wholesale into one that
    parses."""
    lines = text.removeprefix("\ufeff").split("\n")
    return format_of(next((line for line in lines if line.strip()), None), source)


def format_of(first_line: str | None, source: str) -> str:
    """detect_format's answer from the first non-blank line alone (None: there is none)."""
    if source.endswith(".jsonl"):
        return "jsonl"
    return "jsonl" if first_line is not None and first_line.lstrip().startswith("{") else "text"


def parse_text(
    text: str,
    source: str,
    max_difficulty: int = DEFAULT_MAX_DIFFICULTY,
    max_work: int = DEFAULT_MAX_WORK,
) -> list[Request]:
    return _parse_lines(text, source, "text", max_difficulty, max_work)


def parse_jsonl(
    text: str,
    source: str,
    max_difficulty: int = DEFAULT_MAX_DIFFICULTY,
    max_work: int = DEFAULT_MAX_WORK,
) -> list[Request]:
    return _parse_lines(text, source, "jsonl", max_difficulty, max_work)


def _spell(n: int) -> str:
    """2**40 rather than 1099511627776: limits are usually powers of two."""
    return f"2**{n.bit_length() - 1}" if n & (n - 1) == 0 else str(n)


def _check_work(request: Request, max_work: int) -> None:
    work = expected_work(request)
    if work > max_work:
        raise BadLine(
            [
                f"expected work count * 2**difficulty = {request.count} * 2**{request.difficulty}"
                f" = {work:.3g} attempts is above --max-work {_spell(max_work)}"
                " (BLPOPQ_MAX_WORK)"
            ]
        )


def decode_source(data: bytes, source: str) -> str:
    """Decode UTF-8 (dropping a leading BOM); every line with invalid bytes is reported."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    errors: list[LineError] = []
    # Split on b"\n" only: it never occurs inside a multi-byte UTF-8 sequence,
    # so line numbers match what an editor shows for the valid parts.
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            errors.append(_utf8_error(source, number, raw, exc))
    raise InstructionError(errors)


def _parse_lines(
    text: str, source: str, fmt: str, max_difficulty: int, max_work: int = DEFAULT_MAX_WORK
) -> list[Request]:
    parser = LineParser(source, fmt, max_difficulty, max_work)
    requests: list[Request] = []
    errors: list[LineError] = []
    # Split on "\n" only (not str.splitlines): form feeds, U+2028 and friends
    # must not shift line numbers away from what editors and grep report.
    for number, line in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        try:
            request = parser.parse(line, number)
        except InstructionError as bad:
            errors.extend(bad.errors)
            continue
        if request is not None:
            requests.append(request)
    if errors:
        raise InstructionError(errors)
    return requests


class LineParser:
    """Checks one line at a time, for inputs read a line at a time: produce streams its file
    through one of these instead of holding it whole."""

    def __init__(
        self,
        source: str,
        fmt: str,
        max_difficulty: int = DEFAULT_MAX_DIFFICULTY,
        max_work: int = DEFAULT_MAX_WORK,
    ) -> None:
        if isinstance(max_difficulty, bool) or not 0 <= max_difficulty <= MAX_DIFFICULTY:
            raise ValueError(f"max_difficulty must be between 0 and {MAX_DIFFICULTY}")
        if isinstance(max_work, bool) or max_work < 1:
            raise ValueError("max_work must be at least 1")
        if fmt not in _LINE_PARSERS:
            raise ValueError(f"unknown instruction format {fmt!r}: expected text or jsonl")
        self.source, self.fmt = source, fmt
        self._parse_line = _LINE_PARSERS[fmt]
        self._max_difficulty, self._max_work = max_difficulty, max_work

    def parse(self, line: str, number: int) -> Request | None:
        """The request on line ``number`` (None for a blank or comment-only line), or
        InstructionError with every problem of the line. A trailing CR is dropped."""
        line = line.rstrip("\r")
        try:
            request = self._parse_line(line, self.source, number, self._max_difficulty)
            if request is not None:
                _check_work(request, self._max_work)
        except BadLine as bad:
            shown = truncate(line)
            errors = [LineError(self.source, number, message, shown) for message in bad.messages]
            raise InstructionError(errors) from None
        return request

    def parse_bytes(self, raw: bytes, number: int) -> Request | None:
        """``parse`` for one undecoded line (with or without its LF): invalid UTF-8 is the
        line's error, and a BOM before line 1 is dropped."""
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        raw = raw.removesuffix(b"\n")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InstructionError([_utf8_error(self.source, number, raw, exc)]) from None
        return self.parse(line, number)


_LINE_PARSERS: dict[str, Callable[[str, str, int, int], Request | None]] = {
    "text": text_request,
    "jsonl": json_request,
}


def _utf8_error(source: str, number: int, raw: bytes, exc: UnicodeDecodeError) -> LineError:
    message = f"invalid UTF-8: byte 0x{raw[exc.start]:02x} at byte column {exc.start + 1}"
    shown = raw.decode("utf-8", errors="replace").rstrip("\r")
    return LineError(source, number, message, truncate(shown))
