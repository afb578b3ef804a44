"""wandb.login, wandb.setup, wandb.Settings and init's reinit forms, as W&B's SDK has them."""

from __future__ import annotations

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk import wandb_setup


@pytest.fixture(autouse=True)
def _no_global_settings():
    yield
    wandb_setup._global = None


def test_login_is_accepted_and_returns_false_as_w_and_b_offline(ws_env):
    assert wandb.login() is False
    assert wandb.login(key="x" * 40, relogin=True, host="https://api.wandb.ai", timeout=3) is False


def test_settings_feed_init_and_arguments_win(ws_env):
    with wandb.init(settings=wandb.Settings(project="from-settings", run_group="g", run_tags=["s"], silent=True,
                                            start_method="thread", x_disable_stats=True)) as run:  # fmt: skip
        pass
    got = wandb.Api().run(f"from-settings/{run.id}")
    assert (got.project, got.group, got.tags) == ("from-settings", "g", ["s"])
    with wandb.init(project="arg", settings=wandb.Settings(project="from-settings", run_group="g"), group="a") as run:
        pass
    got = wandb.Api().run(f"arg/{run.id}")
    assert (got.project, got.group) == ("arg", "a")
    with pytest.raises(ValueError, match=r"Unknown settings \['colour'\].*'silent'"):
        wandb.Settings(colour="red")
    settings = wandb.Settings(mode="offline")
    settings.run_name = "named"
    assert (settings.mode, settings.run_name, settings.console) == ("offline", "named", None)


def test_setup_settings_apply_to_later_runs(ws_env):
    assert wandb.setup(wandb.Settings(project="set-up", run_job_type="train")).settings.project == "set-up"
    with wandb.init() as run:
        pass
    with wandb.init(settings={"run_job_type": "eval"}) as other:
        pass
    api = wandb.Api()
    assert (api.run(f"set-up/{run.id}").job_type, api.run(f"set-up/{other.id}").job_type) == ("train", "eval")
    wandb.teardown()
    with wandb.init() as plain:
        assert plain.project == "uncategorized"


def test_reinit_forms(ws_env):
    first = wandb.init(project="p")
    with pytest.warns(UserWarning, match="active run is returned"):
        assert wandb.init(project="p") is first  # "default" outside notebooks: the active run, as W&B
    assert wandb.init(project="p", reinit=False) is first
    assert wandb.init(project="p", reinit="return_previous") is first
    alongside = wandb.init(project="p", reinit="create_new")
    assert wandb.run is first and not alongside._finished
    with pytest.raises(RuntimeError, match="Cannot resume a run while run"):
        wandb.init(project="p", id=first.id, resume="must")
    fresh = wandb.init(project="p", reinit="finish_previous")
    assert first._finished and alongside._finished and wandb.run is fresh
    newer = wandb.init(project="p", reinit=True)
    assert fresh._finished and wandb.run is newer
    with pytest.raises(ValueError, match="reinit='sometimes' is invalid"):
        wandb.init(project="p", reinit="sometimes")
    newer.finish()
    assert {r.state for r in wandb.Api().runs("p")} == {"finished"}
