"""Looking after dead letters: ``blpopq dead list|show|requeue|purge``.

A dead letter is picked by its task id, or by ``@N``, its place (from 1) in ``{ns}:dead`` as
``dead list`` shows it: the only handle on a letter whose task had no readable id. Every
change removes letters by their exact stored value (LREM), never by place, so a letter added
or removed meanwhile by someone else is never hit by mistake.

Requeue puts the task back at the *tail* of its tier, registered like a new task (see
``Protocol.requeue_dead``), without its ``history``: the count of worker deaths that made a
poison task starts again. Only a task that is a JSON object with a string ``id`` can be
requeued; anything else cannot be run or fenced, and can only be purged.

Selection and rendering are pure; the functions that change Redis return what they did as
lines for the command to print.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import tables
from .errors import InputError
from .jsontext import compact_json
from .protocol import Protocol
from .tables import Column
from .tiers import Tier

REASON_WIDTH = 60


@dataclass(frozen=True)
class Letter:
    index: int  # place in {ns}:dead when read, from 1
    raw: str  # exactly as stored: what LREM matches
    body: dict[str, Any] | None  # None: the letter itself is not a JSON object

    @property
    def id(self) -> str | None:
        return _str(self.body, "id")

    @property
    def tier(self) -> str | None:
        return _str(self.body, "tier")

    @property
    def batch(self) -> str | None:
        return _str(self.body, "batch")

    @property
    def reason(self) -> str:
        return _str(self.body, "reason") or "(not a dead letter blpopq wrote)"

    @property
    def at(self) -> float | None:
        value = (self.body or {}).get("at")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return None

    @property
    def handle(self) -> str:
        """How to name this letter on the command line: its id, else @N."""
        return self.id or f"@{self.index}"


def _str(body: dict[str, Any] | None, name: str) -> str | None:
    value = (body or {}).get(name)
    return value if isinstance(value, str) else None


def parse(raws: Sequence[str]) -> list[Letter]:
    letters = []
    for index, raw in enumerate(raws, start=1):
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        letters.append(Letter(index, raw, body if isinstance(body, dict) else None))
    return letters


def load(protocol: Protocol) -> list[Letter]:
    return parse(protocol.dead_letters())


def select(letters: Sequence[Letter], selectors: Sequence[str]) -> list[Letter]:
    """The letters named by task ids (every letter with that id) or @N, each once, in list
    order. InputError naming every selector that matches nothing."""
    chosen: dict[int, Letter] = {}
    unknown = []
    for selector in selectors:
        if selector.startswith("@") and selector[1:].isdigit():
            n = int(selector[1:])
            found = [letter for letter in letters if letter.index == n]
        else:
            found = [letter for letter in letters if letter.id == selector]
        if not found:
            unknown.append(selector)
        chosen.update((letter.index, letter) for letter in found)
    if unknown:
        raise InputError(
            f"no dead letter {', '.join(unknown)} ({_count(len(letters))} listed; see `dead list`)"
        )
    return [chosen[i] for i in sorted(chosen)]


# --- requeue ------------------------------------------------------------------------------


class NotRequeueable(ValueError):
    """This letter's task cannot be run again; the message says why."""


@dataclass(frozen=True)
class Plan:
    letter: Letter
    tier: Tier
    task_id: str
    task: str  # the task JSON to push: the dead one without its history


def plan(letter: Letter) -> Plan:
    """What requeueing ``letter`` would push where; NotRequeueable if it cannot be."""
    if letter.body is None:
        raise NotRequeueable("the dead letter is not JSON")
    raw = letter.body.get("raw")
    try:
        task = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        task = None
    if not isinstance(task, dict) or not isinstance(task.get("id"), str) or not task["id"]:
        raise NotRequeueable("its task is not a JSON object with an id")
    # The letter's tier is the list the task was found in; the task's own is a fallback.
    for candidate in (letter.tier, task.get("tier")):
        try:
            tier = Tier(candidate)
            break
        except ValueError:
            continue
    else:
        raise NotRequeueable("neither the letter nor its task names a known tier")
    task.pop("history", None)
    body = compact_json(task)
    return Plan(letter, tier, task["id"], body)


@dataclass
class Done:
    """What a command did (stdout) and what it could not do (stderr; exit 2 if any)."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # stderr, not a failure


def plans_for(letters: Sequence[Letter], skip_unrequeueable: bool) -> tuple[list[Plan], Done]:
    """Every letter's plan. With ``skip_unrequeueable`` (``--all``) the others are noted and
    left in place; otherwise they are problems and nothing should be done."""
    plans, done = [], Done()
    for letter in letters:
        try:
            plans.append(plan(letter))
        except NotRequeueable as exc:
            message = f"cannot requeue {letter.handle}: {exc}"
            (done.notes if skip_unrequeueable else done.problems).append(message)
    return plans, done


def requeue(protocol: Protocol, plans: Sequence[Plan], done: Done) -> Done:
    for p in plans:
        outcome = protocol.requeue_dead(p.letter.raw, p.tier, p.task_id, p.task)
        if outcome == "requeued":
            done.lines.append(f"requeued {p.task_id} at the tail of {p.tier.value}")
        elif outcome == "open":
            done.problems.append(
                f"cannot requeue {p.task_id}: a task with this id is queued or running"
            )
        else:
            done.problems.append(f"cannot requeue {p.task_id}: the dead letter is gone already")
    count = sum(line.startswith("requeued ") for line in done.lines)
    done.lines.append(f"requeued {_count(count)}")
    return done


def purge(protocol: Protocol, letters: Sequence[Letter]) -> Done:
    removed = protocol.purge_dead([letter.raw for letter in letters])
    done = Done()
    if letters and len(letters) <= 20:
        done.lines += [f"purged {letter.handle}" for letter in letters]
    done.lines.append(f"purged {_count(removed)}")
    if removed < len(letters):
        gone = len(letters) - removed
        done.notes.append(f"{gone} {'was' if gone == 1 else 'were'} removed by someone else")
    return done


# --- rendering ----------------------------------------------------------------------------


def _count(n: int) -> str:
    return f"{n} dead letter{'' if n == 1 else 's'}"


def _clip(text: str, width: int) -> str:
    return tables.clip(" ".join(text.split()), width)


def _when(at: float | None) -> str:
    if at is None:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


#: ``dead list``'s columns: the reason and ids are clipped first, then the batch and time are
#: left out, so the list fits the terminal (``dead show`` prints every letter in full).
LIST_COLUMNS = (
    Column("#"),
    Column("id", shrink_to=16),
    Column("tier"),
    Column("batch", shrink_to=12, drop=1),
    Column("at", drop=2),
    Column("reason", shrink_to=24),
)


def render_list(
    letters: Sequence[Letter], reason_width: int = REASON_WIDTH, width: int | None = None
) -> str:
    """One line per letter, fitted to ``width`` cells (default: the terminal's, 80 when
    unknown); each reason clipped to ``reason_width`` cells, or fewer to fit."""
    if not letters:
        return "no dead letters\n"
    rows = [
        (
            f"@{letter.index}",
            letter.id or "-",
            letter.tier or "-",
            letter.batch or "-",
            _when(letter.at),
            _clip(letter.reason, reason_width),
        )
        for letter in letters
    ]
    width = tables.terminal_width() if width is None else width
    return "\n".join([*tables.render(LIST_COLUMNS, rows, width), _count(len(letters))]) + "\n"


def render_show(letters: Sequence[Letter]) -> str:
    """Each letter as pretty JSON (as stored, if it is not JSON), one after another."""
    parts = [
        json.dumps(letter.body, ensure_ascii=False, indent=2) if letter.body else letter.raw
        for letter in letters
    ]
    return "\n".join(parts) + "\n"
