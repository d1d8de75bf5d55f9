"""Settings: flags over environment over defaults; bad values are errors, never ignored."""

from __future__ import annotations

import pickle

import pytest

from blpopq.config import Settings, build_settings
from blpopq.connection import mask_url
from blpopq.errors import ConfigError


def test_flags_win_over_environment_over_defaults() -> None:
    env = {"REDIS_URL": "redis://env:1/0", "BLPOPQ_WORKERS": "3", "BLPOPQ_GRACE": "7.5"}
    settings = build_settings({"workers": 5, "redis_url": None}, env)
    assert settings.workers == 5 and settings.grace == 7.5
    assert settings.url == "redis://env:1/0"
    assert build_settings({}, {}).url == "redis://localhost:6379"
    assert build_settings({}, {}).redis_url is None


def test_settings_cross_process_boundaries() -> None:
    """Workers get their Settings by pickling (multiprocessing), never a live client."""
    settings = Settings(redis_url="redis://x:1", namespace="n")
    assert pickle.loads(pickle.dumps(settings)) == settings


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        ({}, {"BLPOPQ_WORKERS": "many"}, "BLPOPQ_WORKERS"),
        ({"workers": -1}, {}, "workers"),
        ({"block_timeout": 0.0}, {}, "block timeout"),
        ({"namespace": "a{b}"}, {}, "namespace"),
        ({"namespace": ""}, {}, "namespace"),
        ({"max_difficulty": 300}, {}, "difficulty"),
        ({"bogus": 1}, {}, "unknown setting"),
    ],
)
def test_bad_values_are_rejected_with_the_culprit_named(flags, env, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        build_settings(flags, env)


def test_socket_timeout_stays_above_the_blpop_timeout() -> None:
    settings = Settings(block_timeout=30.0)
    assert settings.socket_timeout > settings.block_timeout


@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cret@host:6379/0",
        "redis://user:s3cret@host:6379/0",
        "rediss://:s3cret@host/0",
        "unix:///tmp/r.sock?db=0&password=s3cret",
    ],
)
def test_passwords_are_masked(url: str) -> None:
    masked = mask_url(url)
    assert "s3cret" not in masked and "***" in masked


def test_a_toml_file_sits_below_environment_and_flags(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from blpopq.config import load_file, resolve

    path = tmp_path / "blpopq.toml"
    path.write_text('workers = 4\ngrace = 12\nnamespace = "fromfile"\nredis_url = "redis://f:1"\n')
    values = load_file(str(path))
    env = {"BLPOPQ_GRACE": "20"}
    settings = build_settings({"namespace": "fromflag"}, env, values)
    assert (settings.workers, settings.grace, settings.namespace) == (4, 20.0, "fromflag")
    sources = resolve({"namespace": "fromflag"}, env, values)
    assert sources["workers"][1] == "file" and sources["grace"][1] == "env BLPOPQ_GRACE"
    assert sources["namespace"][1] == "flag" and "block_timeout" not in sources


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("workerz = 4\n", "unknown setting 'workerz'"),
        ('workers = "4"\n', "not a valid int"),
        ("grace = true\n", "not a valid float"),
        ("workers = [\n", "not valid TOML"),
    ],
)
def test_a_bad_toml_file_is_an_error_naming_the_culprit(tmp_path, text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    from blpopq.config import load_file

    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_file(str(path))


def test_every_bad_key_of_a_toml_file_is_reported_at_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from blpopq.config import load_file

    path = tmp_path / "bad.toml"
    path.write_text('workerz = 3\ngrace = true\nlease = 5\nworkers = "4"\n')
    with pytest.raises(ConfigError) as info:
        load_file(str(path))
    assert str(info.value).splitlines() == [
        f"{path}: unknown setting 'workerz'",
        f"{path}: grace = true is not a valid float",
        f'{path}: workers = "4" is not a valid int',
    ]


def test_every_out_of_range_setting_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        build_settings({"grace": -1.0, "lease": 0.0, "namespace": "a b"}, {})
    message = str(info.value)
    assert "grace must be" in message and "lease must be" in message and "a b" in message


@pytest.mark.parametrize(
    "namespace",
    ["ná", "a b", "tab\there", "new\nline", "glob*", "q?", "[x]", "{x}", "a:b", "x" * 65, "\x00"],
)
def test_namespaces_redis_or_acl_patterns_would_reject_are_refused(namespace: str) -> None:
    """A namespace is part of CLIENT SETNAME (printable ASCII, no spaces), of ACL key
    patterns (globs) and of the {hash tag}: one that passed validation crash-looped workers."""
    with pytest.raises(ConfigError, match="namespace"):
        build_settings({"namespace": namespace}, {})


@pytest.mark.parametrize("namespace", ["blpopq", "a", "team-a_prod.v2", "X" * 64])
def test_plain_ascii_namespaces_are_accepted(namespace: str) -> None:
    assert build_settings({"namespace": namespace}, {}).namespace == namespace


def test_an_empty_namespace_variable_is_refused_not_read_as_the_default() -> None:
    """BLPOPQ_NAMESPACE="" silently shared the default namespace's queue."""
    with pytest.raises(ConfigError, match="BLPOPQ_NAMESPACE is set but empty"):
        build_settings({}, {"BLPOPQ_NAMESPACE": ""})
