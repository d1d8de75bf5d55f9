"""Reading CLUSTER SLOTS (cluster.py) without a cluster: the slot's primary, every node named,
and the slot of a namespace (the same for every key: one hash tag)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from blpopq.cluster import read_slot_table, slot_of
from blpopq.keyspace import NAMESPACE_PATTERN, Keyspace

TABLE = [
    [0, 5460, [b"10.0.0.1", 7000, b"id1", {}], [b"10.0.0.4", 7003, b"id4", {}]],
    [5461, 10922, [b"", 7001, b"id2", {}], [b"10.0.0.5", 7004, b"id5", {}]],
    [10923, 16383, [b"10.0.0.3", 7002, b"id3", {}]],
]


def test_the_primary_is_the_first_holder_of_the_range_with_the_slot() -> None:
    assert read_slot_table(TABLE, 0, "seed")[0] == ("10.0.0.1", 7000)
    assert read_slot_table(TABLE, 10923, "seed")[0] == ("10.0.0.3", 7002)
    assert read_slot_table(TABLE, 16383, "seed")[0] == ("10.0.0.3", 7002)


def test_a_node_that_does_not_know_its_address_is_the_one_asked() -> None:
    owner, named = read_slot_table(TABLE, 6000, "seed")
    assert owner == ("seed", 7001)
    assert ("10.0.0.5", 7004) in named and len(named) == 5


def test_an_uncovered_slot_has_no_primary() -> None:
    assert read_slot_table(TABLE[:1], 9000, "seed") == (
        None,
        [("10.0.0.1", 7000), ("10.0.0.4", 7003)],
    )
    assert read_slot_table([], 1, "seed") == (None, [])


@given(st.from_regex(NAMESPACE_PATTERN, fullmatch=True))
def test_every_key_of_a_namespace_is_on_the_namespace_s_slot(namespace: str) -> None:
    from redis.crc import key_slot

    keys = Keyspace(namespace)
    names = [*keys.tiers, keys.results, keys.dead, keys.tasks, keys.inflight]
    assert {key_slot(name.encode()) for name in names} == {slot_of(namespace)}
