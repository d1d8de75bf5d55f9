"""Starting a task while its claim is on the way: the claim's round trip overlaps the run.

An idle worker is handed its task by BLPOP and must then claim it (claim.lua) before the
task is its own: one more round trip, about a third of an idle pickup. Rather than wait it
out, the worker sends the claim, runs the task while the reply travels, and reads the reply
after. This is safe because a task is pure: nothing of a run leaves the worker until its
outcome is settled, and only a confirmed claim's outcome is settled.

- At most one chunk of nonces (the kernel's ``chunk``) runs before the reply is read: a
  claim refused ('stale', 'dead') is learnt within one chunk, and the work thrown away.
- The claim confirms the very task (same bytes, same id, a plain task): the run's start
  time is kept, its place in the attention order filled in from the claim, and a run cut
  at its first chunk goes on from there (pow.Progress), finding what one run would.
- Anything else (a duplicate, an unreadable item, a task with no id, whose id the claim
  draws): the early run is forgotten and the item handled as the claim says.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

from .jsontext import DecodeError
from .messages import Task
from .outcomes import Result
from .pow import Cancelled
from .records import Taken, TakenKind
from .tiers import Tier

#: Runs ``task`` (position unknown yet) until it ends or ``should_stop()`` says stop
#: (raising pow.Cancelled); ``started`` is its start time.
RunFn = Callable[[Task, Callable[[], bool], float], Result]


@dataclass(frozen=True)
class Ahead:
    """How far a task got before its claim was confirmed."""

    task: Task  # with the progress made, when the run was cut (``result`` None)
    started: float
    result: Result | None  # the whole run, when it ended before the reply was read


class EarlyStart:
    """The run of one popped item while its claim is on the way (``__call__``), and what of
    it a confirmed claim keeps (``ahead_for``)."""

    def __init__(self, tier: Tier, raw: bytes, run: RunFn, stop: Callable[[], bool]) -> None:
        self.tier, self.raw = tier, raw
        self._run, self._stop = run, stop
        self._ahead: Ahead | None = None

    def __call__(self) -> None:
        try:
            # No key: a task without an id is given one by its claim, so it waits for it.
            task = Task.from_json(self.raw, tier=self.tier, seen_at=time.time())
        except DecodeError:
            return  # the claim says what it is; its dead letter is written as ever
        started, polls = time.time(), [0]

        def one_chunk() -> bool:
            polls[0] += 1
            return polls[0] > 1 or self._stop()

        try:
            self._ahead = Ahead(task, started, self._run(task, one_chunk, started))
        except Cancelled as cut:
            self._ahead = Ahead(dataclasses.replace(task, progress=cut.progress), started, None)

    def ahead_for(self, taken: Taken) -> Ahead | None:
        """What the early run did, if ``taken`` (the claim's reply) is the task it ran."""
        ahead = self._ahead
        if ahead is None or taken.kind is not TakenKind.TASK:
            return None
        if (taken.tier, taken.raw, taken.task_id) != (self.tier, self.raw, ahead.task.id):
            return None
        if ahead.result is not None:
            return dataclasses.replace(
                ahead, result=dataclasses.replace(ahead.result, position=taken.position)
            )
        return ahead
