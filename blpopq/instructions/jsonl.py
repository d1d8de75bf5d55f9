"""One line of the JSON Lines format: an object with the fields of a request."""

from __future__ import annotations

import json
from types import MappingProxyType

from ..tiers import Tier, parse_tier
from .fields import (
    check_field,
    valid_client,
    valid_count,
    valid_difficulty,
    valid_nonce,
    valid_prev,
)
from .model import USAGE, BadLine, Request, clip

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


def json_request(line: str, source: str, number: int, max_difficulty: int) -> Request | None:
    if not line.strip():
        return None
    obj = _json_object(line)
    op = obj.get("op")
    op = op.lower() if isinstance(op, str) else op
    problems = _json_key_problems(obj, op)
    if problems:
        raise BadLine(problems)
    assert isinstance(op, str)  # guaranteed by _json_key_problems
    tier = check_field(
        problems, lambda: parse_tier(clip(_json_str("tier", obj["tier"]))), Tier.COMUN
    )
    client = check_field(problems, lambda: valid_client(_json_str("client", obj["client"])), "")
    prev = check_field(problems, lambda: valid_prev("prev", _json_str("prev", obj["prev"])), "")
    difficulty = check_field(
        problems,
        lambda: valid_difficulty(_json_int("difficulty", obj["difficulty"]), max_difficulty),
        0,
    )
    count = check_field(problems, lambda: valid_count(_json_int("count", obj.get("count", 1))), 1)
    nonce: int | None = None
    if op == "verify":
        nonce = check_field(problems, lambda: valid_nonce(_json_int("nonce", obj["nonce"])), 0)
    if problems:
        raise BadLine(problems)
    return Request(tier, client, op, prev, difficulty, count, nonce, source, number)


def _json_object(line: str) -> dict[str, object]:
    try:
        value = json.loads(line, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as exc:
        if exc.pos == len(line) - len(line.lstrip()) and _is_tier(line.split()[0]):
            # Starts with a tier, not with JSON: a text-format line.
            message = "looks like the text format: use --input-format text (or auto)"
            raise BadLine([message]) from None
        raise BadLine([f"invalid JSON: {exc.msg} at column {exc.colno}"]) from None
    except ValueError as exc:
        # Either our duplicate-key refusal or int()'s 4300-digit guard, whose
        # message is a paragraph; neither is a real JSON syntax error.
        reason = str(exc) if str(exc).startswith("duplicate key") else "integer too long"
        raise BadLine([f"invalid JSON: {reason}"]) from None
    if not isinstance(value, dict):
        raise BadLine([f"expected a JSON object, got {_json_type(value)}"])
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
            raise ValueError(f"duplicate key {clip(key)!r}")
        obj[key] = value
    return obj


def _json_key_problems(obj: dict[str, object], op: object) -> list[str]:
    problems = [f"unknown key {clip(key)!r}" for key in obj if key not in _JSON_KEYS]
    if "op" not in obj:
        return [*problems, "missing key 'op'"]
    if op not in USAGE:
        return [*problems, f"unknown op {clip(json.dumps(obj['op']))}: expected mine or verify"]
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
    shown = clip(json.dumps(value, ensure_ascii=False))
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
    kind = "null" if value is None else kinds.get(type(value), "object")
    return f"{kind} {shown}"
