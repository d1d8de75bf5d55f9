"""Parser for instruction files (plain text or JSON Lines).

Text format, one request per line (blank lines and ``#`` comments ignored)::

    <tier> <client> mine   <prev_hash> <difficulty> [<count>]
    <tier> <client> verify <prev_hash> <nonce> <difficulty>

JSONL format: one object per line with keys ``tier``, ``client``, ``op``,
``prev``, ``difficulty``, ``count`` (optional, mine) and ``nonce`` (verify).

The whole input is always validated, and every bad line is reported at once,
so a user fixes a file in one round trip instead of one error per run.
The module is pure: it never reads files; callers pass text (see
:func:`decode_source` for bytes).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from .pow import MAX_DIFFICULTY, is_valid_prev
from .tiers import Tier, parse_tier
from .words import plural

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
_SHOWN_CHARS = 120
#: How much of a single offending token is quoted inside a message.
_TOKEN_CHARS = 40

# Read-only views: the tables are shared by every parse and must never change.
_USAGE = MappingProxyType(
    {
        "mine": "<prev_hash> <difficulty> [<count>]",
        "verify": "<prev_hash> <nonce> <difficulty>",
    }
)
_ARITY = MappingProxyType({"mine": (2, 3), "verify": (3, 3)})
_JSON_REQUIRED = MappingProxyType(
    {
        "mine": frozenset({"tier", "client", "op", "prev", "difficulty"}),
        "verify": frozenset({"tier", "client", "op", "prev", "difficulty", "nonce"}),
    }
)
_JSON_ALLOWED = MappingProxyType(
    {
        "mine": _JSON_REQUIRED["mine"] | {"count"},
        "verify": _JSON_REQUIRED["verify"],
    }
)
_JSON_KEYS = _JSON_ALLOWED["mine"] | _JSON_ALLOWED["verify"]

_T = TypeVar("_T")


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
    text: str  # the offending line, already truncated to _SHOWN_CHARS

    def __str__(self) -> str:
        shown = self.text if self.text.isprintable() else repr(self.text)[1:-1]
        return f"{self.source}:{self.line}: {self.message} ({shown})"


class InstructionError(ValueError):
    """One or more bad lines; ``str()`` gives one ``source:line: message`` per line."""

    def __init__(self, errors: Sequence[LineError]) -> None:
        self.errors: tuple[LineError, ...] = tuple(errors)
        super().__init__("\n".join(str(error) for error in self.errors))

    def __reduce__(self) -> tuple[type[InstructionError], tuple[tuple[LineError, ...]]]:
        # Rebuild from the LineErrors, not from the joined message string.
        return InstructionError, (self.errors,)


class _BadLine(Exception):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(messages)
        self.messages = messages


# --------------------------------------------------------------------------- entry points


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
    if source.endswith(".jsonl"):
        return "jsonl"
    for line in text.removeprefix("\ufeff").split("\n"):
        if line.strip():
            return "jsonl" if line.lstrip().startswith("{") else "text"
    return "text"


def parse_text(
    text: str,
    source: str,
    max_difficulty: int = DEFAULT_MAX_DIFFICULTY,
    max_work: int = DEFAULT_MAX_WORK,
) -> list[Request]:
    return _parse_lines(text, source, max_difficulty, _text_request, max_work)


def parse_jsonl(
    text: str,
    source: str,
    max_difficulty: int = DEFAULT_MAX_DIFFICULTY,
    max_work: int = DEFAULT_MAX_WORK,
) -> list[Request]:
    return _parse_lines(text, source, max_difficulty, _json_request, max_work)


def expected_work(request: Request) -> int:
    """Attempts a request is expected to cost: ``count * 2**difficulty`` for mine, 1 for verify."""
    return request.count * 2**request.difficulty if request.op == "mine" else 1


def _spell(n: int) -> str:
    """2**40 rather than 1099511627776: limits are usually powers of two."""
    return f"2**{n.bit_length() - 1}" if n & (n - 1) == 0 else str(n)


def _check_work(request: Request, max_work: int) -> None:
    work = expected_work(request)
    if work > max_work:
        raise _BadLine(
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
            message = f"invalid UTF-8: byte 0x{raw[exc.start]:02x} at byte column {exc.start + 1}"
            shown = raw.decode("utf-8", errors="replace").rstrip("\r")
            errors.append(LineError(source, number, message, _truncate(shown)))
    raise InstructionError(errors)


# --------------------------------------------------------------------------- line loop


def _parse_lines(
    text: str,
    source: str,
    max_difficulty: int,
    parse_line: Callable[[str, str, int, int], Request | None],
    max_work: int = DEFAULT_MAX_WORK,
) -> list[Request]:
    if isinstance(max_difficulty, bool) or not 0 <= max_difficulty <= MAX_DIFFICULTY:
        raise ValueError(f"max_difficulty must be between 0 and {MAX_DIFFICULTY}")
    if isinstance(max_work, bool) or max_work < 1:
        raise ValueError("max_work must be at least 1")
    text = text.removeprefix("\ufeff")
    requests: list[Request] = []
    errors: list[LineError] = []
    # Split on "\n" only (not str.splitlines): form feeds, U+2028 and friends
    # must not shift line numbers away from what editors and grep report.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        try:
            request = parse_line(line, source, number, max_difficulty)
            if request is not None:
                _check_work(request, max_work)
        except _BadLine as bad:
            shown = _truncate(line)
            errors.extend(LineError(source, number, msg, shown) for msg in bad.messages)
            continue
        if request is not None:
            requests.append(request)
    if errors:
        raise InstructionError(errors)
    return requests


# --------------------------------------------------------------------------- text lines


def _text_request(line: str, source: str, number: int, max_difficulty: int) -> Request | None:
    """The request on ``line``, or None for a blank or comment-only line."""
    fields = _strip_comment(line.split())
    if not fields:
        return None
    if fields[0].startswith("{"):
        # Checked as text, a JSON object only yields noise about tiers and ops.
        raise _BadLine(["looks like JSON Lines: use --input-format jsonl (or auto)"])
    if len(fields) < 3:
        raise _BadLine([f"expected <tier> <client> <op> ...; got {plural(len(fields), 'field')}"])
    problems: list[str] = []
    tier = _check(problems, lambda: parse_tier(_clip(fields[0])), Tier.COMUN)
    client = _check(problems, lambda: _client(fields[1]), "")
    op, args = fields[2].lower(), fields[3:]
    if op not in _USAGE:
        raise _BadLine([*problems, f"unknown op {_clip(fields[2])!r}: expected mine or verify"])
    if not _ARITY[op][0] <= len(args) <= _ARITY[op][1]:
        # The arguments cannot be matched to names, so checking them would only add noise.
        raise _BadLine(
            [*problems, f"{op} takes {_USAGE[op]}; got {plural(len(args), 'field')} after {op!r}"]
        )
    prev, difficulty, count, nonce = _text_args(problems, op, args, max_difficulty)
    if problems:
        raise _BadLine(problems)
    return Request(tier, client, op, prev, difficulty, count, nonce, source, number)


def _text_args(
    problems: list[str], op: str, args: list[str], max_difficulty: int
) -> tuple[str, int, int, int | None]:
    """``(prev, difficulty, count, nonce)`` from the arguments after the op."""
    prev = _check(problems, lambda: _prev("prev_hash", args[0]), "")
    if op == "verify":
        nonce = _check(problems, lambda: _nonce(_decimal("nonce", args[1])), 0)
        difficulty = _check(
            problems, lambda: _difficulty(_decimal("difficulty", args[2]), max_difficulty), 0
        )
        return prev, difficulty, 1, nonce
    difficulty = _check(
        problems, lambda: _difficulty(_decimal("difficulty", args[1]), max_difficulty), 0
    )
    count = _check(problems, lambda: _count(_decimal("count", args[2])) if args[2:] else 1, 1)
    return prev, difficulty, count, None


def _strip_comment(fields: list[str]) -> list[str]:
    # A "#" only starts a comment at the start of a field (i.e. after
    # whitespace), so a client such as "ana#2" stays a plain name.
    for index, field in enumerate(fields):
        if field.startswith("#"):
            return fields[:index]
    return fields


def _decimal(name: str, token: str) -> int:
    # isdigit() alone admits "٣" and "²"; int() alone admits "+5", " 5", "1_0".
    if not (token.isascii() and token.isdigit()):
        raise ValueError(f"{name} must be a whole number in plain digits, got {_clip(token)!r}")
    if len(token.lstrip("0")) > 30:
        # Far beyond every limit, and keeps int() clear of its 4300-digit guard.
        raise ValueError(f"{name} {_clip(token)} is too large")
    return int(token)


# --------------------------------------------------------------------------- JSON lines


def _json_request(line: str, source: str, number: int, max_difficulty: int) -> Request | None:
    if not line.strip():
        return None
    obj = _json_object(line)
    op = obj.get("op")
    op = op.lower() if isinstance(op, str) else op
    problems = _json_key_problems(obj, op)
    if problems:
        raise _BadLine(problems)
    assert isinstance(op, str)  # guaranteed by _json_key_problems
    tier = _check(problems, lambda: parse_tier(_clip(_json_str("tier", obj["tier"]))), Tier.COMUN)
    client = _check(problems, lambda: _client(_json_str("client", obj["client"])), "")
    prev = _check(problems, lambda: _prev("prev", _json_str("prev", obj["prev"])), "")
    difficulty = _check(
        problems,
        lambda: _difficulty(_json_int("difficulty", obj["difficulty"]), max_difficulty),
        0,
    )
    count = _check(problems, lambda: _count(_json_int("count", obj.get("count", 1))), 1)
    nonce: int | None = None
    if op == "verify":
        nonce = _check(problems, lambda: _nonce(_json_int("nonce", obj["nonce"])), 0)
    if problems:
        raise _BadLine(problems)
    return Request(tier, client, op, prev, difficulty, count, nonce, source, number)


def _json_object(line: str) -> dict[str, object]:
    try:
        value = json.loads(line, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as exc:
        if exc.pos == len(line) - len(line.lstrip()) and _is_tier(line.split()[0]):
            # Starts with a tier, not with JSON: a text-format line.
            message = "looks like the text format: use --input-format text (or auto)"
            raise _BadLine([message]) from None
        raise _BadLine([f"invalid JSON: {exc.msg} at column {exc.colno}"]) from None
    except ValueError as exc:
        # Either our duplicate-key refusal or int()'s 4300-digit guard, whose
        # message is a paragraph; neither is a real JSON syntax error.
        reason = str(exc) if str(exc).startswith("duplicate key") else "integer too long"
        raise _BadLine([f"invalid JSON: {reason}"]) from None
    if not isinstance(value, dict):
        raise _BadLine([f"expected a JSON object, got {_json_type(value)}"])
    return value


def _is_tier(word: str) -> bool:
    try:
        parse_tier(word)
    except ValueError:
        return False
    return True


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # json.loads silently keeps the last duplicate; a request with two
    # difficulties is ambiguous, so refuse it.
    obj: dict[str, object] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {_clip(key)!r}")
        obj[key] = value
    return obj


def _json_key_problems(obj: dict[str, object], op: object) -> list[str]:
    problems = [f"unknown key {_clip(key)!r}" for key in obj if key not in _JSON_KEYS]
    if "op" not in obj:
        return [*problems, "missing key 'op'"]
    if op not in _USAGE:
        return [*problems, f"unknown op {_clip(json.dumps(obj['op']))}: expected mine or verify"]
    assert isinstance(op, str)
    problems += [f"missing key {key!r}" for key in sorted(_JSON_REQUIRED[op] - obj.keys())]
    misplaced = sorted((_JSON_KEYS - _JSON_ALLOWED[op]) & obj.keys())
    problems += [f"{op} does not take {key!r}" for key in misplaced]
    return problems


def _json_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a JSON string, got {_json_type(value)}")
    return value


def _json_int(name: str, value: object) -> int:
    # bool is an int subclass in Python, but true/false are not numbers in JSON.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a JSON integer, got {_json_type(value)}")
    return value


def _json_type(value: object) -> str:
    shown = _clip(json.dumps(value, ensure_ascii=False))
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
    kind = "null" if value is None else kinds.get(type(value), "object")
    return f"{kind} {shown}"


# --------------------------------------------------------------------------- field checks


def _check(problems: list[str], check: Callable[[], _T], placeholder: _T) -> _T:
    """Run one field check; on failure record the message and return ``placeholder``.

    The placeholder lets the remaining fields of the same line still be checked,
    so one pass reports every problem on the line.
    """
    try:
        return check()
    except ValueError as exc:
        problems.append(str(exc))
        return placeholder


def _client(text: str) -> str:
    if not 1 <= len(text) <= MAX_CLIENT_LENGTH:
        raise ValueError(f"client must be 1-{MAX_CLIENT_LENGTH} characters, got {len(text)}")
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise ValueError("client must not contain whitespace or control characters")
    return text


def _prev(name: str, text: str) -> str:
    if len(text) != 64:
        raise ValueError(f"{name} must be 64 hexadecimal digits, got {len(text)}")
    if not is_valid_prev(text):
        bad = next(ch for ch in text if ch not in "0123456789abcdefABCDEF")
        raise ValueError(f"{name} must be 64 hexadecimal digits, found {bad!r}")
    return text.lower()


def _difficulty(value: int, maximum: int) -> int:
    if value < 0:
        raise ValueError(f"difficulty must be >= 0, got {_clip(str(value))}")
    if value > maximum:
        raise ValueError(f"difficulty {_clip(str(value))} is above the maximum {maximum}")
    return value


def _count(value: int) -> int:
    if value < 1:
        raise ValueError(f"count must be >= 1, got {_clip(str(value))}")
    if value > MAX_COUNT:
        raise ValueError(f"count {_clip(str(value))} is above the maximum {MAX_COUNT}")
    return value


def _nonce(value: int) -> int:
    if value < 0:
        raise ValueError(f"nonce must be >= 0, got {_clip(str(value))}")
    if value >= NONCE_LIMIT:
        raise ValueError(f"nonce {_clip(str(value))} is too large: it must be below 2**64")
    return value


def _clip(text: str) -> str:
    return text if len(text) <= _TOKEN_CHARS else text[: _TOKEN_CHARS - 1] + "…"


def _truncate(line: str) -> str:
    return line if len(line) <= _SHOWN_CHARS else line[: _SHOWN_CHARS - 1] + "…"
