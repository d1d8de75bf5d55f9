"""blpopq.pow checked against a naive reference and the real sha256sum binary."""

from __future__ import annotations

import hashlib
import pickle
import random
import shutil
import subprocess

import pytest

from blpopq import pow
from blpopq.pow import Block, Cancelled, MineOutcome, meets_difficulty, mine, search, verify

RNG = random.Random(20240517)
PREVS = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(6)] + [
    "0" * 64,
    "f" * 64,
    "".join(RNG.choice("0123456789abcdef") for _ in range(64)),
]


def naive_digest(prev: str, n: int) -> bytes:
    return hashlib.sha256((prev + str(n)).encode()).digest()


def leading_zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return 256 - value.bit_length()


def naive_search(prev: str, difficulty: int, start: int, stop: int) -> tuple[int, bytes] | None:
    for n in range(start, stop):
        digest = naive_digest(prev, n)
        if leading_zero_bits(digest) >= difficulty:
            return n, digest
    return None


# --------------------------------------------------------------------------- pow_hash


@pytest.mark.parametrize("nonce", [0, 1, 9, 10, 99, 100, 101, 12345, 2**64 - 1, 10**30])
def test_pow_hash_matches_naive(nonce: int) -> None:
    assert pow.pow_hash(PREVS[0], nonce) == naive_digest(PREVS[0], nonce)


def test_pow_hash_lower_cases_prev() -> None:
    assert pow.pow_hash(PREVS[1].upper(), 7) == naive_digest(PREVS[1], 7)


@pytest.mark.parametrize("prev", ["", "0" * 63, "0" * 65, "g" * 64, "0" * 63 + " ", "٣" * 64])
def test_invalid_prev_rejected(prev: str) -> None:
    assert not pow.is_valid_prev(prev)
    with pytest.raises(ValueError):
        pow.pow_hash(prev, 0)
    with pytest.raises(ValueError):
        search(prev, 1, 0, 10)
    with pytest.raises(ValueError):
        mine(prev, 1)
    with pytest.raises(ValueError):
        verify(prev, 0, 1)


def test_is_valid_prev_accepts_either_case() -> None:
    assert pow.is_valid_prev("aB" * 32)
    assert pow.is_valid_prev("0123456789abcdefABCDEF" * 2 + "0" * 20)


# --------------------------------------------------------------------------- meets_difficulty


def test_meets_difficulty_zero_always() -> None:
    assert meets_difficulty(b"\xff" * 32, 0)


@pytest.mark.parametrize(
    ("digest", "difficulty", "expected"),
    [
        (b"\x7f" + b"\xff" * 31, 1, True),
        (b"\x80" + b"\x00" * 31, 1, False),
        (b"\x00" + b"\xff" * 31, 8, True),
        (b"\x01" + b"\x00" * 31, 8, False),
        (b"\x00" + b"\x7f" + b"\xff" * 30, 9, True),
        (b"\x00\x80" + b"\x00" * 30, 9, False),
        (b"\x00\x00\x0f" + b"\xff" * 29, 20, True),
        (b"\x00\x00\x10" + b"\x00" * 29, 20, False),
        (b"\x00" * 32, 256, True),
        (b"\x00" * 31 + b"\x01", 256, False),
        (b"\x00" * 31 + b"\x01", 255, True),
        (b"\x00" * 31 + b"\x02", 255, False),
    ],
)
def test_meets_difficulty_bit_exact(digest: bytes, difficulty: int, expected: bool) -> None:
    assert meets_difficulty(digest, difficulty) is expected


def test_meets_difficulty_agrees_with_bit_count() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        zeros = rng.randrange(0, 40)
        value = rng.getrandbits(256) >> zeros
        digest = value.to_bytes(32, "big")
        d = rng.randrange(0, 42)
        assert meets_difficulty(digest, d) is (leading_zero_bits(digest) >= d)


@pytest.mark.parametrize("difficulty", [-1, 257, True])
def test_meets_difficulty_range(difficulty: int) -> None:
    with pytest.raises(ValueError):
        meets_difficulty(b"\x00" * 32, difficulty)


def test_meets_difficulty_wants_32_bytes() -> None:
    with pytest.raises(ValueError):
        meets_difficulty(b"\x00" * 31, 1)


# --------------------------------------------------------------------------- search


@pytest.mark.parametrize("prev", PREVS)
@pytest.mark.parametrize("difficulty", range(0, 13))
def test_search_from_zero_matches_naive(prev: str, difficulty: int) -> None:
    stop = 40_000
    assert search(prev, difficulty, 0, stop) == naive_search(prev, difficulty, 0, stop)


def test_search_every_window_around_digit_boundaries() -> None:
    # Difficulty 3 hits about one nonce in eight, so every window contains
    # both hits and misses near 9/10, 99/100, 199/200 and 999/1000.
    prev = PREVS[2]
    for difficulty in (1, 3, 5):
        for start in [0, 1, 5, 8, 9, 10, 11, 50, 98, 99, 100, 101, 150, 199, 200, 998, 999, 1000]:
            for width in (0, 1, 2, 3, 7, 10, 11, 99, 100, 101, 250):
                stop = start + width
                got = search(prev, difficulty, start, stop)
                assert got == naive_search(prev, difficulty, start, stop), (start, stop)


def test_search_random_windows_match_naive() -> None:
    rng = random.Random(99)
    for _ in range(300):
        prev = rng.choice(PREVS)
        difficulty = rng.randrange(0, 10)
        start = rng.choice(
            [rng.randrange(0, 120), rng.randrange(0, 10**6), rng.randrange(0, 2**64)]
        )
        stop = start + rng.randrange(0, 700)
        assert search(prev, difficulty, start, stop) == naive_search(prev, difficulty, start, stop)


def test_search_stop_is_exclusive() -> None:
    prev = PREVS[0]
    hit = naive_search(prev, 8, 0, 100_000)
    assert hit is not None
    n, digest = hit
    assert search(prev, 8, 0, n) is None
    assert search(prev, 8, 0, n + 1) == (n, digest)
    assert search(prev, 8, n, n + 1) == (n, digest)
    assert search(prev, 8, n + 1, n + 1) is None


def test_search_empty_and_reversed_ranges() -> None:
    assert search(PREVS[0], 0, 5, 5) is None
    assert search(PREVS[0], 0, 5, 3) is None


def test_search_difficulty_zero_returns_start() -> None:
    for start in (0, 9, 10, 99, 100, 123456):
        assert search(PREVS[3], 0, start, start + 5) == (start, naive_digest(PREVS[3], start))


def test_search_rejects_negative_start() -> None:
    with pytest.raises(ValueError):
        search(PREVS[0], 1, -1, 10)


def test_search_upper_case_prev_same_as_lower() -> None:
    assert search(PREVS[4].upper(), 6, 0, 5000) == search(PREVS[4], 6, 0, 5000)


def test_search_difficulty_256_finds_nothing() -> None:
    assert search(PREVS[0], 256, 0, 300) is None


# --------------------------------------------------------------------------- mine


@pytest.mark.parametrize("prev", PREVS[:5])
@pytest.mark.parametrize("difficulty", [0, 1, 4, 9, 12])
@pytest.mark.parametrize("chunk", [1, 3, 10, 97, 65536])
def test_mine_single_block_is_smallest_nonce(prev: str, difficulty: int, chunk: int) -> None:
    expected = naive_search(prev, difficulty, 0, 10**6)
    assert expected is not None
    outcome = mine(prev, difficulty, chunk=chunk)
    n, digest = expected
    assert outcome == MineOutcome("ok", (Block(n, digest.hex()),), n + 1)


@pytest.mark.parametrize("chunk", [1, 7, 100, 65536])
def test_mine_chain_of_three(chunk: int) -> None:
    prev, difficulty = PREVS[5], 7
    outcome = mine(prev.upper(), difficulty, count=3, chunk=chunk)
    assert outcome.status == "ok"
    assert len(outcome.blocks) == 3
    expected_attempts = 0
    current = prev
    for block in outcome.blocks:
        hit = naive_search(current, difficulty, 0, 10**6)
        assert hit is not None
        assert block == Block(hit[0], hit[1].hex())
        expected_attempts += hit[0] + 1
        current = block.hash
    assert outcome.attempts == expected_attempts


def test_mine_difficulty_zero_costs_one_attempt_per_block() -> None:
    outcome = mine(PREVS[0], 0, count=4)
    assert [b.nonce for b in outcome.blocks] == [0, 0, 0, 0]
    assert outcome.attempts == 4


def test_mine_exhausted_first_block() -> None:
    prev = PREVS[1]
    hit = naive_search(prev, 10, 0, 10**6)
    assert hit is not None and hit[0] > 5
    for chunk in (1, 2, 4, 65536):
        outcome = mine(prev, 10, max_attempts=hit[0], chunk=chunk)
        assert outcome == MineOutcome("exhausted", (), hit[0])


def test_mine_exhausted_later_block_keeps_finished_blocks() -> None:
    # For PREVS[0] at difficulty 8 the chain's nonces are 411, 87, 790, so a
    # cap of 412 lets the first two blocks finish and exhausts the third.
    prev, difficulty, cap = PREVS[0], 8, 412
    first = naive_search(prev, difficulty, 0, cap)
    assert first is not None
    second = naive_search(first[1].hex(), difficulty, 0, cap)
    assert second is not None
    assert naive_search(second[1].hex(), difficulty, 0, cap) is None
    outcome = mine(prev, difficulty, count=3, max_attempts=cap, chunk=5)
    assert outcome.status == "exhausted"
    assert outcome.blocks == (Block(first[0], first[1].hex()), Block(second[0], second[1].hex()))
    assert outcome.attempts == first[0] + 1 + second[0] + 1 + cap


def test_mine_found_at_last_allowed_nonce_is_ok() -> None:
    prev = PREVS[1]
    hit = naive_search(prev, 10, 0, 10**6)
    assert hit is not None
    outcome = mine(prev, 10, max_attempts=hit[0] + 1, chunk=3)
    assert outcome == MineOutcome("ok", (Block(hit[0], hit[1].hex()),), hit[0] + 1)


def test_mine_cancelled_between_chunks() -> None:
    calls = 0

    def should_stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    with pytest.raises(Cancelled) as info:
        mine(PREVS[0], 256, max_attempts=10**6, chunk=50, should_stop=should_stop)
    assert info.value.attempts == 150
    assert calls == 4


def test_mine_cancelled_counts_earlier_blocks() -> None:
    prev, difficulty = PREVS[3], 6
    first = naive_search(prev, difficulty, 0, 10**6)
    assert first is not None
    polls = 0
    chunk = first[0] + 1  # the first block finishes in exactly one chunk

    def should_stop() -> bool:
        nonlocal polls
        polls += 1
        return polls == 2  # the first poll of the second block

    with pytest.raises(Cancelled) as info:
        mine(prev, difficulty, count=2, chunk=chunk, should_stop=should_stop)
    assert info.value.attempts == first[0] + 1


def test_mine_not_cancelled_when_should_stop_false() -> None:
    outcome = mine(PREVS[0], 5, count=2, chunk=2, should_stop=lambda: False)
    assert outcome.status == "ok"


def test_cancelled_survives_pickle() -> None:
    progress = pow.Progress((Block(3, "ab" * 32),), 42, 7)
    copy = pickle.loads(pickle.dumps(Cancelled(progress)))
    assert isinstance(copy, Cancelled)
    assert copy.attempts == 42 and copy.progress == progress


@pytest.mark.parametrize(
    ("difficulty", "count", "max_attempts", "chunk"),
    [(-1, 1, 10, 10), (257, 1, 10, 10), (1, 0, 10, 10), (1, 1, 0, 10), (1, 1, 10, 0)],
)
def test_mine_validates_arguments(
    difficulty: int, count: int, max_attempts: int, chunk: int
) -> None:
    with pytest.raises(ValueError):
        mine(PREVS[0], difficulty, count=count, max_attempts=max_attempts, chunk=chunk)


def test_default_max_attempts() -> None:
    assert pow.DEFAULT_MAX_ATTEMPTS == 2**36
    assert pow.MAX_DIFFICULTY == 256


# --------------------------------------------------------------------------- verify


def test_verify_valid_and_invalid() -> None:
    prev = PREVS[0]
    hit = naive_search(prev, 10, 0, 10**6)
    assert hit is not None
    n, digest = hit
    assert verify(prev, n, 10) == (True, digest.hex())
    assert verify(prev.upper(), n, 10) == (True, digest.hex())
    zeros = leading_zero_bits(digest)
    assert verify(prev, n, zeros + 1) == (False, digest.hex())
    assert verify(prev, n, zeros) == (True, digest.hex())
    assert verify(prev, 0, 0) == (True, naive_digest(prev, 0).hex())


def test_verify_rejects_negative_nonce() -> None:
    with pytest.raises(ValueError):
        verify(PREVS[0], -1, 1)


# --------------------------------------------------------------------------- sha256sum


SHA256SUM = shutil.which("sha256sum")


@pytest.mark.skipif(SHA256SUM is None, reason="sha256sum not installed")
@pytest.mark.parametrize(("prev", "nonce"), [(PREVS[0], 0), (PREVS[6], 9), (PREVS[7], 1234567)])
def test_vectors_match_sha256sum(prev: str, nonce: int) -> None:
    command = f"printf '%s%s' {prev} {nonce} | sha256sum"
    output = subprocess.run(
        ["sh", "-c", command], check=True, capture_output=True, text=True
    ).stdout
    expected = output.split()[0]
    assert verify(prev, nonce, 0)[1] == expected
    assert pow.pow_hash(prev, nonce).hex() == expected


def test_a_cancelled_mine_resumes_to_exactly_the_uninterrupted_answer() -> None:
    """A stop keeps the finished blocks and the nonces already rejected: resuming finds the
    same blocks and counts the same attempts as a run that was never stopped."""
    prev = "ab" * 32
    whole = pow.mine(prev, 10, count=3, chunk=64)
    calls = iter(range(10**6))
    stop_after = 20
    with pytest.raises(pow.Cancelled) as first:
        pow.mine(prev, 10, count=3, chunk=64, should_stop=lambda: next(calls) >= stop_after)
    progress = first.value.progress
    # Every hash so far: each finished block's nonces 0..n, then those below next_nonce.
    assert progress.attempts == sum(b.nonce + 1 for b in progress.blocks) + progress.next_nonce
    assert len(progress.blocks) < 3 and progress.attempts > 0
    resumed = pow.mine(prev, 10, count=3, chunk=64, resume=progress)
    assert resumed == whole
    assert pow.check_blocks(prev, 10, whole.blocks) is None
    assert pow.check_blocks(prev, 11, whole.blocks) is not None  # not at that difficulty
