"""blpopq: a priority task queue on bare Redis lists, with a pool of worker daemons.

The public library surface is listed in ``__all__``; nothing runs at import.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .client import Queue
from .config import Settings
from .errors import BlpopqError, InputError, RedisUnavailable, WaitTimeout
from .instructions import InstructionError, Request, parse, parse_jsonl, parse_text
from .messages import Task
from .outcomes import DeadLetter, Result
from .producer import EnqueueReport
from .tiers import TIERS, Tier

__all__ = [
    "TIERS",
    "BlpopqError",
    "DeadLetter",
    "EnqueueReport",
    "InputError",
    "InstructionError",
    "Queue",
    "RedisUnavailable",
    "Request",
    "Result",
    "Settings",
    "Task",
    "Tier",
    "WaitTimeout",
    "__version__",
    "parse",
    "parse_jsonl",
    "parse_text",
]
