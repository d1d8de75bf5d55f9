"""One line of the text format: ``<tier> <client> <op> <args...>``."""

from __future__ import annotations

from ..tiers import Tier, parse_tier
from ..words import plural
from .fields import (
    check_field,
    plain_decimal,
    valid_client,
    valid_count,
    valid_difficulty,
    valid_nonce,
    valid_prev,
)
from .model import ARITY, USAGE, BadLine, Request, clip


def text_request(line: str, source: str, number: int, max_difficulty: int) -> Request | None:
    """The request on ``line``, or None for a blank or comment-only line."""
    fields = _strip_comment(line.split())
    if not fields:
        return None
    if fields[0].startswith("{"):
        # Checked as text, a JSON object only yields noise about tiers and ops.
        raise BadLine(["looks like JSON Lines: use --input-format jsonl (or auto)"])
    if len(fields) < 3:
        raise BadLine([f"expected <tier> <client> <op> ...; got {plural(len(fields), 'field')}"])
    problems: list[str] = []
    tier = check_field(problems, lambda: parse_tier(clip(fields[0])), Tier.COMUN)
    client = check_field(problems, lambda: valid_client(fields[1]), "")
    op, args = fields[2].lower(), fields[3:]
    if op not in USAGE:
        raise BadLine([*problems, f"unknown op {clip(fields[2])!r}: expected mine or verify"])
    if not ARITY[op][0] <= len(args) <= ARITY[op][1]:
        # The arguments cannot be matched to names, so checking them would only add noise.
        raise BadLine(
            [*problems, f"{op} takes {USAGE[op]}; got {plural(len(args), 'field')} after {op!r}"]
        )
    prev, difficulty, count, nonce = _text_args(problems, op, args, max_difficulty)
    if problems:
        raise BadLine(problems)
    return Request(tier, client, op, prev, difficulty, count, nonce, source, number)


def _text_args(
    problems: list[str], op: str, args: list[str], max_difficulty: int
) -> tuple[str, int, int, int | None]:
    """``(prev, difficulty, count, nonce)`` from the arguments after the op."""
    prev = check_field(problems, lambda: valid_prev("prev_hash", args[0]), "")
    if op == "verify":
        nonce = check_field(problems, lambda: valid_nonce(plain_decimal("nonce", args[1])), 0)
        difficulty = check_field(
            problems,
            lambda: valid_difficulty(plain_decimal("difficulty", args[2]), max_difficulty),
            0,
        )
        return prev, difficulty, 1, nonce
    difficulty = check_field(
        problems, lambda: valid_difficulty(plain_decimal("difficulty", args[1]), max_difficulty), 0
    )
    count = check_field(
        problems, lambda: valid_count(plain_decimal("count", args[2])) if args[2:] else 1, 1
    )
    return prev, difficulty, count, None


def _strip_comment(fields: list[str]) -> list[str]:
    # A "#" only starts a comment at the start of a field (i.e. after
    # whitespace), so a client such as "ana#2" stays a plain name.
    for index, field in enumerate(fields):
        if field.startswith("#"):
            return fields[:index]
    return fields
