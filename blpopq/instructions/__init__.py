"""Parser for instruction files (plain text or JSON Lines).

Text format, one request per line (blank lines and ``#`` comments ignored)::

    <tier> <client> mine   <prev_hash> <difficulty> [<count>]
    <tier> <client> verify <prev_hash> <nonce> <difficulty>

JSONL format: one object per line with keys ``tier``, ``client``, ``op``,
``prev``, ``difficulty``, ``count`` (optional, mine) and ``nonce`` (verify).

The whole input is always validated, and every bad line is reported at once,
so a user fixes a file in one round trip instead of one error per run.
The package is pure: it never reads files; callers pass text (see
:func:`decode_source` for bytes) or one line at a time (:class:`LineParser`).

model.py holds the parsed request and the errors, fields.py one check per field,
text.py and jsonl.py one line of each format, parsing.py whole inputs.
"""

from .model import (
    DEFAULT_MAX_DIFFICULTY,
    DEFAULT_MAX_WORK,
    MAX_CLIENT_LENGTH,
    MAX_COUNT,
    NONCE_LIMIT,
    InstructionError,
    LineError,
    Request,
    expected_work,
)
from .parsing import (
    LineParser,
    decode_source,
    detect_format,
    format_of,
    parse,
    parse_jsonl,
    parse_text,
)

__all__ = [
    "DEFAULT_MAX_DIFFICULTY",
    "DEFAULT_MAX_WORK",
    "MAX_CLIENT_LENGTH",
    "MAX_COUNT",
    "NONCE_LIMIT",
    "InstructionError",
    "LineError",
    "LineParser",
    "Request",
    "decode_source",
    "detect_format",
    "expected_work",
    "format_of",
    "parse",
    "parse_jsonl",
    "parse_text",
]
