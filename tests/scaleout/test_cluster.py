"""Redis Cluster: three primaries and three replicas on loopback; the daemon, producer and
collector reach it through ``redis+cluster://`` seeded by two nodes; the primary holding the
namespace's slot is SIGKILLed mid-run. The pool follows the failover like a restart (each new
connection asks the nodes where the slot is) and every task ends as exactly one outcome."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from blpopq.cluster import slot_of
from blpopq.connection import make_client
from blpopq.embedded import RedisServer
from blpopq.keyspace import Keyspace

from ..helpers import Daemon, cli_env, prev_hash, run_cli, wait_until
from .conftest import (
    FAILOVER_DAEMON,
    FAILOVER_TASKS,
    Certs,
    check_every_task_once,
    collect_failover_batch,
    failover_env,
    port,
    produce_failover_batch,
    supports_tls,
)  # fmt: skip

pytestmark = pytest.mark.redis

NS = "cluster"


class Cluster:
    """Three primaries with ``replicas`` replicas each (``redis-server --cluster-enabled
    yes``, joined by ``redis-cli --cluster create``), on plain ports or, with ``certs``, on
    TLS ports only (clients and the cluster bus alike); a node is suspected after 1.5 s
    without a reply."""

    def __init__(
        self, binary: str, directory: Path, replicas: int = 1, certs: Certs | None = None
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.replicas = replicas
        self.certs = certs
        self.nodes: list[RedisServer] = []
        self.ports: dict[int, RedisServer] = {}  # the port clients use -> its node

    def start(self) -> None:
        for i in range(3 * (1 + self.replicas)):
            client_port = port()
            args = [
                "--cluster-enabled", "yes", "--cluster-node-timeout", "1500",
                "--cluster-config-file", "nodes.conf", "--cluster-port", str(port()),
            ]  # fmt: skip
            if self.certs is not None:
                args += self.tls_args(client_port)
            node_dir = self.directory / f"node{i}"
            node_dir.mkdir()
            node = RedisServer(
                binary=self.binary, port=None if self.certs else client_port,
                directory=node_dir, extra_args=tuple(args),
            )  # fmt: skip
            self.nodes.append(node)
            self.ports[client_port] = node
            node.start()
        self.redis_cli(
            "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
            "--cluster-replicas", str(self.replicas), "--cluster-yes",
        )  # fmt: skip
        wait_until(self.settled, "the cluster: every slot served, every replica in sync", None, 60)

    def tls_args(self, tls_port: int) -> list[str]:
        assert self.certs is not None
        return [
            "--tls-port", str(tls_port), "--tls-cluster", "yes", "--tls-replication", "yes",
            "--tls-cert-file", str(self.certs.server_cert),
            "--tls-key-file", str(self.certs.server_key),
            "--tls-ca-cert-file", str(self.certs.ca), "--tls-auth-clients", "yes",
        ]  # fmt: skip

    def redis_cli(self, *args: str) -> None:
        tls: list[str] = []
        if self.certs is not None:
            c = self.certs
            tls = ["--tls", "--cacert", str(c.ca), "--cert", str(c.client_cert),
                   "--key", str(c.client_key)]  # fmt: skip
        cli = str(Path(self.binary).with_name("redis-cli"))
        subprocess.run([cli, *tls, *args], check=True, capture_output=True, timeout=60)

    def client(self, node: RedisServer) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(node.socket_path), socket_timeout=2.0)

    def settled(self) -> bool:
        try:
            for node in self.nodes:
                with self.client(node) as c:
                    if c.cluster("info")["cluster_state"] != "ok":
                        return False
                    info = c.info("replication")
                    if info["role"] == "slave" and info["master_link_status"] != "up":
                        return False
                    if info["role"] == "master" and info["connected_slaves"] != self.replicas:
                        return False
        except redis.RedisError:
            return False
        return True

    def reader(self, node: RedisServer) -> redis.Redis:
        """A client that reads on ``node`` even if it is a replica (a cluster replica
        answers MOVED unless the connection says READONLY)."""
        client = self.client(node)
        client.execute_command("READONLY")  # one thread, so the pool's one connection
        return client

    def by_port(self, number: int) -> RedisServer:
        return self.ports[number]

    def owner(self, alive: RedisServer, namespace: str = NS) -> RedisServer:
        """The primary holding the namespace's slot, as ``alive`` sees it."""
        with self.client(alive) as c:
            table = c.execute_command("CLUSTER SLOTS")
        slot = slot_of(namespace)
        port = next(int(e[2][1]) for e in table if int(e[0]) <= slot <= int(e[1]))
        return self.by_port(port)

    def replica_of(self, primary: RedisServer) -> RedisServer:
        for node in self.nodes:
            if node is not primary and node.process is not None:
                with self.client(node) as c:
                    info = c.info("replication")
                if info["role"] == "slave" and self.ports[int(info["master_port"])] is primary:
                    return node
        raise AssertionError(f"no replica of {primary.port}")

    @property
    def url(self) -> str:
        """Two seeds; with TLS, the CA and the client certificate as query parameters."""
        first, second = list(self.ports)[:2]
        if self.certs is None:
            return f"redis+cluster://127.0.0.1:{first},127.0.0.1:{second}"
        c = self.certs
        return (
            f"rediss+cluster://127.0.0.1:{first},127.0.0.1:{second}?ssl_ca_certs={c.ca}"
            f"&ssl_certfile={c.client_cert}&ssl_keyfile={c.client_key}"
        )

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture
def cluster(redis7: str, tmp_path: Path) -> Iterator[Cluster]:
    deployment = Cluster(redis7, tmp_path)
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture
def tls_cluster(redis7: str, certs: Certs, tmp_path: Path) -> Iterator[Cluster]:
    """Three primaries on TLS ports only, client certificates required."""
    if not supports_tls(redis7, tmp_path / "probe"):
        pytest.skip(f"{redis7} was built without TLS")
    deployment = Cluster(redis7, tmp_path, replicas=0, certs=certs)
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.stop()


def test_every_key_of_a_namespace_is_served_by_the_slot_s_primary(cluster: Cluster) -> None:
    """One client per namespace, pinned to that slot's primary: the tier lists, a script over
    several keys and the client name all reach that node, whichever seed is asked first."""
    for namespace in ("blpopq", "a", "b", "cluster"):
        keys = Keyspace(namespace)
        client = make_client(cluster.url, 2.0, "pinned", namespace=namespace)
        client.rpush(keys.tiers[0], b"x")
        moved = client.eval("return redis.call('RPOPLPUSH', KEYS[1], KEYS[2])", 2, *keys.tiers[:2])
        assert moved == b"x"
        slot = client.execute_command("CLUSTER KEYSLOT", keys.tiers[1])
        assert slot == slot_of(namespace)
        served_by = client.execute_command("CLUSTER MYID")
        with cluster.client(cluster.owner(cluster.nodes[2], namespace)) as owner:
            assert served_by == owner.execute_command("CLUSTER MYID")
            assert owner.lpop(keys.tiers[1]) == b"x"
        assert client.client_getname() == "pinned"
        client.close()


def written(cluster: Cluster, node: RedisServer | None = None) -> int:
    """Results written, as ``node`` (default: the slot's primary) has them."""
    with cluster.reader(node or cluster.owner(cluster.nodes[0])) as c:
        return int(c.get(Keyspace(NS).results_written) or 0)


def test_a_failover_of_the_slot_s_primary_mid_run_loses_and_repeats_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Guarantee: with the primary of the namespace's slot SIGKILLed mid-run, the pool
    follows the cluster to the promoted replica and every task ends as exactly one result or
    dead letter, both in Redis and as `collect --batch` prints them. Reports tasks, lost,
    duplicated, dead letters and the time to recover (kill to promotion, kill to the first
    result written after)."""
    env = failover_env(cluster.url, NS)
    path = produce_failover_batch(tmp_path, env)
    keys = Keyspace(NS)
    with cluster.reader(cluster.replica_of(cluster.owner(cluster.nodes[0]))) as on_replica:
        assert on_replica.hlen(keys.tasks) == FAILOVER_TASKS  # WAIT: there when produce returned

    with Daemon(*FAILOVER_DAEMON, env=env) as daemon:
        daemon.wait_ready()
        tenth = FAILOVER_TASKS // 10
        wait_until(lambda: written(cluster) >= tenth, "a tenth of the results", daemon)
        # Asked now: a loaded machine may already have seen a failover of its own.
        primary = cluster.owner(cluster.nodes[0])
        replica = cluster.replica_of(primary)
        killed_at = time.monotonic()
        primary.kill()
        at_kill = written(cluster, replica)  # what had reached the replica
        wait_until(lambda: cluster.owner(replica) is replica, "the promotion", daemon, 60)
        promoted = time.monotonic() - killed_at
        wait_until(
            lambda: written(cluster, replica) > at_kill, "a result after", daemon, timeout=60
        )
        recovered = time.monotonic() - killed_at
        printed = collect_failover_batch(env, daemon)
        assert daemon.stop() == 0, daemon.log

    times = (
        f"results before the kill {at_kill}, promoted after {promoted:.1f} s, "
        f"first result after {recovered:.1f} s"
    )
    with cluster.reader(replica) as new_primary:
        check_every_task_once("cluster failover", path, new_primary, keys, printed, times)


def test_a_run_over_a_tls_cluster_and_a_wrong_ca(
    tls_cluster: Cluster, certs: Certs, tmp_path: Path
) -> None:
    """rediss+cluster://: produce, daemon and collect reach the slot's primary over TLS (the
    slot table names TLS ports); a URL with a CA that signed nothing is exit 3 and one line."""
    env = cli_env(REDIS_URL=tls_cluster.url, BLPOPQ_NAMESPACE=NS, BLPOPQ_KERNEL="hashlib")
    path = tmp_path / "tls.txt"
    path.write_text("".join(f"alto t{n} mine {prev_hash(n)} 8\n" for n in range(20)))
    assert run_cli("blpopq-produce", str(path), env=env).returncode == 0
    with Daemon("--workers", "1", "--block-timeout", "0.5", env=env) as daemon:
        daemon.wait_ready()
        done = run_cli("blpopq-collect", "--batch", "last", "--expect", "20", "--timeout", "60",
                       "--format", "jsonl", env=env)  # fmt: skip
        assert daemon.stop() == 0, daemon.log
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(line)["client"] for line in done.stdout.splitlines()) == sorted(
        f"t{n}" for n in range(20)
    )
    wrong = env | {"REDIS_URL": tls_cluster.url.replace(str(certs.ca), str(certs.other_ca))}
    refused = run_cli("blpopq-collect", "--timeout", "1", env=wrong)
    assert refused.returncode == 3, refused.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
