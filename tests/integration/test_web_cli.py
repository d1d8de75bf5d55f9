"""``blpopq web`` as a real process: it serves the page on loopback and stops with 0 on
SIGTERM; it refuses (exit 2) a non-loopback address without a token, a port in use, and an
install without the web extra."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import httpx

from blpopq.embedded import RedisServer, free_port

from ..helpers import Daemon, cli_env, run_cli
from .test_dead import target


def test_web_serves_the_dashboard_and_stops_on_sigterm(
    redis_server: RedisServer, namespace: str
) -> None:
    port = free_port()
    with Daemon("web", "--port", str(port), *target(redis_server, namespace),
                command="blpopq") as web:  # fmt: skip
        web.wait_for_line(rf"serving namespace {namespace} .* at http://127\.0\.0\.1:{port}/")
        base = f"http://127.0.0.1:{port}"
        assert "blpopq dashboard" in httpx.get(base + "/", timeout=10).text
        state = httpx.get(base + "/api/state", timeout=10).json()
        assert state["status"]["namespace"] == namespace and state["actions"] is False
        web.signal(signal.SIGTERM)
        assert web.process.wait(30) == 0, web.log
    assert "(read-only)" in web.log and "Traceback" not in web.log


def test_web_says_when_actions_need_the_token(redis_server: RedisServer, namespace: str) -> None:
    port = free_port()
    env = cli_env(BLPOPQ_WEB_TOKEN="from-the-environment")
    with Daemon("web", "--port", str(port), *target(redis_server, namespace),
                command="blpopq", env=env) as web:  # fmt: skip
        web.wait_for_line("actions need the token")
        state = httpx.get(f"http://127.0.0.1:{port}/api/state", timeout=10).json()
        assert state["actions"] is True
        refused = httpx.post(f"http://127.0.0.1:{port}/api/cancel", json={"batch": "last"},
                             headers={"X-Blpopq-Token": "wrong"}, timeout=10)  # fmt: skip
        assert refused.status_code == 401
        web.signal(signal.SIGINT)
        assert web.process.wait(30) == 0, web.log


def test_web_refuses_another_address_without_a_token(redis_server: RedisServer) -> None:
    done = run_cli("blpopq", "web", "--host", "0.0.0.0", "--redis-url", redis_server.url)
    assert done.returncode == 2 and "not a loopback address" in done.stderr
    assert "Traceback" not in done.stderr


def test_web_refuses_a_port_in_use(redis_server: RedisServer) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = run_cli("blpopq", "web", "--port", str(port), "--redis-url", redis_server.url)
    assert done.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_web_without_the_extra_exits_2_with_the_install_line() -> None:
    code = (
        "import sys; sys.modules['starlette'] = None\n"
        "from blpopq.cli import main\n"
        "sys.exit(main(['web', '--redis-url', 'redis://127.0.0.1:9/0']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "pip install 'blpopq[web]'" in done.stderr and "Traceback" not in done.stderr
