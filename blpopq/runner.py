"""What running a task means: a Task in, a Result out. No Redis here."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from . import pow
from .kernels import HASHLIB, Kernel
from .messages import Task
from .outcomes import Result


def run_task(
    task: Task,
    *,
    position: int,
    worker: str,
    max_attempts: int,
    should_stop: Callable[[], bool] | None = None,
    kernel: Kernel = HASHLIB,
    started_at: float | None = None,
) -> Result:
    """Run ``task`` on ``kernel`` and describe the outcome. A bug or bad value inside the run
    becomes a result with status ``error``; only pow.Cancelled (the worker is stopping)
    escapes. ``started_at``: when the run began, if before this call (early.py: a run that
    goes on from its first chunk keeps its start)."""
    started = time.time() if started_at is None else started_at
    try:
        outcome = _outcome(task, max_attempts, should_stop, kernel)
    except pow.Cancelled:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the task is reported, not fatal
        outcome = {
            "status": "error",
            "blocks": (),
            "attempts": 0,
            "error": f"{type(exc).__name__}: {exc}",
        }
    blocks = outcome["blocks"]
    last = blocks[-1] if blocks and outcome["status"] != "exhausted" else None
    return Result(
        position=position,
        id=task.id,
        batch=task.batch,
        source=task.source,
        line=task.line,
        tier=task.tier.value,
        client=task.client,
        op=task.op,
        status=outcome["status"],
        prev=task.prev,
        difficulty=task.difficulty,
        nonce=last["nonce"] if last else None,
        hash=last["hash"] if last else None,
        blocks=tuple(blocks),
        attempts=outcome["attempts"],
        worker=worker,
        enqueued_at=task.enqueued_at,
        started_at=started,
        finished_at=time.time(),
        error=outcome.get("error"),
    )


def _outcome(
    task: Task, max_attempts: int, should_stop: Callable[[], bool] | None, kernel: Kernel
) -> dict[str, Any]:
    if task.op == "verify":
        assert task.nonce is not None  # Task.from_json guarantees it for verify
        valid, digest = pow.verify(task.prev, task.nonce, task.difficulty)
        block = {"nonce": task.nonce, "hash": digest}
        return {"status": "valid" if valid else "invalid", "blocks": (block,), "attempts": 1}
    mined = pow.mine(
        task.prev,
        task.difficulty,
        task.count,
        max_attempts=max_attempts,
        should_stop=should_stop,
        chunk=kernel.chunk,
        search=kernel.search,
        resume=task.progress,
    )
    blocks = tuple({"nonce": b.nonce, "hash": b.hash} for b in mined.blocks)
    return {"status": mined.status, "blocks": blocks, "attempts": mined.attempts}
