"""packed.py without Redis: a command packed around its fixed parts is byte for byte what
redis-py packs for the same EVALSHA, whatever the arguments."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from redis.connection import PythonRespSerializer

from blpopq.packed import frame, packed_command

parts = st.one_of(st.binary(max_size=40), st.text(max_size=20), st.integers(-(2**62), 2**62))


def _redis_py(*args: object) -> bytes:
    from redis.connection import Encoder

    serializer = PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode)
    return b"".join(serializer.pack(*args))


@given(
    st.lists(st.binary(min_size=1, max_size=30), max_size=12),
    st.lists(parts, max_size=4),
    st.lists(parts, max_size=6),
    st.lists(parts, max_size=3),
)
def test_the_same_bytes_as_redis_py(
    keys: list[bytes], head: list[object], middle: list[object], tail: list[object]
) -> None:
    sha = "a" * 40
    fixed = frame(sha, keys, head, tail)  # type: ignore[arg-type]
    expected = _redis_py("EVALSHA", sha, len(keys), *keys, *head, *middle, *tail)
    assert packed_command(fixed, middle) == expected  # type: ignore[arg-type]
