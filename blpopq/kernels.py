"""Which proof-of-work kernel runs the search: the native extension or the hashlib reference.

``blpopq._kernel`` (built from ``_kernel.c`` where a compiler exists; see setup.py) offers
paths chosen at run time: ``sha-ni`` (the x86 SHA extensions, two nonces interleaved),
``sha-ni-1`` (one stream, kept for measurement) and ``portable`` (plain C). Without it,
``hashlib`` (``blpopq.pow.search``) runs everything. Every kernel returns exactly what
``pow.search`` returns; tests/unit/test_kernels.py holds them to it.

The ``kernel`` setting picks one: ``auto`` the best available, ``native`` the best native path
(an error where the extension is missing), ``portable`` the portable C path, ``hashlib``.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from . import pow

SETTINGS = ("auto", "native", "portable", "hashlib")

#: The native search takes uint64 nonces; ranges beyond go to the hashlib kernel.
NATIVE_LIMIT = 2**64

#: Nonces per search call, so that mine() polls its stop flag about every 25 ms at each
#: kernel's rate on the reference machine (sha-ni ~37 M/s, sha-ni-1 ~23 M/s, portable
#: ~5 M/s, hashlib ~2.4 M/s): a stop request or a lost lease is seen well within 50 ms,
#: while a call still amortises its Python overhead over a million hashes.
CHUNKS = {"sha-ni": 2**20, "sha-ni-1": 2**19, "portable": 2**17, "hashlib": 2**16}


class KernelUnavailable(Exception):
    """The requested kernel cannot run here; the message says why."""


@dataclass(frozen=True)
class Kernel:
    name: str
    search: pow.SearchFn
    chunk: int


HASHLIB = Kernel("hashlib", pow.search, CHUNKS["hashlib"])


def native_module() -> tuple[ModuleType | None, str]:
    """The extension, or None and the reason it cannot be used."""
    try:
        module = importlib.import_module("blpopq._kernel")
    except ImportError as exc:
        return None, f"the native extension blpopq._kernel is not built ({exc})"
    return module, ""


def native_paths() -> tuple[str, ...]:
    """The native paths this CPU runs, best first (empty without the extension)."""
    module, _ = native_module()
    return tuple(module.paths()) if module is not None else ()


def by_name(name: str) -> Kernel:
    """The kernel ``name`` ("sha-ni", "sha-ni-1", "portable" or "hashlib")."""
    if name == "hashlib":
        return HASHLIB
    module, reason = native_module()
    if module is None:
        raise KernelUnavailable(reason)
    if name not in module.paths():
        raise KernelUnavailable(f"kernel path {name!r} does not run on this CPU")
    return Kernel(name, _native_search(module, name), CHUNKS[name])


def select_kernel(setting: str) -> Kernel:
    """The kernel a ``kernel`` setting means on this machine (KernelUnavailable if none)."""
    if setting not in SETTINGS:
        raise KernelUnavailable(f"kernel must be one of {', '.join(SETTINGS)}, not {setting!r}")
    if setting == "hashlib":
        return HASHLIB
    if setting == "portable":
        return by_name("portable")
    paths = native_paths()
    if paths:
        return by_name(paths[0])
    if setting == "native":
        raise KernelUnavailable(native_module()[1])
    return HASHLIB


def measure_rate(kernel: Kernel, budget: float = 0.1) -> float:
    """Attempts per second of ``kernel`` on one core of this machine, from searches that find
    nothing (difficulty 255: no nonce in range meets it) for about ``budget`` seconds of wall
    time. A rough figure, for estimates: another load on the machine lowers it."""
    prev = "0" * 64
    tried = 0
    started = time.perf_counter()
    while True:
        kernel.search(prev, 255, tried, tried + kernel.chunk)
        tried += kernel.chunk
        elapsed = time.perf_counter() - started
        if elapsed >= budget:
            return tried / elapsed


def fallback_note(setting: str) -> str | None:
    """One line for the daemon's log when ``auto`` falls back to hashlib, else None."""
    if setting != "auto" or native_paths():
        return None
    return f"{native_module()[1]}: using the hashlib kernel (several times slower)"


def _native_search(module: ModuleType, path: str) -> pow.SearchFn:
    native: Callable[[bytes, int, int, int, str], tuple[int, bytes] | None] = module.search

    def search(prev: str, difficulty: int, start: int, stop: int) -> tuple[int, bytes] | None:
        prev = pow.search_args(prev, difficulty, start)
        if start >= stop:
            return None
        if start < NATIVE_LIMIT:
            # The extension's range is inclusive, so the last nonce 2**64 - 1 is reachable.
            last = min(stop, NATIVE_LIMIT) - 1
            found = native(prev.encode("ascii"), difficulty, start, last, path)
            if found is not None or stop <= NATIVE_LIMIT:
                return found
            start = NATIVE_LIMIT
        return pow.search(prev, difficulty, start, stop)

    search.__qualname__ = f"native_search[{path}]"
    return search
