"""The ACL rules of each role (access.py): derived from one table, keys of one namespace."""

from __future__ import annotations

import pytest

from blpopq.access import ROLES, STEPS, acl_rules, role_commands, script_commands
from blpopq.protocol import SCRIPTS


def test_rules_allow_one_namespace_and_only_listed_commands() -> None:
    words = acl_rules("producer", "orders").split()
    assert words[:4] == ["resetkeys", "resetchannels", "~{orders}:*", "-@all"]
    assert all(w.startswith("+") for w in words[4:])
    assert "+evalsha" in words and "+rpush" in words  # rpush: called by enqueue.lua


def test_a_scripts_commands_reach_its_roles() -> None:
    assert "lpush" in script_commands("requeue")
    assert "lpush" in role_commands("daemon")  # the reaper puts tasks back at the head
    assert "blpop" not in role_commands("producer")
    assert "client|setname" not in role_commands("collector")


def test_admin_can_do_what_every_role_can() -> None:
    for role in ROLES:
        assert set(role_commands(role)) <= set(role_commands("admin")), role


def test_every_step_names_known_scripts() -> None:
    for name, step in STEPS.items():
        assert set(step.scripts) <= set(SCRIPTS), name


def test_a_namespace_with_glob_characters_is_refused() -> None:
    with pytest.raises(ValueError):
        acl_rules("daemon", "a*b")
