"""init's arguments: each bad value is refused by name before a workspace is opened; resolved arguments and
resume handling (sdk/init_args.py, run._apply_to_resumed)."""

from __future__ import annotations

import argparse

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk import init_args
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.settings import Settings


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "online-ish"}, "mode='online-ish' is invalid"),
        ({"id": "has space"}, "Run id 'has space' is invalid"),
        ({"id": "a/b"}, "Run id 'a/b' is invalid"),
        ({"id": "a:b"}, "Run id 'a:b' is invalid"),
        ({"resume": "sometimes"}, "resume='sometimes' is invalid"),
        ({"settings": {"no_such_setting": 1}}, r"Unknown settings \['no_such_setting'\]"),
        ({"settings": 42}, "settings must be a dict or wandb_dagster.Settings, got int"),
        ({"config": {"model": object()}}, "'config.model' has type object"),
        ({"config": {"nested": {"deep": object()}}}, "'config.nested.deep' has type object"),
        ({"tags": ["ok", "bad;tag"]}, "bad;tag"),
    ],
)
def test_a_bad_argument_names_its_value_and_opens_no_workspace(ws_env, kwargs, message):
    with pytest.raises(ValueError, match=message):
        wandb.init(project="p", **kwargs)
    # Checked before anything is opened or written: no workspace, no run, no active run.
    assert Workspace.current(Settings.resolve(project="p")) is None
    assert wandb.run is None


def test_a_bad_run_id_from_the_environment_is_named_too(ws_env, monkeypatch):
    monkeypatch.setenv("WANDB_RUN_ID", "from env")
    with pytest.raises(ValueError, match="Run id 'from env' is invalid"):
        wandb.init(project="p")


def test_validate_resolves_defaults_from_the_environment(ws_env, monkeypatch):
    monkeypatch.setenv("WANDB_RUN_ID", "envrun01")
    monkeypatch.setenv("WANDB_RUN_GROUP", "env-group")
    monkeypatch.setenv("WANDB_JOB_TYPE", "env-job")
    args = init_args.validate(project="wandb-registry-Model", resume=True)
    assert args.run_id == "envrun01" and args.group == "env-group" and args.job_type == "env-job"
    assert args.resume == "allow" and args.resumed
    assert args.settings.project == "wandb-registry-model"  # registry names are case-insensitive
    assert args.tags is None and args.name is None and args.notes is None
    # Given arguments win over the environment.
    given = init_args.validate(id="given01", group="g", job_type="j", resume=False)
    assert (given.run_id, given.group, given.job_type) == ("given01", "g", "j")
    assert given.resume is None and not given.resumed


def test_validate_filters_and_cleans_the_config():
    namespace = argparse.Namespace(lr=0.1, epochs=3, secret="x", loss=float("nan"))
    args = init_args.validate(config=namespace, config_exclude_keys=["secret"])
    assert args.config == {"lr": 0.1, "epochs": 3, "loss": "nan"}
    only = init_args.validate(config={"a": 1, "b": 2}, config_include_keys=["b"])
    assert only.config == {"b": 2}


def test_return_previous_returns_the_active_run_before_checking_anything_else(ws_env):
    with wandb.init(project="p") as first:
        # As before the split: with reinit="return_previous" an active run is returned as it is.
        assert wandb.init(project="p", id="bad id", reinit="return_previous") is first


def test_a_resumed_run_takes_the_notes_tags_and_config_it_is_given(any_ws_env):
    with wandb.init(project="p", id="resume01", notes="first", tags=["a"], config={"x": 1}) as run:
        run.log({"m": 1})
    with wandb.init(project="p", id="resume01", resume="must", notes="second", tags=["b"], config={"y": 2}) as run:
        assert run.notes == "second" and run.tags == ("b",) and dict(run.config) == {"x": 1, "y": 2}
        assert run.step == 1  # continues after the logged history
    record = Workspace.default().store.get_run("tester", "p", "resume01")
    assert record.notes == "second" and list(record.tags) == ["b"] and record.config == {"x": 1, "y": 2}
    # Arguments not given leave the resumed run as it was.
    with wandb.init(project="p", id="resume01", resume="allow") as run:
        assert run.notes == "second" and run.tags == ("b",)
