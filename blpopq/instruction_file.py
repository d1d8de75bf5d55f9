"""Reading an instruction file in bounded memory, for produce and run.

The file (or standard input) is read once, a line at a time: each line is checked as it
comes (every bad line is reported, and then nothing is enqueued), and each good request is
written, compactly, to a private temporary spool of its tier. Enqueueing then reads the
spools highest tier first, so the producer holds one chunk at a time whatever the size of
the file, and what is enqueued is exactly what was checked: a file changed, or a pipe
drained, after the check cannot change it. The spools are unnamed temporary files
(``tempfile.TemporaryFile``, in ``$TMPDIR``), gone when closed or when the process dies.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

from .instructions import (
    DEFAULT_MAX_WORK,
    InstructionError,
    LineError,
    LineParser,
    Request,
    expected_work,
    format_of,
)
from .tiers import TIERS, Tier

#: Bad lines reported in full; the rest are counted (a million bad lines would otherwise
#: hold their messages in memory only to flood the terminal).
MAX_REPORTED = 1000


@dataclass
class Heavy:
    """Mine requests whose expected work is above a threshold: the first few, and all."""

    named: list[Request] = field(default_factory=list)
    count: int = 0
    work: int = 0


class CheckedFile:
    """Every request of a checked instruction file, by tier, in file order (``in_tier``),
    with its number among the file's requests; ``len()`` is how many there are."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.counts: dict[Tier, int] = {tier: 0 for tier in TIERS}
        self.heavy = Heavy()
        self._spools: dict[Tier, IO[str]] = {}
        self._total = 0

    def __len__(self) -> int:
        return self._total

    def __enter__(self) -> CheckedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for spool in self._spools.values():
            spool.close()
        self._spools.clear()

    def add(self, request: Request) -> None:
        """Spool one good request, numbered after the ones before it."""
        self._total += 1
        spool = self._spools.get(request.tier)
        if spool is None:
            # Closed by close(): the spool lives as long as this object, not a block.
            spool = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
            self._spools[request.tier] = spool
        spool.write(_spooled(self._total, request))
        self.counts[request.tier] += 1

    def in_tier(self, tier: Tier) -> Iterator[tuple[int, Request]]:
        """(number in file order, request) of every request of ``tier``, in file order."""
        spool = self._spools.get(tier)
        if spool is None:
            return
        spool.flush()
        spool.seek(0)
        for line in spool:
            yield _unspooled(line, tier, self.source)


def read_checked(
    path: str,
    fmt: str,
    max_difficulty: int,
    max_work: int = DEFAULT_MAX_WORK,
    heavy_above: int | None = None,
    stdin: BinaryIO | None = None,
) -> CheckedFile:
    """Check every line of ``path`` (``-``: ``stdin``) and spool its requests; OSError if it
    cannot be read, InstructionError with the bad lines (the first MAX_REPORTED of them).
    ``heavy_above``: the expected work above which a request is noted in ``heavy``."""
    source = "<stdin>" if path == "-" else path
    checked = CheckedFile(source)
    try:
        with contextlib.ExitStack() as stack:
            raw: BinaryIO = (
                stdin if path == "-" and stdin else stack.enter_context(Path(path).open("rb"))
            )
            lines = _numbered(raw)
            head = _leading_blank(lines)
            fmt = fmt if fmt != "auto" else _format(head, source)
            parser = LineParser(source, fmt, max_difficulty, max_work)
            errors, more = _check_lines(parser, head, lines, checked, heavy_above)
    except BaseException:
        checked.close()
        raise
    if errors:
        checked.close()
        raise InstructionError(errors, more=more)
    return checked


def _check_lines(
    parser: LineParser,
    head: list[tuple[int, bytes]],
    rest: Iterable[tuple[int, bytes]],
    checked: CheckedFile,
    heavy_above: int | None,
) -> tuple[list[LineError], int]:
    """Parse every line into ``checked``; the bad lines reported, and how many more."""
    errors: list[LineError] = []
    more = 0
    for number, raw in _chained(head, rest):
        try:
            request = parser.parse_bytes(raw, number)
        except InstructionError as bad:
            room = MAX_REPORTED - len(errors)
            errors.extend(bad.errors[:room])
            more += max(0, len(bad.errors) - room)
            continue
        if request is None or errors:
            continue  # once a line is bad nothing is enqueued: only keep checking
        checked.add(request)
        if heavy_above is not None and expected_work(request) > heavy_above:
            _note_heavy(checked.heavy, request)
    return errors, more


def _chained(
    head: list[tuple[int, bytes]], rest: Iterable[tuple[int, bytes]]
) -> Iterator[tuple[int, bytes]]:
    yield from head
    yield from rest


def _note_heavy(heavy: Heavy, request: Request, named: int = 5) -> None:
    heavy.count += 1
    heavy.work += expected_work(request)
    if len(heavy.named) < named:
        heavy.named.append(request)


def _numbered(raw: BinaryIO) -> Iterator[tuple[int, bytes]]:
    # Lines end at b"\n" only, as the text parser counts them (not at form feeds and such).
    return enumerate(raw, start=1)


def _leading_blank(lines: Iterator[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """The lines up to and including the first non-blank one (for the format's guess)."""
    head = []
    for number, raw in lines:
        head.append((number, raw))
        if raw.strip():
            break
    return head


def _format(head: list[tuple[int, bytes]], source: str) -> str:
    first = head[-1][1] if head and head[-1][1].strip() else None
    text = None if first is None else first.decode("utf-8", errors="replace").lstrip("\ufeff")
    return format_of(text, source)


# A request per spool line, its fields between tabs: no field can hold a tab or a line end
# (clients are refused with whitespace or control characters; the rest are hex or digits).
def _spooled(number: int, r: Request) -> str:
    nonce = "" if r.nonce is None else r.nonce
    return f"{number}\t{r.client}\t{r.op}\t{r.prev}\t{r.difficulty}\t{r.count}\t{nonce}\t{r.line}\n"


def _unspooled(line: str, tier: Tier, source: str) -> tuple[int, Request]:
    number, client, op, prev, difficulty, count, nonce, at = line.rstrip("\n").split("\t")
    request = Request(
        tier, client, op, prev, int(difficulty), int(count), int(nonce) if nonce else None,
        source, int(at),
    )  # fmt: skip
    return int(number), request
