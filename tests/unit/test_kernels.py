"""The native kernel's paths against the hashlib reference (blpopq.pow.search).

Every native path must return exactly what ``pow.search`` returns. The native tests FAIL when
the extension is missing, so a broken build never passes as "tested"; only
BLPOPQ_NO_NATIVE=1 (the build was skipped on purpose: CI's second pass) turns them into skips,
and then test_no_native_build_runs_on_hashlib checks that the build really is without it.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import threading
import time
from functools import cache

import pytest

from blpopq import kernels, pow
from blpopq.cli import build_parser
from blpopq.cli.config import cmd_config
from blpopq.cli.parser import settings_from
from blpopq.config import build_settings
from blpopq.errors import ConfigError
from blpopq.kernels import Kernel, KernelUnavailable

NO_NATIVE = os.environ.get("BLPOPQ_NO_NATIVE", "") not in ("", "0")
NATIVE_PATHS = ("sha-ni", "sha-ni-1", "portable")
U64 = 2**64

#: Smallest nonces at difficulties 20-28, computed once with the hashlib reference
#: (pow.search from 0) for prev = sha256("blpopq known answer <d>").
KNOWN = [
    (20, "8c73b61ac03fbc64b46d2eb39f667de71092bf957d446c048eed7b7bbb1b4bfa", 1707452,
     "000008157032ddc8867cea417f3759ad47401aa42e69632f1550704b10840662"),
    (21, "fbd8922ba7c48789d4213204b5859d0c451100e1fba060d6a3a37ee3cae52cc0", 1154004,
     "0000007f40980743eb454c4b4a9b2c8e5cee1aa6abcaca82d546814dc3cc588e"),
    (22, "825fdbe78042bc1a5987aa31621f72bdbb3aac57324d5986f2b422b226764a12", 7505710,
     "0000032bd6ba2472e9e41a37563271fd7f56f4e29cd0991ed2b4456a1502b24d"),
    (23, "a28b811f23efe538e33c460c099f70f6df3f5ec1941a187b0e9f7fcfa29ba2ab", 4503923,
     "000001f1b9f7eaaa156cf3c58854f06d7ff94475e812447575b0546e67e0f9a6"),
    (24, "b15075ae27e124b56f2c5baa2a4593e4f9313522450d18f5e1eff942e5489d42", 33_304_750,
     "00000015f8ce9a9c073816cbeb5b9ce8490dc75ba47a2eafa1c5770f02f9a64f"),
    (25, "2e4ea22ed33182047e2891b92d08d7e8c2d0ea2a933e8b36ed3294fe909d4eb6", 18_156_960,
     "00000073b4c8e407ce4870252ce19aa86501f5fed8dd08bd1f559464d6556018"),
    (26, "52772379ea5ba06462c546a3d604f07d6a189cf73646f1c605268d1ae91b86a3", 2_618_336,
     "00000018a0e5aeb25afa97cd07cdecbb0e2c3c1cf40c80a077f94d85ac82d792"),
    (27, "524fb7e4f7f7a625e7496de7e62f73699005abdc06c13364f1b81add57ac0116", 52_098_346,
     "000000125fc2e8f4719fb499333e46fb5c08433478a71eb5885a5439708e3051"),
    (28, "546f17196bcdd663c0aa35e8a55d33fe631a9186de3421e9d987bd5c958ae1da", 403_426_202,
     "00000001298597739ec929af2b4eda312f28f8a154888f8de33876c0cb4487eb"),
]  # fmt: skip


def native(name: str) -> Kernel:
    """The native path ``name``: a failure (not a skip) when the extension is missing."""
    if NO_NATIVE:
        pytest.skip("BLPOPQ_NO_NATIVE=1: the native extension was not built on purpose")
    paths = kernels.native_paths()
    if paths and name not in paths:
        pytest.skip(f"this CPU has no {name} (paths: {', '.join(paths)})")
    return kernels.by_name(name)  # KernelUnavailable: the build is broken


@pytest.fixture(params=NATIVE_PATHS)
def kernel(request: pytest.FixtureRequest) -> Kernel:
    return native(request.param)


@cache
def reference(prev: str, difficulty: int, start: int, stop: int) -> tuple[int, bytes] | None:
    return pow.search(prev, difficulty, start, stop)


def random_prev(rng: random.Random) -> str:
    prev = f"{rng.getrandbits(256):064x}"
    return prev.upper() if rng.random() < 0.5 else prev


# --------------------------------------------------------------------------- agreement


def test_thousands_of_random_prevs_and_windows(kernel: Kernel) -> None:
    rng = random.Random(10)
    for _ in range(2000):
        prev = random_prev(rng)
        difficulty = rng.randrange(0, 13)
        start = rng.choice([0, rng.randrange(0, 10**4), rng.randrange(0, U64 - 5000)])
        stop = start + rng.randrange(0, 3000)
        expected = reference(prev.lower(), difficulty, start, stop)
        assert kernel.search(prev, difficulty, start, stop) == expected, (prev, start, stop)


@pytest.mark.parametrize("difficulty", range(0, 17))
def test_every_difficulty_from_zero(kernel: Kernel, difficulty: int) -> None:
    for i in range(3):
        prev = hashlib.sha256(f"every {i}".encode()).hexdigest()
        expected = reference(prev, difficulty, 0, 10**7)
        assert expected is not None
        assert kernel.search(prev, difficulty, 0, 10**7) == expected


BOUNDARIES = [10**k for k in range(1, 20)]


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_ranges_on_digit_count_boundaries(kernel: Kernel, boundary: int) -> None:
    """9/10, 99/100, ..., 10**19 - 1 / 10**19: the digits grow and the padding moves,
    for either stream of the interleaved path (both parities of start)."""
    prev = hashlib.sha256(f"boundary {boundary}".encode()).hexdigest()
    for difficulty in (0, 1, 2, 3, 5):
        for start in range(max(0, boundary - 9), boundary + 2):
            for stop in (boundary - 1, boundary, boundary + 1, boundary + 2, boundary + 40):
                expected = reference(prev, difficulty, start, stop)
                got = kernel.search(prev, difficulty, start, stop)
                assert got == expected, (difficulty, start, stop)


def test_the_last_nonces_below_two_to_the_64(kernel: Kernel) -> None:
    prev = hashlib.sha256(b"top").hexdigest()
    for difficulty in (0, 1, 3, 6, 9):
        for start, stop in [
            (U64 - 1, U64),
            (U64 - 2, U64),
            (U64 - 3, U64),
            (U64 - 600, U64),
            (U64 - 2, U64 - 1),
            (U64 - 300, U64 + 300),  # beyond 2**64 - 1: the hashlib kernel carries on
            (U64, U64 + 200),
            (10**20, 10**20 + 100),
        ]:
            expected = reference(prev, difficulty, start, stop)
            assert kernel.search(prev, difficulty, start, stop) == expected, (start, stop)


def test_empty_and_one_element_ranges(kernel: Kernel) -> None:
    prev = hashlib.sha256(b"small").hexdigest()
    hit = reference(prev, 8, 0, 10**5)
    assert hit is not None
    n, _ = hit
    for start in (0, 9, 10, n, U64 - 1, U64):
        assert kernel.search(prev, 0, start, start) is None
        assert kernel.search(prev, 0, start, start - 1) is None
        assert kernel.search(prev, 0, start, start + 1) == reference(prev, 0, start, start + 1)
    assert kernel.search(prev, 8, n, n + 1) == hit
    assert kernel.search(prev, 8, n - 1, n) is None
    assert kernel.search(prev, 8, n + 1, n + 1) is None


def test_the_answer_is_the_smallest_nonce(kernel: Kernel) -> None:
    rng = random.Random(11)
    for _ in range(40):
        prev = random_prev(rng)
        difficulty = rng.randrange(4, 12)
        start = rng.randrange(0, 10**6)
        found = kernel.search(prev, difficulty, start, start + 10**5)
        assert found is not None
        n, digest = found
        assert digest == pow.pow_hash(prev, n)
        assert pow.meets_difficulty(digest, difficulty)
        assert kernel.search(prev, difficulty, start, n) is None
        assert pow.search(prev, difficulty, start, n) is None


@pytest.mark.parametrize("chunk", [1, 7, 1000, None])
def test_count_chains_through_mine(kernel: Kernel, chunk: int | None) -> None:
    prev = hashlib.sha256(b"chain").hexdigest().upper()
    size = chunk or kernel.chunk
    for difficulty in (0, 5, 9):
        got = pow.mine(prev, difficulty, count=6, chunk=size, search=kernel.search)
        assert got == pow.mine(prev, difficulty, count=6, chunk=size)
    capped = pow.mine(prev, 30, count=2, max_attempts=5000, chunk=size, search=kernel.search)
    assert capped == pow.MineOutcome("exhausted", (), 5000)


@pytest.mark.parametrize(("difficulty", "prev", "nonce", "digest"), KNOWN)
def test_known_answers_at_high_difficulty(
    kernel: Kernel, difficulty: int, prev: str, nonce: int, digest: str
) -> None:
    # From 0 where that takes a few seconds at most; else the 4 M nonces just below.
    start = 0 if nonce <= (60_000_000 if kernel.name == "sha-ni" else 8_000_000) else nonce - 2**22
    assert kernel.search(prev, difficulty, start, nonce + 1) == (nonce, bytes.fromhex(digest))
    assert kernel.search(prev, difficulty, nonce + 1, nonce + 2) is None


def test_invalid_arguments_rejected_like_the_reference(kernel: Kernel) -> None:
    for args in [("g" * 64, 1, 0, 9), ("0" * 63, 1, 0, 9), ("0" * 64, 257, 0, 9)]:
        with pytest.raises(ValueError):
            kernel.search(*args)
    with pytest.raises(ValueError):
        kernel.search("0" * 64, -1, 0, 9)
    with pytest.raises(ValueError):
        kernel.search("0" * 64, 1, -1, 9)
    with pytest.raises(ValueError):
        kernel.search("0" * 64, True, 0, 9)


# --------------------------------------------------------------------------- word-level check


def digest_with_zeros(zeros: int, rng: random.Random) -> bytes:
    """A digest with exactly ``zeros`` leading zero bits (256: all zero)."""
    if zeros >= 256:
        return bytes(32)
    value = (1 << (255 - zeros)) | (rng.getrandbits(255 - zeros) if zeros < 255 else 0)
    return value.to_bytes(32, "big")


WORD_EDGES = sorted({0, 1, 255, 256} | {w + e for w in range(32, 257, 32) for e in (-1, 0, 1)})


@pytest.mark.parametrize("difficulty", [d for d in WORD_EDGES if d <= 256])
def test_difficulty_across_word_boundaries(difficulty: int) -> None:
    module = native("portable") and kernels.native_module()[0]
    assert module is not None
    rng = random.Random(difficulty)
    for zeros in range(max(0, difficulty - 3), min(256, difficulty + 3) + 1):
        for _ in range(5):
            digest = digest_with_zeros(zeros, rng)
            expected = pow.meets_difficulty(digest, difficulty)
            assert expected is (zeros >= difficulty)
            assert module.meets_words(digest, difficulty) is expected, (zeros, difficulty)


# --------------------------------------------------------------------------- GIL, selection


def test_the_gil_is_released_during_a_search(kernel: Kernel) -> None:
    """Another thread runs while a search is inside C: the worker's heartbeat depends on it."""
    ticks: list[float] = []
    done = threading.Event()

    def tick() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    thread = threading.Thread(target=tick)
    thread.start()
    try:
        begin = time.perf_counter()
        assert kernel.search("0" * 64, 256, 0, kernel.chunk * 8) is None
        end = time.perf_counter()
    finally:
        done.set()
        thread.join()
    middle = [t for t in ticks if begin + (end - begin) / 4 < t < end - (end - begin) / 4]
    assert middle, "no other thread ran during the search: the GIL was held"


def test_auto_and_native_choose_the_best_native_path() -> None:
    best = native("portable") and kernels.native_paths()[0]
    assert kernels.select_kernel("auto").name == best
    assert kernels.select_kernel("native").name == best
    assert kernels.select_kernel("portable").name == "portable"
    assert kernels.select_kernel("hashlib") is kernels.HASHLIB
    assert kernels.fallback_note("auto") is None
    assert build_settings({"kernel": "portable"}, {}).kernel == "portable"


def test_an_unknown_kernel_is_a_configuration_error() -> None:
    with pytest.raises(KernelUnavailable):
        kernels.select_kernel("fast")
    with pytest.raises(ConfigError, match="kernel must be one of"):
        build_settings({}, {"BLPOPQ_KERNEL": "fast"})


@pytest.mark.skipif(not NO_NATIVE, reason="only in a build without the extension")
def test_no_native_build_runs_on_hashlib() -> None:
    assert kernels.native_module()[0] is None, "BLPOPQ_NO_NATIVE=1 but the extension is built"
    assert kernels.select_kernel("auto") is kernels.HASHLIB
    note = kernels.fallback_note("auto")
    assert note is not None and "using the hashlib kernel" in note
    for setting in ("native", "portable"):
        with pytest.raises(ConfigError, match="not built"):
            build_settings({"kernel": setting}, {})


def test_the_kernel_comes_from_flag_over_environment() -> None:
    parser = build_parser()
    from_env = settings_from(parser.parse_args(["config"]), {"BLPOPQ_KERNEL": "hashlib"})
    assert from_env.kernel == "hashlib"
    flag = parser.parse_args(["daemon", "--kernel", "hashlib"])
    assert settings_from(flag, {"BLPOPQ_KERNEL": "auto"}).kernel == "hashlib"
    out = io.StringIO()
    assert cmd_config(flag, settings_from(flag, {}), out) == 0
    assert re.search(r"^kernel +hashlib +flag$", out.getvalue(), re.MULTILINE)
