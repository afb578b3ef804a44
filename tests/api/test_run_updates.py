"""The public API's Run as W&B's "update metrics" and run-management samples use it, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

import wandb_dagster as wandb


def _finished_run(**kwargs):
    with wandb.init(project="proj", config={"lr": 0.1}, **kwargs) as run:
        run.log({"loss": 0.5, "model1": {"loss": 0.4}})
        run.log({"loss": 0.25})
    return run


def _fresh(run_id: str):
    return wandb.Api().run(f"tester/proj/{run_id}")


def test_summary_assignments_persist_with_summary_update_and_run_update(api_env):
    run_id = _finished_run().id

    # W&B docs, "Update metrics for a run, after the run has finished".
    run = _fresh(run_id)
    run.summary["tensor"] = [1, 2, 3]
    run.summary.update()
    assert _fresh(run_id).summary["tensor"] == [1, 2, 3]

    run = _fresh(run_id)
    run.summary.update({"accuracy": 0.9, "loss": 0.1})
    got = _fresh(run_id).summary
    assert (got["accuracy"], got["loss"], got["tensor"]) == (0.9, 0.1, [1, 2, 3])

    run = _fresh(run_id)
    run.summary["new_metric"] = 7
    run.summary.best = 0.05  # attribute assignment, as W&B's summary allows
    run.update()
    got = _fresh(run_id).summary
    assert (got["new_metric"], got.best, got["accuracy"]) == (7, 0.05, 0.9)

    # An assignment alone is not written (W&B writes on update()), and del is written by the next update.
    run = _fresh(run_id)
    run.summary["pending"] = 1
    assert "pending" not in _fresh(run_id).summary
    del run.summary["new_metric"]
    run.summary.update()
    assert "new_metric" not in _fresh(run_id).summary and _fresh(run_id).summary["pending"] == 1


def test_summary_behaves_like_the_w_and_b_summary_object(api_env):
    run_id = _finished_run().id
    summary = _fresh(run_id).summary
    # What the SDK recorded: the last values and the last step's _step, _timestamp and _runtime.
    assert summary["loss"] == 0.25 and summary["_step"] == 1
    assert isinstance(summary["_timestamp"], float) and summary["_runtime"] >= 0
    assert isinstance(summary._json_dict, dict) and summary._json_dict["model1"] == {"loss": 0.4}
    assert set(summary.keys()) == {"loss", "model1", "_step", "_timestamp", "_runtime"}
    assert "loss" in summary and " loss " in summary and summary.get("missing", 3) == 3
    nested = summary["model1"]
    assert nested["loss"] == 0.4 and nested.loss == 0.4 and dict(nested) == {"loss": 0.4}
    nested["acc"] = 0.5  # a nested change belongs to the run's summary
    nested.update()
    assert _fresh(run_id).summary._json_dict["model1"] == {"loss": 0.4, "acc": 0.5}
    assert _fresh(run_id).summary_metrics["model1"] == {"loss": 0.4, "acc": 0.5}
    fresh = _fresh(run_id).summary
    fresh.update({"loss": 9}, overwrite=False)  # not set through this object: written
    fresh["x"] = 1
    fresh.update({"x": 2}, overwrite=False)  # set through this object: kept
    assert (_fresh(run_id).summary["loss"], _fresh(run_id).summary["x"]) == (9, 1)
    with pytest.raises(ValueError, match="summary.bad"):
        fresh["bad"] = object()
    with pytest.raises(AttributeError, match="no key 'absent'"):
        fresh.absent  # noqa: B018


def test_run_update_saves_config_tags_name_notes_group_job_type(api_env):
    run_id = _finished_run(tags=["a"], notes="first").id
    run = _fresh(run_id)
    run.config["batch_size"] = 32
    run.tags.append("b")
    run.name = "renamed"
    run.notes = "second"
    run.group = "g"
    run.job_type = "eval"
    run.update()
    got = _fresh(run_id)
    assert (got.config, got.tags, got.name, got.notes, got.group, got.job_type) == (
        {"lr": 0.1, "batch_size": 32}, ["a", "b"], "renamed", "second", "g", "eval",
    )  # fmt: skip
    got.tags = ["bad tag!"]
    with pytest.raises(ValueError, match="bad tag"):
        got.update()


def test_run_delete_keeps_or_deletes_the_artifacts(api_env):
    with wandb.init(project="proj") as run:
        run.log({"loss": 1})
        kept = wandb.Artifact("kept", type="dataset")
        with kept.new_file("a.txt") as f:
            f.write("a")
        run.log_artifact(kept)
    with wandb.init(project="proj") as other:
        gone = wandb.Artifact("gone", type="dataset")
        with gone.new_file("b.txt") as f:
            f.write("b")
        other.log_artifact(gone, aliases=["best"])
        other.use_artifact("kept:latest")
    api = wandb.Api()
    api.run(f"proj/{run.id}").delete()
    assert [r.id for r in api.runs("proj")] == [other.id]
    with pytest.raises(ValueError, match="Could not find run"):
        api.run(f"proj/{run.id}")
    survivor = api.artifact("proj/kept:v0")
    assert survivor.download() and survivor.logged_by() is None
    assert [r.id for r in survivor.used_by()] == [other.id]

    api.run(f"proj/{other.id}").delete(delete_artifacts=True)
    assert not api.artifact_exists("proj/gone:v0") and api.artifact_exists("proj/kept:v0")
    assert list(api.runs("proj")) == []


def test_run_url_and_resumed(api_env):
    with wandb.init(project="proj", id="fixed1") as run:
        assert run.resumed is False
        url = run.url
    assert url == "http://127.0.0.1:8600/tester/proj/runs/fixed1" and url == _fresh("fixed1").url
    with wandb.init(project="proj", id="fixed1", resume="allow") as again:
        assert again.resumed is True
    with wandb.init(project="proj", id="fixed2", resume="allow") as new:
        assert new.resumed is False


def test_run_url_is_the_page_in_the_configured_app(api_env, monkeypatch):
    # The web app that serves the workspace elsewhere (WANDB_DAGSTER_APP_URL): run.url is its run page.
    monkeypatch.setenv("WANDB_DAGSTER_APP_URL", "https://wandb.example.com/team/")
    with wandb.init(project="proj", id="fixed3", settings=wandb.Settings(app_url=None)) as run:
        assert run.url == "https://wandb.example.com/team/tester/proj/runs/fixed3"
