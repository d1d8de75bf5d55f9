"""What an instruction file holds once parsed, what a bad line reports, and the limits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

from ..tiers import Tier

DEFAULT_MAX_DIFFICULTY = 32
#: The largest expected work of one mine request, ``count * 2**difficulty`` attempts (a
#: request exactly at it is allowed): 2**40 is about 3 days of one core at the hashlib
#: kernel's rate, a few hours at the native one. Count 1000 at difficulty 32 (~4.4e12
#: attempts, weeks of a core) is refused like any bad line.
DEFAULT_MAX_WORK = 2**40
MAX_COUNT = 1000
MAX_CLIENT_LENGTH = 64
NONCE_LIMIT = 2**64  # exclusive

#: How much of an offending line is echoed back in an error.
SHOWN_CHARS = 120
#: How much of a single offending token is quoted inside a message.
TOKEN_CHARS = 40

# Read-only views: the tables are shared by every parse and must never change.
USAGE = MappingProxyType(
    {
        "mine": "<prev_hash> <difficulty> [<count>]",
        "verify": "<prev_hash> <nonce> <difficulty>",
    }
)
ARITY = MappingProxyType({"mine": (2, 3), "verify": (3, 3)})


@dataclass(frozen=True)
class Request:
    tier: Tier
    client: str
    op: str
    prev: str
    difficulty: int
    count: int
    nonce: int | None
    source: str
    line: int


@dataclass(frozen=True)
class LineError:
    source: str
    line: int
    message: str
    text: str  # the offending line, already truncated to SHOWN_CHARS

    def __str__(self) -> str:
        shown = self.text if self.text.isprintable() else repr(self.text)[1:-1]
        return f"{self.source}:{self.line}: {self.message} ({shown})"


class InstructionError(ValueError):
    """One or more bad lines; ``str()`` gives one ``source:line: message`` per line, and a
    last line counting the ``more`` problems that were found but not kept."""

    def __init__(self, errors: Sequence[LineError], more: int = 0) -> None:
        self.errors: tuple[LineError, ...] = tuple(errors)
        self.more = more
        lines = [str(error) for error in self.errors]
        if more:
            lines.append(f"... and {more} more problems on later lines (not shown)")
        super().__init__("\n".join(lines))

    def __reduce__(self) -> tuple[type[InstructionError], tuple[tuple[LineError, ...], int]]:
        # Rebuild from the LineErrors, not from the joined message string.
        return InstructionError, (self.errors, self.more)


class BadLine(Exception):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(messages)
        self.messages = messages


def expected_work(request: Request) -> int:
    """Attempts a request is expected to cost: ``count * 2**difficulty`` for mine, 1 for verify."""
    return request.count * 2**request.difficulty if request.op == "mine" else 1


def clip(text: str) -> str:
    return text if len(text) <= TOKEN_CHARS else text[: TOKEN_CHARS - 1] + "…"


def truncate(line: str) -> str:
    return line if len(line) <= SHOWN_CHARS else line[: SHOWN_CHARS - 1] + "…"
