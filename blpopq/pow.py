"""SHA-256 proof of work.

``H(prev, n)`` is the SHA-256 of the ASCII bytes of ``prev`` (64 lower-case hex
digits) immediately followed by the decimal digits of ``n`` (no leading zeros,
``n >= 0``), so ``printf '%s%s' PREV N | sha256sum`` reproduces it.  A hash
meets difficulty ``d`` when its first ``d`` bits are zero.

Every function here lower-cases ``prev`` before hashing, so there is exactly one
``H`` no matter how the caller spelled the hex.

The module is pure: no I/O, no logging, no module-level mutable state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashlib import _Hash

#: What every kernel's search does (see blpopq.kernels): the smallest qualifying nonce in
#: ``[start, stop)`` with its digest, or None.
SearchFn = Callable[[str, int, int, int], "tuple[int, bytes] | None"]

MAX_DIFFICULTY = 256

#: Nonces tried per block before giving up.  At the default maximum difficulty
#: of 32 each nonce succeeds with probability 2**-32, so the chance that 2**36
#: nonces all fail is (1 - 2**-32)**(2**36) ~ e**-16 ~ 1e-7: exhaustion means
#: "absurdly unlucky", not "normal slow job".  The cap exists so that a
#: difficulty far above what the operator intended still ends, instead of
#: pinning a core forever.
DEFAULT_MAX_ATTEMPTS = 2**36

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")

# Nonces >= 100 are hashed as <digits of n // 100> + <two digits>.  The
# two-digit tails are precomputed so the hot loop formats no integers, and the
# prefix hash state is built once per hundred nonces instead of per nonce.
_TAILS: tuple[bytes, ...] = tuple(b"%02d" % i for i in range(100))


@dataclass(frozen=True)
class Block:
    nonce: int
    hash: str


@dataclass(frozen=True)
class MineOutcome:
    status: str
    blocks: tuple[Block, ...]
    attempts: int


@dataclass(frozen=True)
class Progress:
    """How far a mine run got: the blocks it finished, every hash it computed (``attempts``),
    and the next nonce of the block it was on (all below it were hashed and rejected). A run
    resumed from it finds exactly what an uninterrupted run would."""

    blocks: tuple[Block, ...] = ()
    attempts: int = 0
    next_nonce: int = 0


_NO_PROGRESS = Progress()  # a run from the start (frozen: shared by every such run)


class Cancelled(Exception):
    """Raised by :func:`mine` when ``should_stop()`` returned True, with the progress made."""

    def __init__(self, progress: Progress) -> None:
        super().__init__(f"mining cancelled after {progress.attempts} attempts")
        self.progress = progress

    @property
    def attempts(self) -> int:
        return self.progress.attempts

    def __reduce__(self) -> tuple[type[Cancelled], tuple[Progress]]:
        # The default reduce would rebuild from the message string, losing the progress
        # when the exception crosses a process boundary.
        return Cancelled, (self.progress,)


def is_valid_prev(prev: str) -> bool:
    return len(prev) == 64 and _HEX_DIGITS.issuperset(prev)


def _normalise_prev(prev: str) -> str:
    if not isinstance(prev, str) or not is_valid_prev(prev):
        raise ValueError("prev must be 64 hexadecimal digits")
    return prev.lower()


def _check_difficulty(difficulty: int) -> None:
    # bool is an int subclass; True as a difficulty is certainly a caller bug.
    if isinstance(difficulty, bool) or not 0 <= difficulty <= MAX_DIFFICULTY:
        raise ValueError(f"difficulty must be between 0 and {MAX_DIFFICULTY}, got {difficulty!r}")


def _check_nonce(nonce: int) -> None:
    if isinstance(nonce, bool) or nonce < 0:
        raise ValueError(f"nonce must be >= 0, got {nonce!r}")


def _target(difficulty: int) -> bytes:
    """Digests strictly below this 32-byte string have ``difficulty`` leading zero bits.

    Only valid for difficulty >= 1: for 0 the bound would be 2**256, which does
    not fit in 32 bytes (and every digest qualifies anyway).
    """
    return (1 << (256 - difficulty)).to_bytes(32, "big")


def pow_hash(prev: str, nonce: int) -> bytes:
    """The digest ``H(prev, nonce)``, computed the obvious way (reference implementation)."""
    prev = _normalise_prev(prev)
    _check_nonce(nonce)
    return hashlib.sha256(f"{prev}{nonce}".encode("ascii")).digest()


def meets_difficulty(digest: bytes, difficulty: int) -> bool:
    _check_difficulty(difficulty)
    if len(digest) != 32:
        raise ValueError(f"digest must be 32 bytes, got {len(digest)}")
    return difficulty == 0 or digest < _target(difficulty)


def search_args(prev: str, difficulty: int, start: int) -> str:
    """Check a search's arguments as :func:`search` does; returns ``prev`` lower-cased.

    Shared with the native kernel so both reject the same inputs with the same errors."""
    prev = _normalise_prev(prev)
    _check_difficulty(difficulty)
    _check_nonce(start)
    return prev


def search(prev: str, difficulty: int, start: int, stop: int) -> tuple[int, bytes] | None:
    """Smallest ``n`` in ``[start, stop)`` whose ``H(prev, n)`` meets ``difficulty``.

    Returns ``(n, digest)`` or None.  The hashlib kernel: the reference the native kernel
    (blpopq.kernels) is tested against, and the fallback where it is not built.
    """
    prev = search_args(prev, difficulty, start)
    if start >= stop:
        return None
    # Hashing the 64-byte prev fills exactly one SHA-256 block, so every copy
    # of this state saves one compression per attempt.
    base = hashlib.sha256(prev.encode("ascii"))
    if difficulty == 0:
        digest = base.copy()
        digest.update(b"%d" % start)
        return start, digest.digest()
    target = _target(difficulty)
    if start < 100:
        found = _search_small(base, target, start, min(stop, 100))
        if found is not None or stop <= 100:
            return found
        start = 100
    return _search_hundreds(base, target, start, stop)


def _search_small(base: _Hash, target: bytes, start: int, stop: int) -> tuple[int, bytes] | None:
    # Below 100 the digit count varies, so no fixed-width tail applies; at most
    # 100 attempts, so plain formatting costs nothing worth optimising.
    for n in range(start, stop):
        h = base.copy()
        h.update(b"%d" % n)
        digest = h.digest()
        if digest < target:
            return n, digest
    return None


def _search_hundreds(base: _Hash, target: bytes, start: int, stop: int) -> tuple[int, bytes] | None:
    """Like :func:`search` for ``100 <= start < stop``."""
    head, first = divmod(start, 100)
    last_head, last = divmod(stop - 1, 100)
    copy_base = base.copy
    while head <= last_head:
        # head >= 1 here, so its digits never start with 0 and "%02d" tails
        # produce the canonical spelling of head * 100 + tail.
        prefix = copy_base()
        prefix.update(b"%d" % head)
        copy_prefix = prefix.copy
        end = last + 1 if head == last_head else 100
        tails = _TAILS if first == 0 and end == 100 else _TAILS[first:end]
        for tail in tails:
            h = copy_prefix()
            h.update(tail)
            digest = h.digest()
            if digest < target:
                return head * 100 + int(tail), digest
        first = 0
        head += 1
    return None


def mine(
    prev: str,
    difficulty: int,
    count: int = 1,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    should_stop: Callable[[], bool] | None = None,
    chunk: int = 65536,
    search: SearchFn = search,
    resume: Progress | None = None,
) -> MineOutcome:
    """Mine ``count`` chained blocks, each with the smallest qualifying nonce.

    Block ``i + 1`` is mined from block ``i``'s hash, each by ``search`` (a kernel of
    blpopq.kernels; this module's hashlib search by default).  ``should_stop`` is polled
    before every chunk of ``chunk`` nonces; when it returns True, :class:`Cancelled`
    is raised carrying the :class:`Progress` so far, from which ``resume`` goes on (its
    blocks are taken as they are: check them first, see :func:`check_blocks`).  A block that
    tries nonces ``0 .. max_attempts - 1`` without success ends the run with status
    ``"exhausted"`` and only the blocks finished before it.
    """
    current = _normalise_prev(prev)
    _check_difficulty(difficulty)
    for name, value in (("count", count), ("max_attempts", max_attempts), ("chunk", chunk)):
        if isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be >= 1, got {value!r}")
    resume = resume or _NO_PROGRESS
    if len(resume.blocks) > count:
        raise ValueError("resumed progress has more blocks than the request")
    blocks = list(resume.blocks)
    attempts, first = resume.attempts, resume.next_nonce
    current = blocks[-1].hash if blocks else current
    for _ in range(count - len(blocks)):
        so_far = (blocks, attempts, first)
        found = _mine_block(current, difficulty, max_attempts, should_stop, (search, chunk), so_far)
        if found is None:
            return MineOutcome("exhausted", tuple(blocks), attempts + max_attempts - first)
        nonce, digest = found
        attempts += nonce + 1 - first
        first = 0
        current = digest.hex()
        blocks.append(Block(nonce, current))
    return MineOutcome("ok", tuple(blocks), attempts)


def _mine_block(
    prev: str,
    difficulty: int,
    max_attempts: int,
    should_stop: Callable[[], bool] | None,
    kernel: tuple[SearchFn, int],
    so_far: tuple[list[Block], int, int],
) -> tuple[int, bytes] | None:
    """The block after ``blocks``, searched from ``first`` (``so_far``: the blocks found, the
    attempts spent on them, the first nonce of this one; a Progress only if cut short)."""
    search, chunk = kernel
    blocks, attempts, first = so_far
    for start in range(first, max_attempts, chunk):
        if should_stop is not None and should_stop():
            # Nonces first .. start-1 of this block were hashed (and rejected) in this run.
            raise Cancelled(Progress(tuple(blocks), attempts + start - first, start))
        found = search(prev, difficulty, start, min(start + chunk, max_attempts))
        if found is not None:
            return found
    return None


def check_blocks(prev: str, difficulty: int, blocks: Sequence[Block]) -> str | None:
    """Why ``blocks`` are not a valid chain from ``prev`` at ``difficulty``, or None: one hash
    per block, so progress read back from Redis is checked before it is trusted. (Whether
    each nonce is the *smallest* is not checked: that would redo the work.)"""
    current = _normalise_prev(prev)
    for i, block in enumerate(blocks):
        digest = pow_hash(current, block.nonce)
        if digest.hex() != block.hash or not meets_difficulty(digest, difficulty):
            return f"block {i} (nonce {block.nonce}) does not chain from its prev at difficulty"
        current = block.hash
    return None


def verify(prev: str, nonce: int, difficulty: int) -> tuple[bool, str]:
    """``(meets difficulty?, hex hash)`` for one claimed nonce."""
    digest = pow_hash(prev, nonce)
    return meets_difficulty(digest, difficulty), digest.hex()
