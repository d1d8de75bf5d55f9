"""JSON read from Redis, safely: any client can push any bytes, and whatever blpopq builds
from what it reads (a result, a letter, a log line) must be writable back as UTF-8.

Pure: no I/O. ``DecodeError`` carries a reason fit for a dead letter.
"""

from __future__ import annotations

import json
import re
from typing import Any


class DecodeError(ValueError):
    """A task in Redis is not one blpopq can run; the message is the dead-letter reason."""


#: A \uD800-\uDFFF escape: JSON can spell a lone UTF-16 surrogate, which Python then holds
#: in a str that no UTF-8 write (a result, a letter, a log line) can encode.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


#: Compact JSON as blpopq writes it (UTF-8 text, no spaces). One encoder made once: a
#: json.dumps call with options builds a new one each time, a sixth of a result's encoding.
compact_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def load_json(raw: bytes | str, what: str) -> Any:
    """``raw`` parsed as JSON that is text all through, or DecodeError saying why not.

    Anything read from Redis goes through here: its bytes must be UTF-8, its nesting within
    the decoder's limit, and its strings free of lone surrogates, so that whatever is built
    from it can be written back (one such id once crashed every process that read it)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise DecodeError(f"{what} is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise DecodeError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise DecodeError(f"{what} nests deeper than the JSON decoder's limit") from None
    # `in` first: a plain substring test, far cheaper than the search on every task read.
    if "\\u" in text and _SURROGATE_ESCAPE.search(text) and not _writable(body):
        raise DecodeError(f"{what} holds a lone UTF-16 surrogate (\\uD800-\\uDFFF): not text")
    return body


def _writable(body: Any) -> bool:
    """True when ``body`` encodes to UTF-8 (only checked when an escape hints otherwise:
    valid surrogate pairs decode to ordinary characters)."""
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return False
    return True


def json_object(raw: bytes | str, what: str) -> dict[str, Any] | None:
    """``raw`` parsed, if a JSON object; None if other JSON; DecodeError if not JSON at all."""
    body = load_json(raw, what)
    return body if isinstance(body, dict) else None
