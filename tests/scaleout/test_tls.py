"""TLS: every command over rediss:// with redis-py's own query parameters, against a real
redis-server 7 whose TLS port requires client certificates (made by the fixtures with
openssl); a wrong CA or a plain-text server is one clear line and exit 3, no traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from blpopq import Queue, parse_text

from ..helpers import Daemon, cli_env, prev_hash, run_cli
from .conftest import Certs, TlsServer

pytestmark = pytest.mark.redis


def _requests(tmp_path: Path, count: int) -> Path:
    tiers = ("vip", "alto", "comun")
    lines = [f"{tiers[n % 3]} c{n} mine {prev_hash(n)} 6" for n in range(count)]
    path = tmp_path / "tls.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_produce_daemon_collect_status_over_tls(
    tls_server: TlsServer, certs: Certs, tmp_path: Path
) -> None:
    """Guarantee: with a rediss:// URL every command speaks TLS (client certificate included)
    and the queue behaves as on plain TCP: one result per request."""
    url = tls_server.url(certs)
    env = cli_env(REDIS_URL=url, BLPOPQ_NAMESPACE="tls")
    produced = run_cli("blpopq-produce", str(_requests(tmp_path, 12)), env=env)
    assert produced.returncode == 0, produced.stderr
    assert "ssl_ca_certs" in produced.stderr and "rediss://127.0.0.1" in produced.stderr
    with Daemon("--workers", "2", "--block-timeout", "0.5", env=env) as daemon:
        daemon.wait_ready()
        done = run_cli(
            "blpopq-collect", "--batch", "last", "--expect", "12", "--timeout", "60",
            "--format", "jsonl", env=env,
        )  # fmt: skip
        assert done.returncode == 0, f"{done.stderr}\n{daemon.log}"
        status = run_cli("blpopq-status", "--json", env=env)
        assert status.returncode == 0, status.stderr
        assert daemon.stop() == 0, daemon.log
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(r["client"] for r in results) == sorted(f"c{n}" for n in range(12))
    assert all(r["status"] == "ok" for r in results)
    assert json.loads(status.stdout)  # a snapshot read over TLS


def test_the_library_speaks_tls(tls_server: TlsServer, certs: Certs) -> None:
    queue = Queue.from_url(tls_server.url(certs), namespace="tls-lib")
    report = queue.enqueue(parse_text(f"vip ana verify {prev_hash(1)} 0 0\n", "<api>"))
    assert len(report.ids) == 1
    assert queue.protocol.open_tasks(report.ids) == (1, 0)


@pytest.mark.parametrize(
    ("command", "fault"),
    [
        ("blpopq-produce", "wrong CA"),
        ("blpopq-daemon", "wrong CA"),
        ("blpopq-collect", "wrong CA"),
        # One command only: the handshake waits out the socket timeout (~12 s), and every
        # command checks the connection the same way (connection.check_reachable).
        ("blpopq-produce", "plain-text server"),
    ],
)
def test_a_wrong_ca_or_a_plain_server_is_one_clear_line(
    tls_server: TlsServer, certs: Certs, tmp_path: Path, command: str, fault: str
) -> None:
    """Exit 3 (Redis unreachable, as systemd restarts it) with one line naming the masked
    URL and the TLS failure; never a traceback."""
    if fault == "wrong CA":
        url = tls_server.url(certs, ca=certs.other_ca)
    else:
        url = tls_server.url(certs).replace(str(tls_server.tls_port), str(tls_server.plain_port))
    args = [str(_requests(tmp_path, 1))] if command == "blpopq-produce" else []
    done = run_cli(command, *args, "--redis-url", url, timeout=60)
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert len(errors) == 1, done.stderr
    assert re.search(r"cannot reach Redis at rediss://127\.0\.0\.1", errors[0]), errors[0]
    expected = "CERTIFICATE_VERIFY_FAILED" if fault == "wrong CA" else "no TLS handshake"
    assert expected in errors[0], errors[0]


def test_a_missing_certificate_file_is_a_setting_to_fix(
    tls_server: TlsServer, certs: Certs
) -> None:
    url = tls_server.url(certs, ca=Path("/nonexistent/ca.crt"))
    done = run_cli("blpopq-collect", "--redis-url", url)
    assert done.returncode == 2, done.stderr
    assert "ssl_ca_certs '/nonexistent/ca.crt': no such file" in done.stderr
