"""Fairness policies against a real Redis: the weighted shares of a long backlog, list order
within each tier, one policy per namespace while its daemons run, and status naming it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import redis

from blpopq.instructions import Request
from blpopq.messages import Task
from blpopq.policy import TierOrders, parse_policy
from blpopq.producer import enqueue
from blpopq.protocol import Protocol, TakenKind
from blpopq.tiers import TIERS, Tier

from ..conftest import RedisServer
from ..helpers import Daemon, prev_hash, run_cli, wait_until
from .test_cli import produce, target, write


def request(tier: Tier, n: int) -> Request:
    return Request(tier, f"{tier.value}{n}", "mine", prev_hash(n), 1, 1, None, "f.txt", n)


def backlog(protocol: Protocol, per_tier: int) -> None:
    enqueue(protocol, [request(t, n) for t in TIERS for n in range(per_tier)], chunk_size=5000)


def test_weighted_takes_share_a_backlog_by_weight(protocol: Protocol) -> None:
    """6:3:1 on a backlog of every tier: vip, alto and comun get 60/30/10 % of 2,000 takes
    (fixed seed; one standard deviation is ~1.1 %, the bound 4 %: strict would give vip
    100 %, ignoring the weights fails), and each tier is still served in list order."""
    protocol.heartbeat("w:1", "join", lease=60)
    backlog(protocol, 2000)
    orders = TierOrders(parse_policy("weighted:vip=6,alto=3,comun=1"), seed=12345)
    taken = [protocol.take("w:1", orders.next()) for _ in range(2000)]
    tiers = Counter(t.tier for t in taken if t is not None)
    assert sum(tiers.values()) == 2000
    for tier, share in zip(TIERS, (0.6, 0.3, 0.1), strict=True):
        assert abs(tiers[tier] / 2000 - share) < 0.04, tiers
    for tier in TIERS:
        lines = [Task.from_json(t.raw).line for t in taken if t is not None and t.tier is tier]
        assert lines == list(range(len(lines)))  # file order within the tier
    positions = [t.position for t in taken if t is not None]
    assert positions == sorted(positions)  # the attention order is the take order


def test_weighted_passes_an_empty_tiers_turn_on(protocol: Protocol) -> None:
    """A tier drawn first but empty gives its turn to the next drawn: nothing idles."""
    protocol.heartbeat("w:1", "join", lease=60)
    enqueue(protocol, [request(Tier.COMUN, n) for n in range(50)], chunk_size=100)
    orders = TierOrders(parse_policy("weighted:vip=100,alto=100,comun=1"), seed=3)
    taken = [protocol.take("w:1", orders.next()) for _ in range(50)]
    assert [t.tier for t in taken if t is not None] == [Tier.COMUN] * 50
    assert protocol.take("w:1", orders.next()) is None


def test_settle_and_take_follows_the_drawn_order(protocol: Protocol) -> None:
    """The finish script (settle, then take) takes from the order it is given."""
    protocol.heartbeat("w:1", "join", lease=60)
    backlog(protocol, 2)
    first = protocol.take("w:1", (Tier.COMUN, Tier.VIP, Tier.ALTO))
    assert first is not None and first.tier is Tier.COMUN
    written, second = protocol.settle_and_take(
        "w:1", first.key, first.position, '{"id":"x"}', order=(Tier.ALTO, Tier.VIP, Tier.COMUN)
    )
    assert written and second is not None and second.tier is Tier.ALTO
    claim = json.loads(protocol.client.hget(protocol.keys.inflight, second.key))
    assert claim["tier"] == "alto"  # the claim names its tier whatever the order


def daemon(server: RedisServer, namespace: str, *extra: str) -> Daemon:
    return Daemon("--workers", "1", "--block-timeout", "0.5", *extra, *target(server, namespace))


def status_policy(server: RedisServer, namespace: str) -> str | None:
    done = run_cli("blpopq", "status", "--json", *target(server, namespace))
    assert done.returncode == 0, done.stderr
    policy: str | None = json.loads(done.stdout)["policy"]
    return policy


def test_a_daemon_with_another_policy_is_refused_while_one_runs(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    """One policy per namespace while its daemons run: a second daemon or a run asking for
    another exits 2 naming the one in force, and enqueues nothing."""
    with daemon(redis_server, namespace, "--policy", "weighted:vip=6,comun=1,alto=3") as first:
        first.wait_ready()
        assert status_policy(redis_server, namespace) == "weighted:vip=6,alto=3,comun=1"
        refused = run_cli("blpopq-daemon", "--workers", "1", *target(redis_server, namespace))
        assert refused.returncode == 2, refused.stderr
        assert "served under policy weighted:vip=6,alto=3,comun=1" in refused.stderr
        assert "Traceback" not in refused.stderr
        lines = write(tmp_path, "one.txt", ["vip c1 mine " + prev_hash(1) + " 1 1"])
        run = run_cli("blpopq", "run", str(lines), "--policy", "aging:5",
                      *target(redis_server, namespace))  # fmt: skip
        assert run.returncode == 2, run.stderr
        assert "served under policy weighted" in run.stderr
        client = redis.Redis.from_url(redis_server.url)
        assert client.hlen(f"{{{namespace}}}:tasks") == 0  # nothing enqueued
        # The same policy, spelled in another order, is the same policy: welcome.
        with daemon(redis_server, namespace, "--policy", "weighted:alto=3,comun=1,vip=6") as same:
            same.wait_ready()
            same.stop()
        assert first.stop() == 0


def test_the_next_daemon_may_set_another_policy_once_the_last_stopped(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    with daemon(redis_server, namespace, "--lease", "1") as first:
        first.wait_ready()
        assert first.stop() == 0
    client = redis.Redis.from_url(redis_server.url)
    keys = (f"{{{namespace}}}:policy", f"{{{namespace}}}:workers")

    def released() -> bool:
        seconds, micros = client.time()
        held = float(client.hget(keys[0], "held_until") or 0)
        return client.zcard(keys[1]) == 0 and held < seconds * 1000 + micros / 1000

    wait_until(released, "the policy record to be released", timeout=10)
    with daemon(redis_server, namespace, "--policy", "aging:alto=30,comun=120") as second:
        second.wait_ready()
        assert status_policy(redis_server, namespace) == "aging:alto=30,comun=120"
        batch = produce(redis_server, namespace, write(tmp_path, "one.txt", [
            f"alto c1 mine {prev_hash(1)} 1 1",
        ]))  # fmt: skip
        done = run_cli("blpopq-collect", "--batch", batch, "--expect", "1", "--timeout", "30",
                       *target(redis_server, namespace))  # fmt: skip
        assert done.returncode == 0, second.log
        assert second.stop() == 0


def test_a_bad_policy_is_a_configuration_error(redis_server: RedisServer, namespace: str) -> None:
    done = run_cli("blpopq-daemon", "--policy", "weighted:vip=1", *target(redis_server, namespace))
    assert done.returncode == 2
    assert "gives no weight to alto, comun" in done.stderr and "Traceback" not in done.stderr


# --- aging ---------------------------------------------------------------------------------
AGING_MS = (None, 0.001, 0.001)  # alto and comun overdue once a millisecond has passed
NEVER = (None, 1e6, 1e6)


def redis_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def let_time_pass(client: redis.Redis, ms: int = 3) -> None:
    """Poll Redis's own clock (the one aging reads) until ``ms`` milliseconds have passed."""
    start = redis_ms(client)
    wait_until(lambda: redis_ms(client) >= start + ms, "Redis's clock to move", timeout=5)


def take_all(protocol: Protocol, overdue_after: tuple[float | None, ...]) -> list[str]:
    names = []
    while (taken := protocol.take("w:1", TIERS, overdue_after)) is not None:
        names.append(Task.from_json(taken.raw).client)
    return names


def test_aging_serves_overdue_heads_first_oldest_first(protocol: Protocol) -> None:
    """comun accepted first, then alto, then vip: once both are overdue, comun goes first
    (the oldest), then alto, then vip; each tier keeps its list order."""
    protocol.heartbeat("w:1", "join", lease=60)
    for tier in (Tier.COMUN, Tier.ALTO, Tier.VIP):
        enqueue(protocol, [request(tier, n) for n in range(2)], chunk_size=10)
        let_time_pass(protocol.client)
    assert take_all(protocol, AGING_MS) == ["comun0", "comun1", "alto0", "alto1", "vip0", "vip1"]


def test_aging_ties_go_by_priority_and_young_tasks_wait_strictly(protocol: Protocol) -> None:
    """One chunk: every task arrived at once. Overdue alto and comun tie on age, so alto
    (the higher tier) first; with limits not reached, exactly the strict order."""
    protocol.heartbeat("w:1", "join", lease=60)
    enqueue(protocol, [request(t, n) for t in TIERS for n in range(2)], chunk_size=10)
    let_time_pass(protocol.client)
    assert take_all(protocol, AGING_MS) == ["alto0", "alto1", "comun0", "comun1", "vip0", "vip1"]
    enqueue(protocol, [request(t, n) for t in TIERS for n in range(2)], chunk_size=10)
    assert take_all(protocol, NEVER) == ["vip0", "vip1", "alto0", "alto1", "comun0", "comun1"]


def test_a_task_pushed_by_other_code_ages_from_when_first_seen(protocol: Protocol) -> None:
    """A task RPUSHed straight onto alto has no arrival record: its wait counts from the
    first take that saw it at the head; after that it ages like any other."""
    protocol.heartbeat("w:1", "join", lease=60)
    enqueue(protocol, [request(Tier.VIP, n) for n in range(3)], chunk_size=10)
    foreign = json.loads(Task.from_json(protocol.take("w:1").raw).to_json())  # type: ignore[union-attr]
    foreign.update(id="foreign.1", client="foreign", tier="alto")
    protocol.client.rpush(protocol.keys.tier(Tier.ALTO), json.dumps(foreign))
    first = protocol.take("w:1", TIERS, AGING_MS)  # sees the foreign head: not overdue yet
    assert first is not None and first.tier is Tier.VIP
    let_time_pass(protocol.client)
    second = protocol.take("w:1", TIERS, AGING_MS)
    assert second is not None and Task.from_json(second.raw).client == "foreign"


def test_old_tasks_without_arrival_records_age_from_first_sight(protocol: Protocol) -> None:
    """Tasks queued before arrivals were recorded (an upgrade) still run, and age from the
    first take that sees them."""
    protocol.heartbeat("w:1", "join", lease=60)
    enqueue(protocol, [request(t, 0) for t in TIERS], chunk_size=10)
    for tier in TIERS:
        protocol.client.delete(protocol.keys.arrivals(tier))
    first = protocol.take("w:1", TIERS, AGING_MS)
    assert first is not None and first.tier is Tier.VIP
    let_time_pass(protocol.client)
    assert take_all(protocol, AGING_MS) == ["alto0", "comun0"]


def test_arrival_records_are_forgotten_once_their_tasks_left(protocol: Protocol) -> None:
    """Each chunk adds one record per tier; the next chunk drops the records whose tasks
    have all been taken, so the sets stay as small as the chunks still waiting."""
    protocol.heartbeat("w:1", "join", lease=60)
    for n in range(5):
        enqueue(protocol, [request(Tier.ALTO, n)], chunk_size=10)
    assert protocol.client.zcard(protocol.keys.arrivals(Tier.ALTO)) == 5
    take_all(protocol, NEVER)
    enqueue(protocol, [request(Tier.ALTO, 9)], chunk_size=10)
    assert protocol.client.zcard(protocol.keys.arrivals(Tier.ALTO)) == 1


def test_settle_and_take_under_aging_takes_the_overdue_head(protocol: Protocol) -> None:
    protocol.heartbeat("w:1", "join", lease=60)
    enqueue(protocol, [request(Tier.COMUN, 0)], chunk_size=10)
    enqueue(protocol, [request(Tier.VIP, n) for n in range(2)], chunk_size=10)
    first = protocol.take("w:1", TIERS, NEVER)
    assert first is not None and first.tier is Tier.VIP
    let_time_pass(protocol.client)
    written, second = protocol.settle_and_take(
        "w:1", first.key, first.position, '{"id":"x"}', overdue_after=AGING_MS
    )
    assert written and second is not None and second.tier is Tier.COMUN


def test_aging_bounds_the_wait_while_vip_never_runs_out(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    """A vip backlog far larger than what the pool serves meanwhile: under strict priority
    alto and comun would wait for all of it. Under aging each is served once overdue and
    soon after (README: within its limit plus one task per worker), vip still waiting."""
    vip = write(tmp_path, "vip.txt", [f"vip v{n} verify {prev_hash(n)} 0 1" for n in range(20_000)])
    others = [f"alto a{n} mine {prev_hash(n)} 1" for n in range(3)]
    others += [f"comun c{n} mine {prev_hash(n)} 1" for n in range(3)]
    limits = {"alto": 0.3, "comun": 0.6}
    with daemon(redis_server, namespace, "--policy", "aging:alto=0.3,comun=0.6") as pool:
        pool.wait_ready()
        vip_batch = produce(redis_server, namespace, vip)
        batch = produce(redis_server, namespace, write(tmp_path, "others.txt", others))
        done = run_cli("blpopq-collect", "--batch", batch, "--expect", "6", "--timeout", "60",
                       "--format", "jsonl", *target(redis_server, namespace))  # fmt: skip
        assert done.returncode == 0, pool.log
        client = redis.Redis.from_url(redis_server.url)
        assert client.llen(f"{{{namespace}}}:vip") > 0  # served ahead of the vip backlog
        results = [json.loads(line) for line in done.stdout.splitlines()]
        for result in results:
            wait = result["started_at"] - result["enqueued_at"]
            assert limits[result["tier"]] <= wait < limits[result["tier"]] + 5, result
        assert [r["client"] for r in results if r["tier"] == "alto"] == ["a0", "a1", "a2"]
        cancelled = run_cli("blpopq", "cancel", vip_batch, *target(redis_server, namespace))
        assert cancelled.returncode == 0, cancelled.stderr
        assert pool.stop() == 0


def test_run_takes_a_policy(tmp_path: Path) -> None:
    """`blpopq run --policy` on its private Redis: every task of the file is served."""
    example = Path(__file__).resolve().parents[2] / "examples" / "instrucciones.txt"
    done = run_cli("blpopq", "run", str(example), "--workers", "2", "--quiet",
                   "--policy", "weighted:vip=6,alto=3,comun=1", "--format", "jsonl")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 30


def test_aging_reads_hostile_heads_without_stopping(protocol: Protocol) -> None:
    """Bytes that are no JSON, or JSON nested past cjson's limit, at the head of an aging
    tier: aging.lua's decode fails safely, the head ages from first sight like any foreign
    item, and once overdue it is claimed as unreadable (the worker dead-letters it)."""
    protocol.heartbeat("w:1", "join", lease=60)
    enqueue(protocol, [request(Tier.VIP, n) for n in range(3)], chunk_size=10)
    hostile = [b"\xff\xfe not json", b"[" * 5000 + b"]" * 5000]
    protocol.client.rpush(protocol.keys.tier(Tier.ALTO), *hostile)
    order = []
    for wait in (False, True, False, True):  # each hostile head is young when first seen
        if wait:
            let_time_pass(protocol.client)
        taken = protocol.take("w:1", TIERS, AGING_MS)
        assert taken is not None
        if taken.tier is Tier.ALTO:
            assert taken.kind is TakenKind.UNREADABLE
        order.append(taken.raw if taken.tier is Tier.ALTO else taken.tier)
    assert order == [Tier.VIP, hostile[0], Tier.VIP, hostile[1]]
    claims = protocol.client.hvals(protocol.keys.inflight)
    assert sum(b"not json" in c or b"[[[" in c for c in claims) == 2  # claimed, to dead-letter
