"""The wire format as shipped: JSON Schemas of what travels through Redis, and the enqueue
any client may call (README "Wire format").

Pure: the texts come from package data (``schemas/*.json``, ``lua/*.lua``); sending them to
Redis is protocol.py's. The Lua that makes an enqueue lossless is written once
(``registering.lua``, shared with blpopq's own producer, and ``submitting.lua``) and shipped
two ways: as the function library ``blpopq`` for ``FUNCTION LOAD`` / ``FCALL`` (Redis >= 7)
and as one script for ``EVAL`` (Redis 6.2, or where functions are not allowed).
"""

from __future__ import annotations

from importlib import resources

#: The schemas `blpopq schema` prints: a task on a tier list, a result, a dead letter.
SCHEMAS = ("task", "result", "dead")
#: The function library's name, and the enqueue function it registers.
LIBRARY = "blpopq"
ENQUEUE_FUNCTION = "blpopq_enqueue"

_SUBMIT = ("registering.lua", "submitting.lua")


def schema(name: str) -> str:
    """The JSON Schema ``name`` (one of SCHEMAS), as shipped."""
    if name not in SCHEMAS:
        raise ValueError(f"no schema {name!r}: one of {', '.join(SCHEMAS)}")
    folder = resources.files(__package__).joinpath("schemas")
    return folder.joinpath(f"{name}.json").read_text("utf-8")


def lua(*names: str) -> str:
    """The concatenated text of the scripts ``names`` (shared functions first)."""
    folder = resources.files(__package__).joinpath("lua")
    return "".join(folder.joinpath(name).read_text("utf-8") for name in names)


def enqueue_script() -> str:
    """The lossless enqueue for ``EVAL script 5 <keys> <tier> <task>...``."""
    return lua(*_SUBMIT, "submit.lua")


def enqueue_library() -> str:
    """The function library for ``FUNCTION LOAD``: ``FCALL blpopq_enqueue 5 ...``."""
    return f"#!lua name={LIBRARY}\n" + lua(*_SUBMIT, "library.lua")
