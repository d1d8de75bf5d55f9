"""How counts and items are named in what blpopq prints and logs: ``1 request``, ``2
requests``; ``task b.3``, or ``an item without an id`` where none could be read (never
``task None``). Pure."""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 worker``, ``0 workers``, ``2 workers``; ``nouns`` for an irregular plural."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def item_name(task_id: str | None) -> str:
    """A task by its id, or what a foreign or unreadable item without one is called."""
    return "an item without an id" if task_id is None else f"task {task_id}"
