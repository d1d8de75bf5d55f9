"""``blpopq web`` through Starlette's TestClient against a private redis-server: the page and
its assets, the state it shows (tiers, in-flight, workers, timeline, dead letters), the one
reading a second however many ask, and the actions: refused read-only, without the token,
from another origin; done with the token from the page's own origin."""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from blpopq.connection import make_client
from blpopq.embedded import RedisServer
from blpopq.keyspace import Keyspace
from blpopq.producer import enqueue
from blpopq.protocol import Protocol
from blpopq.tiers import Tier
from blpopq.web.app import TOKEN_HEADER, create_app
from blpopq.web.state import Watcher

from ..conftest import start_server
from ..helpers import Daemon, wait_until
from .test_dead import poison, request, target

TOKEN = "s3cret-token-for-tests"
OWN = "http://testserver"


class Clock:
    """A clock the test moves: readings are then bounded by what the test did, not by how
    fast the machine happens to be."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def app_client(
    protocol: Protocol, token: str | None = None, clock: Clock | None = None
) -> tuple[TestClient, Watcher]:
    watcher = Watcher(protocol, actions=token is not None, clock=clock or Clock())
    app = create_app(watcher, token, allowed_hosts=["testserver"])
    return TestClient(app), watcher


def post(client: TestClient, path: str, body: Any, **headers: str) -> Any:
    return client.post(path, json=body, headers=headers)


def test_the_page_and_every_asset_it_names_are_served_from_the_package(
    protocol: Protocol,
) -> None:
    client, _ = app_client(protocol)
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(assets) == ["/static/dashboard.css", "/static/dashboard.js"]  # no CDN
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    for tier in ("vip", "alto", "comun"):
        assert f'id="depth-{tier}"' in page.text


def test_state_shows_depth_and_oldest_age_per_tier(protocol: Protocol) -> None:
    enqueue(protocol, [request(Tier.VIP, 1), request(Tier.COMUN, 2), request(Tier.COMUN, 3)], 10)
    client, _ = app_client(protocol)
    state = client.get("/api/state").json()
    tiers = state["status"]["tiers"]
    assert [tiers[t]["length"] for t in ("vip", "alto", "comun")] == [1, 0, 2]
    assert tiers["vip"]["oldest_age_s"] >= 0 and tiers["alto"]["oldest_age_s"] is None
    assert state["status"]["queued"] == 3 and state["actions"] is False
    assert state["batch"]["results"] == 0 and state["batch"]["timeline"]["tasks"] == 0


def test_state_of_a_worked_batch_has_its_workers_and_timeline(
    redis_server: RedisServer, namespace: str, protocol: Protocol
) -> None:
    with Daemon("--workers", "2", "--block-timeout", "0.5", *target(redis_server, namespace)) as d:
        d.wait_ready()
        report = enqueue(protocol, [request(Tier(t), n) for n, t in enumerate(
            ["vip", "alto", "comun", "vip", "comun"])], 10)  # fmt: skip
        wait_until(lambda: protocol.length(protocol.keys.results) == 5, "5 results", d)
        client, _ = app_client(protocol)
        state = client.get("/api/state").json()
    assert state["batch"]["id"] == report.batch and state["batch"]["results"] == 5
    timeline = state["batch"]["timeline"]
    assert timeline["tasks"] == 5 and len(timeline["bars"]) == 5 and not timeline["aggregated"]
    assert {lane["worker"] for lane in timeline["lanes"]} <= {
        w["worker"].split("/")[0] for h in state["hosts"] for w in h["workers"]
    }
    # Grouped by HOST (the part before ':'), not one group per HOST:PID/TOKEN worker.
    assert [h["host"] for h in state["hosts"]] == [socket.gethostname()]
    assert len(state["hosts"][0]["workers"]) == 2 and state["status"]["workers_alive"] == 2
    assert sum(state["status"]["tiers"][t]["length"] for t in ("vip", "alto", "comun")) == 0


def test_one_reading_a_second_however_many_ask(protocol: Protocol) -> None:
    clock = Clock()
    client, watcher = app_client(protocol, clock=clock)
    statuses: list[int] = []

    def ask() -> None:
        for _ in range(5):
            statuses.append(client.get("/api/state").status_code)

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [200] * 50 and watcher.readings == 1
    clock.now = 0.99
    client.get("/api/state")
    assert watcher.readings == 1
    clock.now = 1.0
    client.get("/api/state")
    client.get("/api/state")
    assert watcher.readings == 2


def test_the_state_changes_as_redis_does_once_the_second_is_over(protocol: Protocol) -> None:
    clock = Clock()
    client, _ = app_client(protocol, clock=clock)
    assert client.get("/api/state").json()["status"]["queued"] == 0
    enqueue(protocol, [request(Tier.ALTO, 1)], 10)
    assert client.get("/api/state").json()["status"]["queued"] == 0  # the same reading
    clock.now = 1.5
    assert client.get("/api/state").json()["status"]["tiers"]["alto"]["length"] == 1


def test_dead_letters_are_listed_with_their_reasons(
    client: redis.Redis, protocol: Protocol
) -> None:
    dead_id, _ = poison(protocol, Tier.ALTO, 1)
    web, _ = app_client(protocol)
    dead = web.get("/api/state").json()["dead"]
    assert dead["count"] == 1
    [letter] = dead["letters"]
    assert letter["id"] == dead_id and letter["tier"] == "alto" and "died" in letter["reason"]


def test_read_only_refuses_every_action(protocol: Protocol) -> None:
    poison(protocol, Tier.VIP, 1)
    client, _ = app_client(protocol)
    for path, body in (("/api/dead/purge", {"all": True}), ("/api/cancel", {"batch": "last"})):
        reply = post(client, path, body, **{TOKEN_HEADER: TOKEN, "Origin": OWN})
        assert reply.status_code == 403 and "read-only" in reply.json()["lines"][0]
    assert protocol.length(protocol.keys.dead) == 1


@pytest.mark.parametrize(
    ("headers", "code", "said"),
    [
        ({"Origin": OWN}, 401, "token is missing or wrong"),
        ({"Origin": OWN, TOKEN_HEADER: "guess"}, 401, "token is missing or wrong"),
        ({"Origin": "http://evil.example", TOKEN_HEADER: TOKEN}, 403, "cross-site"),
        ({"Sec-Fetch-Site": "cross-site", TOKEN_HEADER: TOKEN}, 403, "cross-site"),
    ],
    ids=["no-token", "wrong-token", "other-origin", "cross-site-fetch"],
)
def test_an_action_without_the_token_or_from_another_site_is_refused(
    protocol: Protocol, headers: dict[str, str], code: int, said: str
) -> None:
    poison(protocol, Tier.VIP, 1)
    client, _ = app_client(protocol, token=TOKEN)
    reply = post(client, "/api/dead/purge", {"all": True}, **headers)
    assert reply.status_code == code and said in reply.json()["lines"][0]
    assert protocol.length(protocol.keys.dead) == 1  # nothing was done


def test_a_form_post_is_refused_even_with_the_token(protocol: Protocol) -> None:
    poison(protocol, Tier.VIP, 1)
    client, _ = app_client(protocol, token=TOKEN)
    reply = client.post("/api/dead/purge", data={"all": "true"}, headers={TOKEN_HEADER: TOKEN})
    assert reply.status_code == 415
    assert protocol.length(protocol.keys.dead) == 1


def test_with_the_token_dead_letters_are_requeued_and_purged(protocol: Protocol) -> None:
    purged, _ = poison(protocol, Tier.ALTO, 10)  # the lower tier first: take serves vip first
    requeued, _ = poison(protocol, Tier.VIP, 1)
    clock = Clock()
    client, _ = app_client(protocol, token=TOKEN, clock=clock)
    assert client.get("/api/state").json()["dead"]["count"] == 2
    ok = {TOKEN_HEADER: TOKEN, "Origin": OWN}
    reply = post(client, "/api/dead/requeue", {"ids": [requeued]}, **ok)
    assert reply.status_code == 200, reply.json()
    assert f"requeued {requeued} at the tail of vip" in reply.json()["lines"]
    reply = post(client, "/api/dead/purge", {"ids": [purged]}, **ok)
    assert reply.status_code == 200 and "purged 1 dead letter" in reply.json()["lines"]
    state = client.get("/api/state").json()  # an action makes the next state a new reading
    assert state["dead"]["count"] == 0 and state["actions"] is True
    assert state["status"]["tiers"]["vip"]["length"] >= 1
    assert post(client, "/api/dead/purge", {"ids": ["nope"]}, **ok).status_code == 400
    assert post(client, "/api/dead/forget", {"all": True}, **ok).status_code == 404


def test_with_the_token_the_last_batch_is_cancelled(protocol: Protocol) -> None:
    enqueue(protocol, [request(Tier.VIP, 1), request(Tier.COMUN, 2)], 10)
    client, _ = app_client(protocol, token=TOKEN)
    reply = post(client, "/api/cancel", {"batch": "last"}, **{TOKEN_HEADER: TOKEN, "Origin": OWN})
    assert reply.status_code == 200 and "cancelled 2 waiting tasks" in reply.json()["lines"][0]
    state = client.get("/api/state").json()
    assert state["status"]["queued"] == 0 and state["batch"]["results"] == 2
    bad = post(client, "/api/cancel", {"batch": 7}, **{TOKEN_HEADER: TOKEN})
    assert bad.status_code == 400


def test_a_host_header_naming_another_site_is_refused(protocol: Protocol) -> None:
    """DNS rebinding: a page of evil.example resolved to 127.0.0.1 sends Host: evil.example."""
    client, _ = app_client(protocol)
    assert client.get("/api/state", headers={"Host": "evil.example"}).status_code == 400


def test_redis_gone_is_a_503_the_page_can_show(tmp_path: Path, redis_binary: str) -> None:
    """A server of this test's own, stopped under the dashboard."""
    server = start_server(redis_binary, tmp_path)
    protocol = Protocol(make_client(server.url, 2.0), Keyspace("gone"))
    clock = Clock()
    client, _ = app_client(protocol, clock=clock)
    assert client.get("/api/state").status_code == 200
    server.stop()
    clock.now = 2.0
    reply = client.get("/api/state")
    assert reply.status_code == 503 and reply.json()["error"]
