"""W&B's environment variables for runs and config-defaults.yaml; an init() argument wins over each."""

from __future__ import annotations

import pytest

import wandb_dagster as wandb

_VARS = ("WANDB_RESUME", "WANDB_TAGS", "WANDB_NAME", "WANDB_NOTES", "WANDB_MODE", "WANDB_RUN_ID")


@pytest.fixture
def env(any_ws_env, monkeypatch):
    for var in _VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def _record(run):
    return wandb.Api().run(f"{run.entity}/{run.project}/{run.id}")


def test_environment_stands_in_for_init_arguments(env):
    env.setenv("WANDB_RUN_GROUP", "exp-1")
    env.setenv("WANDB_JOB_TYPE", "train")
    env.setenv("WANDB_TAGS", "baseline, small,")
    env.setenv("WANDB_NAME", "from-env")
    env.setenv("WANDB_NOTES", "notes from env")
    with wandb.init(project="p") as run:
        pass
    got = _record(run)
    assert (got.group, got.job_type, got.tags, got.name, got.notes) == (
        "exp-1", "train", ["baseline", "small"], "from-env", "notes from env",
    )  # fmt: skip
    with wandb.init(project="p", group="g", job_type="eval", tags=["t"], name="arg", notes="n") as run:
        pass
    got = _record(run)
    assert (got.group, got.job_type, got.tags, got.name, got.notes) == ("g", "eval", ["t"], "arg", "n")


def test_wandb_resume_with_wandb_run_id(env):
    env.setenv("WANDB_RUN_ID", "resumable")
    with wandb.init(project="p") as first:
        first.log({"loss": 1.0})
    env.setenv("WANDB_RESUME", "allow")
    with wandb.init(project="p") as second:
        assert second.id == "resumable" and second.resumed and second.step == 1
        second.log({"loss": 0.5})
    assert [r["loss"] for r in _record(second).history(pandas=False)] == [1.0, 0.5]
    env.setenv("WANDB_RESUME", "must")
    env.setenv("WANDB_RUN_ID", "never-made")
    with pytest.raises(ValueError, match="never-made.*does not exist and resume='must'"):
        wandb.init(project="p")
    with wandb.init(project="p", resume="allow") as third:  # the argument wins
        assert third.id == "never-made" and not third.resumed
    env.setenv("WANDB_RESUME", "sometimes")
    with pytest.raises(ValueError, match="resume='sometimes' is invalid"):
        wandb.init(project="p")


@pytest.mark.parametrize("mode", ["online", "offline", "dryrun"])
def test_wandb_mode_online_and_offline_record_locally(env, mode):
    env.setenv("WANDB_MODE", mode)
    with wandb.init(project="p") as run:
        run.log({"x": 1})
    assert _record(run).summary["x"] == 1


def test_wandb_mode_disabled_keeps_nothing_and_the_argument_wins(env):
    env.setenv("WANDB_MODE", "disabled")
    with wandb.init(project="p") as run:
        run.log({"x": 1})  # works, as W&B's disabled run accepts every call
    assert [r.id for r in wandb.Api().runs("p")] == []
    with wandb.init(project="p", mode="offline") as kept:
        pass
    assert [r.id for r in wandb.Api().runs("p")] == [kept.id]
    env.setenv("WANDB_MODE", "sideways")
    with pytest.raises(ValueError, match="WANDB_MODE='sideways' is invalid"):
        wandb.init(project="p")


def test_config_defaults_yaml_seeds_the_config(env, any_ws_env):
    (any_ws_env / "config-defaults.yaml").write_text(
        "wandb_version: 1\n"
        "epochs:\n  desc: Number of epochs to train over\n  value: 100\n"
        "batch_size:\n  desc: Size of each mini-batch\n  value: 32\n"
        "lr: 0.1\n"
    )
    with wandb.init(project="p", config={"batch_size": 64}) as run:
        assert run.config.epochs == 100 and run.config["batch_size"] == 64 and run.config["lr"] == 0.1
    assert _record(run).config == {"epochs": 100, "batch_size": 64, "lr": 0.1}
    (any_ws_env / "config-defaults.yaml").write_text("- not\n- a mapping\n")
    with pytest.raises(ValueError, match="config-defaults.yaml must map config keys"):
        wandb.init(project="p")
