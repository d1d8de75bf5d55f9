"""Redis URLs (redis_url.py): each form read without I/O, and masked in every form."""

from __future__ import annotations

import pytest

from blpopq.errors import ConfigError
from blpopq.redis_url import mask_url, parse_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://user:s3cret@host:6379/0", "redis://user:***@host:6379/0"),
        (
            "rediss://:s3cret@host/0?ssl_ca_certs=/ca.pem",
            "rediss://:***@host/0?ssl_ca_certs=/ca.pem",
        ),
        ("unix:///tmp/r.sock?db=0&password=s3cret", "unix:///tmp/r.sock?db=0&password=***"),
        (
            "redis+sentinel://u:s3cret@h1:26379,h2:26380/main/2?sentinel_password=s3cret",
            "redis+sentinel://u:***@h1:26379,h2:26380/main/2?sentinel_password=***",
        ),
        ("rediss+sentinel://:s3cret@h1:1/main", "rediss+sentinel://:***@h1:1/main"),
        ("redis+cluster://u:s3cret@h1:7000,h2:7001", "redis+cluster://u:***@h1:7000,h2:7001"),
        (
            "rediss+cluster://:s3cret@h1:7000/0?ssl_ca_certs=/ca&password=s3cret",
            "rediss+cluster://:***@h1:7000/0?ssl_ca_certs=/ca&password=***",
        ),
        ("redis://host:6379", "redis://host:6379"),
        ("redis://p@ss:s3cret@host", "redis://p@ss:***@host"),
    ],
)
def test_passwords_are_masked_in_every_form(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_a_sentinel_url_names_its_sentinels_service_db_and_credentials() -> None:
    target = parse_url("rediss+sentinel://u:pw@h1:26379,[::1]:26380/main/3?sentinel_password=x")
    assert (target.kind, target.tls, target.service, target.db) == ("sentinel", True, "main", 3)
    assert target.nodes == (("h1", 26379), ("::1", 26380))
    assert (target.username, target.password) == ("u", "pw")
    assert target.options == {"sentinel_password": "x"}
    assert "pw" not in repr(target)


def test_a_cluster_url_names_its_seed_nodes_and_credentials() -> None:
    target = parse_url("rediss+cluster://u:pw@h1:7000,[::1]:7001/0?ssl_cert_reqs=none")
    assert (target.kind, target.tls, target.db) == ("cluster", True, 0)
    assert target.nodes == (("h1", 7000), ("::1", 7001))
    assert (target.username, target.password) == ("u", "pw")
    assert target.tls_options == {"ssl_cert_reqs": "none"}
    assert parse_url("redis+cluster://h:1?password=pw").password == "pw"
    assert "pw" not in repr(target)


def test_tls_options_are_redis_pys_own_query_parameters() -> None:
    target = parse_url("rediss://h/0?ssl_ca_certs=/ca&ssl_cert_reqs=none&ssl_check_hostname=false")
    assert target.tls_options == {
        "ssl_ca_certs": "/ca", "ssl_cert_reqs": "none", "ssl_check_hostname": False,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h", "must start with redis://"),
        ("redis://h?ssl_ca_certs=/ca", "ssl_ca_certs needs TLS"),
        ("redis://h?socket_timeout=1", "unknown query parameter 'socket_timeout'"),
        ("rediss://h?ssl_cert_reqs=maybe", "ssl_cert_reqs must be one of"),
        ("redis+sentinel://h:1", "name the service"),
        ("redis+sentinel://h/main", "'h' is not host:port"),
        ("redis+sentinel://h:1/main/x", "database 'x' is not a number"),
        ("redis+sentinel://:s3cret@h:1", "name the service"),
        ("redis+cluster://:s3cret@h:1/2", "only database 0, not '2'"),
        ("redis+cluster://:s3cret@h", "'h' is not host:port"),
        ("redis+cluster://h:1?sentinel_password=s3cret", "unknown query parameter"),
        ("redis+cluster://h:1?ssl_ca_certs=/ca", "ssl_ca_certs needs TLS"),
    ],
)
def test_a_bad_url_says_what_is_wrong_without_its_password(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_url(url)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://u:s3cret@h:1/0",
        "rediss://:s3cret@h:1/0?ssl_cert_reqs=none",
        "redis+sentinel://u:s3cret@h1:1,h2:2/main?sentinel_password=s3cret",
        "redis+cluster://u:s3cret@h1:1,h2:2",
    ],
)
def test_blpopq_config_masks_every_form(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from blpopq.cli import main

    assert main(["config", "--redis-url", url], environ={}) == 0
    out = capsys.readouterr().out
    assert "s3cret" not in out
    assert mask_url(url) in out
