"""Checks of one field each: the value, or ValueError with a message that names the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..pow import is_valid_prev
from .model import MAX_CLIENT_LENGTH, MAX_COUNT, NONCE_LIMIT, clip

_T = TypeVar("_T")


def check_field(problems: list[str], check: Callable[[], _T], placeholder: _T) -> _T:
    """Run one field check; on failure record the message and return ``placeholder``.

    The placeholder lets the remaining fields of the same line still be checked,
    so one pass reports every problem on the line.
    """
    try:
        return check()
    except ValueError as exc:
        problems.append(str(exc))
        return placeholder


def valid_client(text: str) -> str:
    if not 1 <= len(text) <= MAX_CLIENT_LENGTH:
        raise ValueError(f"client must be 1-{MAX_CLIENT_LENGTH} characters, got {len(text)}")
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise ValueError("client must not contain whitespace or control characters")
    return text


def valid_prev(name: str, text: str) -> str:
    if len(text) != 64:
        raise ValueError(f"{name} must be 64 hexadecimal digits, got {len(text)}")
    if not is_valid_prev(text):
        bad = next(ch for ch in text if ch not in "0123456789abcdefABCDEF")
        raise ValueError(f"{name} must be 64 hexadecimal digits, found {bad!r}")
    return text.lower()


def valid_difficulty(value: int, maximum: int) -> int:
    if value < 0:
        raise ValueError(f"difficulty must be >= 0, got {clip(str(value))}")
    if value > maximum:
        raise ValueError(f"difficulty {clip(str(value))} is above the maximum {maximum}")
    return value


def valid_count(value: int) -> int:
    if value < 1:
        raise ValueError(f"count must be >= 1, got {clip(str(value))}")
    if value > MAX_COUNT:
        raise ValueError(f"count {clip(str(value))} is above the maximum {MAX_COUNT}")
    return value


def valid_nonce(value: int) -> int:
    if value < 0:
        raise ValueError(f"nonce must be >= 0, got {clip(str(value))}")
    if value >= NONCE_LIMIT:
        raise ValueError(f"nonce {clip(str(value))} is too large: it must be below 2**64")
    return value


def plain_decimal(name: str, token: str) -> int:
    # isdigit() alone admits "٣" and "²"; int() alone admits "+5", " 5", "1_0".
    if not (token.isascii() and token.isdigit()):
        raise ValueError(f"{name} must be a whole number in plain digits, got {clip(token)!r}")
    if len(token.lstrip("0")) > 30:
        # Far beyond every limit, and keeps int() clear of its 4300-digit guard.
        raise ValueError(f"{name} {clip(token)} is too large")
    return int(token)
