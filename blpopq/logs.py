"""Log output for the commands: human lines by default, one JSON object per line for shippers.

Only the cli package calls ``configure``; library code just logs, with stable fields passed
through ``extra`` (``task_id``, ``tier``, ``client``, ``worker``) so both formats can show them.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TextIO

#: The ``extra`` fields blpopq's log calls may carry; both formats print those present.
FIELDS = ("task_id", "tier", "client", "worker")
FORMATS = ("human", "json")


class HumanFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(f"{k}={getattr(record, k)}" for k in FIELDS if hasattr(record, k))
        return f"{line} {fields}" if fields else line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body = {
            "ts": round(record.created, 6),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        body.update({k: getattr(record, k) for k in FIELDS if hasattr(record, k)})
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False, default=str)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is at each record, not as it was at setup: a live
    progress display replaces it for a while, so that log lines scroll above the display."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always sys.stderr


def configure(level: str, fmt: str = "human") -> None:
    """Send every log record to stderr in ``fmt``; replaces handlers set up before."""
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else HumanFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
