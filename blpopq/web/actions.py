"""The dashboard's actions: requeue or purge dead letters, cancel a batch's waiting tasks.

Each is the terminal command's own code (``blpopq dead requeue|purge``, ``blpopq cancel``)
behind a JSON body, and answers what that command would print: ``(HTTP status, lines)``.
Who may call them (the token, the origin) is the app's business, not this module's.
"""

from __future__ import annotations

from typing import Any

from .. import cancelling, deadletters
from ..errors import InputError
from ..protocol import Protocol

OK, BAD_REQUEST, CONFLICT = 200, 400, 409


def _selected(protocol: Protocol, body: dict[str, Any]) -> list[deadletters.Letter]:
    """The letters ``body`` names: ``{"all": true}`` or ``{"ids": ["ID" or "@N", ...]}``."""
    ids, every = body.get("ids"), body.get("all") is True
    valid_ids = isinstance(ids, list) and ids and all(isinstance(i, str) for i in ids)
    if every == bool(valid_ids):
        raise InputError('give {"ids": ["ID" or "@N", ...]} or {"all": true}, not both')
    letters = deadletters.load(protocol)
    return letters if every else deadletters.select(letters, ids)  # type: ignore[arg-type]


def dead(protocol: Protocol, action: str, body: dict[str, Any]) -> tuple[int, list[str]]:
    """``action``: requeue or purge."""
    try:
        chosen = _selected(protocol, body)
    except InputError as exc:
        return BAD_REQUEST, [str(exc)]
    if action == "purge":
        done = deadletters.purge(protocol, chosen)
        return OK, [*done.lines, *done.notes]
    plans, done = deadletters.plans_for(chosen, skip_unrequeueable=body.get("all") is True)
    if done.problems:
        return BAD_REQUEST, [*done.problems, "nothing was requeued"]
    done = deadletters.requeue(protocol, plans, done)
    return (CONFLICT if done.problems else OK), [*done.lines, *done.notes, *done.problems]


def cancel(protocol: Protocol, body: dict[str, Any], keep: int = 0) -> tuple[int, list[str]]:
    """``{"batch": "ID" or "last"}``: its waiting tasks end as ``cancelled`` results."""
    batch = body.get("batch")
    if not isinstance(batch, str) or not batch:
        return BAD_REQUEST, ['give {"batch": "ID" or "last"}']
    resolved = protocol.last_batch() if batch == "last" else batch
    if resolved is None:
        return BAD_REQUEST, ["'last': no batch has been produced in this namespace yet"]
    count = cancelling.cancel(protocol, resolved, keep=keep)
    return OK, [f"cancelled {count} waiting task{'' if count == 1 else 's'} of batch {resolved}"]
