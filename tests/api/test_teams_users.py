"""Teams and users of W&B's Public API reference (seed 001), on SQLite and PostgreSQL (issue 11).

A directory, not access control: these tests check what is recorded and returned, nothing about who may
read what.
"""

from __future__ import annotations

from datetime import datetime

import pytest

import wandb_dagster as wandb


def test_viewer_is_the_configured_user_else_the_os_user(api_env, monkeypatch):
    monkeypatch.setenv("WANDB_USERNAME", "carol")
    api = wandb.Api()
    viewer = api.viewer
    assert (viewer.username, viewer.entity, viewer.email, viewer.admin) == ("carol", "carol", None, False)
    assert api.viewer == viewer  # recorded once, then found
    assert api.user("carol") == viewer
    monkeypatch.delenv("WANDB_USERNAME")
    monkeypatch.setenv("USER", "os-dave")
    monkeypatch.setenv("LOGNAME", "os-dave")
    assert wandb.Api().viewer.username == "os-dave"
    assert api.default_entity == "tester"  # the configured entity, not the viewer


def test_create_user_user_and_users(api_env):
    api = wandb.Api()
    alice = api.create_user("alice@example.com", admin=True)
    assert (alice.username, alice.email, alice.admin, alice.teams) == ("alice", "alice@example.com", True, [])
    datetime.fromisoformat(alice.created_at.replace("Z", "+00:00"))  # W&B's documented parsing
    # Another alice@ takes the next free name; an email is unique.
    other = api.create_user("alice@elsewhere.org")
    assert other.username == "alice-2"
    with pytest.raises(ValueError, match="exists already"):
        api.create_user("ALICE@example.com".lower())
    with pytest.raises(ValueError, match="email 'alice' is invalid"):
        api.create_user("alice")
    api.create_user("bob@example.com")
    assert api.user("alice") == alice and api.user("Alice@Example.com") == alice
    assert api.user("nobody") is None
    assert [u.username for u in api.users("alice")] == ["alice", "alice-2"]
    assert [u.username for u in api.users("example.com")] == ["alice", "bob"]
    assert api.users("zzz") == []
    assert alice.api_keys == []
    with pytest.raises(NotImplementedError, match="no API keys"):
        alice.generate_api_key()


def test_create_team_members_and_invite(api_env, monkeypatch):
    monkeypatch.setenv("WANDB_USERNAME", "carol")
    api = wandb.Api()
    team = api.create_team("my-team")
    assert (team.name, team.organization, repr(team)) == ("my-team", "default", "<Team my-team>")
    # The viewer created it, so the viewer is its admin.
    assert [(m.username, m.admin) for m in team.members] == [("carol", True)]
    api.create_user("bob@example.com")
    assert team.invite("bob") is True
    assert team.invite("bob") is False  # a member already
    assert team.invite("nobody") is False  # W&B's invite answers False when it cannot
    assert team.invite("erin@example.com", admin=True) is True  # an unknown email: the user is created
    assert [(m.username, m.admin) for m in team.members] == [("carol", True), ("bob", False), ("erin", True)]
    assert api.user("bob").teams == ["my-team"]
    # The same team again is returned as it is; another admin must exist.
    assert api.create_team("my-team").members[0].username == "carol"
    with pytest.raises(ValueError, match="no user 'ghost'"):
        api.create_team("ghosts", admin_username="ghost")
    with pytest.raises(ValueError, match="'bob' is a user's name"):
        api.create_team("bob")
    with pytest.raises(ValueError, match="team name 'a/b' is invalid"):
        api.create_team("a/b")
    # Member.delete() removes the membership.
    bob = next(m for m in api.team("my-team").members if m.username == "bob")
    assert bob.delete() is True and bob.delete() is False
    assert [m.username for m in api.team("my-team").members] == ["carol", "erin"]
    with pytest.raises(ValueError, match=r"no team 'other-team'.*teams: \['my-team'\]"):
        api.team("other-team")
    with pytest.raises(NotImplementedError, match="no API keys or service accounts"):
        team.create_service_account("ci")


def test_a_team_belongs_to_the_api_organization_and_its_runs_link_there(api_env, monkeypatch):
    from pathlib import Path

    monkeypatch.setenv("WANDB_DAGSTER_ORGANIZATION", "acme")
    api = wandb.Api()
    team = api.create_team("ml-team")
    assert team.organization == "acme"
    with wandb.init(entity="ml-team", project="demo") as run:
        Path("m.bin").write_bytes(b"w")
        model = wandb.Artifact("m", type="model")
        model.add_file("m.bin")
        run.link_artifact(run.log_artifact(model), "wandb-registry-model/Team")
    monkeypatch.delenv("WANDB_DAGSTER_ORGANIZATION")
    # Without the setting, the team's name still says whose registry: acme's.
    assert wandb.Api().artifact("ml-team/wandb-registry-model/Team:v0").entity == "acme"
    assert wandb.Api().artifact("acme/wandb-registry-model/Team:v0").name == "Team:v0"
