"""Runs: init, context manager, states, log/history/summary/config, and artifact lineage (docs/behaviour.md section 5)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk.workspace import Workspace


def _store():
    return Workspace.default().store


def test_init_context_manager_and_states(any_ws_env):
    with wandb.init(project="p", config={"lr": 0.1}, job_type="train", group="g", tags=["a"], notes="n") as run:
        assert wandb.run is run
        assert re.fullmatch(r"[a-z0-9]{8}", run.id)
        assert run.config["lr"] == 0.1 and run.config.lr == 0.1
        run.config.update({"batch": 32})
    assert wandb.run is None
    record = _store().get_run(run.entity, "p", run.id)
    assert record.state == "finished"
    assert record.config == {"lr": 0.1, "batch": 32}
    assert (record.job_type, record.group, list(record.tags), record.notes) == ("train", "g", ["a"], "n")

    with pytest.raises(ZeroDivisionError), wandb.init(project="p") as failing:
        1 / 0
    assert _store().get_run(failing.entity, "p", failing.id).state == "failed"


def test_log_history_steps_and_summary(any_ws_env):
    with wandb.init(project="p") as run:
        run.log({"loss": 1.0})
        run.log({"acc": 0.5}, commit=False)
        run.log({"loss": 0.5})
        run.log({"loss": 0.25}, step=10)
        with pytest.warns(UserWarning, match="step=3"):
            run.log({"loss": 9.0}, step=3)
        run.summary["best"] = 0.25
        run_id = run.id
    rows = _store().history(_store().get_run(run.entity, "p", run_id).pk)
    assert [(r["_step"], r.get("loss"), r.get("acc")) for r in rows] == [(0, 1.0, None), (1, 0.5, 0.5), (10, 0.25, None)]
    assert all("_timestamp" in r and "_runtime" in r for r in rows)
    summary = _store().get_run(run.entity, "p", run_id).summary
    assert summary["loss"] == 0.25 and summary["acc"] == 0.5 and summary["best"] == 0.25


def test_finish_writes_the_last_metrics_summary_and_state_in_one_commit(any_ws_env):
    import sqlalchemy as sa

    run = wandb.init(project="p", config={"lr": 0.1})
    run.log({"loss": 1.0})
    run.log({"loss": 0.5})
    run.summary["best"] = 0.5
    engine = run.workspace.store._engine
    commits = []

    def count(conn) -> None:
        commits.append(conn)

    sa.event.listen(engine, "commit", count)
    try:
        run.finish()
    finally:
        sa.event.remove(engine, "commit", count)
    # Earlier, history, summary/heartbeat and the state were three commits: a crash between them left a
    # "running" run with all its metrics, or a finished one without its last rows.
    assert len(commits) == 1
    record = _store().get_run(run.entity, "p", run.id)
    user_keys = {k: v for k, v in record.summary.items() if not k.startswith("_")}
    assert (record.state, user_keys, record.config) == ("finished", {"loss": 0.5, "best": 0.5}, {"lr": 0.1})
    assert record.summary["_step"] == 1 and record.summary["_runtime"] >= 0  # as W&B's summary
    assert [r["loss"] for r in _store().history(record.pk)] == [1.0, 0.5]


def test_bad_metric_values_are_clear(ws_env):
    with wandb.init(project="p") as run, pytest.raises(ValueError, match="'img'"):
        run.log({"img": object()})


def test_ids_and_resume(any_ws_env):
    with wandb.init(project="p", id="fixedid1", config={"a": 1}) as run:
        run.log({"x": 1})
    with pytest.raises(ValueError, match="fixedid1"):
        wandb.init(project="p", id="fixedid1")
    with wandb.init(project="p", id="fixedid1", resume="allow") as run:
        run.log({"x": 2})
    rows = _store().history(_store().get_run(run.entity, "p", "fixedid1").pk)
    assert [r["_step"] for r in rows] == [0, 1]
    with wandb.init(project="p", id="fixedid1", resume="allow", config={"b": 2}, tags=["resumed"], name="again"):
        pass
    record = _store().get_run(run.entity, "p", "fixedid1")
    assert record.config == {"a": 1, "b": 2} and list(record.tags) == ["resumed"] and record.display_name == "again"
    with pytest.raises(ValueError):
        wandb.init(project="p", id="nosuchid", resume="must")


def test_module_level_functions(ws_env):
    with pytest.raises(RuntimeError, match="wandb.init"):
        wandb.log({"x": 1})
    with pytest.raises(RuntimeError, match=r"wandb.init\(\) before using wandb.config"):
        wandb.config.update({"a": 1})
    run = wandb.init(project="p")
    wandb.log({"x": 1})
    assert wandb.config is run.config
    wandb.finish()
    assert wandb.run is None


def test_a_script_that_forgets_finish_still_ends_its_run(ws_env):
    code = "import wandb_dagster as wandb\nrun = wandb.init(project='p', id='noend001')\nrun.log({'x': 1})\n"
    subprocess.run([sys.executable, "-c", code], check=True)
    failing = code.replace("noend001", "noend002") + "import sys\nsys.exit(3)\n"
    subprocess.run([sys.executable, "-c", failing], check=False)
    crash = code.replace("noend001", "noend003") + "1/0\n"
    subprocess.run([sys.executable, "-c", crash], check=False, capture_output=True)
    side = code.replace("noend001", "noend004") + (
        "other = wandb.init(project='p', id='noend005', reinit='create_new')\nother.log({'y': 2})\n"
    )
    subprocess.run([sys.executable, "-c", side], check=True)
    store = _store()
    record = store.get_run("tester", "p", "noend001")
    assert record.state == "finished"
    assert [r["x"] for r in store.history(record.pk)] == [1]
    assert store.get_run("tester", "p", "noend002").state == "failed"
    assert store.get_run("tester", "p", "noend003").state == "failed"
    # Every unfinished run is ended at exit, not only wandb.run.
    for run_id, key in (("noend004", "x"), ("noend005", "y")):
        record = store.get_run("tester", "p", run_id)
        assert record.state == "finished" and key in record.summary, run_id


def test_log_artifact_from_a_path_and_lineage(any_ws_env):
    (any_ws_env / "model.h5").write_bytes(b"weights")
    (any_ws_env / "data").mkdir()
    (any_ws_env / "data" / "x.csv").write_text("1,2\n")
    with wandb.init(project="p") as producer:
        from_file = producer.log_artifact("model.h5")
        from_dir = producer.log_artifact("data", type="dataset")
        assert from_file.name == f"run-{producer.id}-model.h5:v0" and from_file.type == "unspecified"
        assert from_dir.name == f"run-{producer.id}-data:v0" and from_dir.type == "dataset"
    with wandb.init(project="p") as consumer:
        used = consumer.use_artifact(f"run-{producer.id}-data:v0", type="dataset")
        with pytest.raises(ValueError, match="'model'"):
            consumer.use_artifact(f"run-{producer.id}-data:latest", type="model")
    assert sorted(a.id for a in producer.logged_artifacts()) == sorted([from_file.id, from_dir.id])
    assert [a.id for a in consumer.used_artifacts()] == [used.id]


def test_use_artifact_name_forms(any_ws_env):
    (any_ws_env / "m").write_text("m")
    with wandb.init(project="my-project", entity="my-entity") as run:
        art = wandb.Artifact("bike-model", type="model")
        art.add_file("m")
        run.log_artifact(art)
    with wandb.init(project="other", entity="my-entity") as run:
        assert run.use_artifact("my-project/bike-model:v0").id == art.id
        assert run.use_artifact("my-entity/my-project/bike-model:v0").id == art.id
        assert run.use_artifact("my-entity/my-project/bike-model:latest").id == art.id
        with pytest.raises(wandb.ArtifactNotFoundError, match="bike-model:v9"):
            run.use_artifact("my-project/bike-model:v9")


def test_use_artifact_with_an_unlogged_artifact_is_idempotent(any_ws_env):
    (any_ws_env / "model.h5").write_bytes(b"w")
    with wandb.init(project="p") as run:
        for _ in range(3):
            artifact = wandb.Artifact("bike-model", type="model")
            artifact.add_file("model.h5")
            used = run.use_artifact(artifact)
            assert used.version == "v0"
        assert [a.id for a in run.used_artifacts()] == [used.id]
        # As in W&B, the draft is logged by this run (once), then used by it.
        assert [a.id for a in run.logged_artifacts()] == [used.id]


def test_log_model_and_use_model(any_ws_env):
    (any_ws_env / "model.h5").write_bytes(b"w1")
    (any_ws_env / "multi").mkdir()
    (any_ws_env / "multi" / "a").write_text("a")
    (any_ws_env / "multi" / "b").write_text("b")
    with wandb.init(project="p") as run:
        producer_id = run.id
        default = run.log_model("model.h5")
        assert default.name == f"run-{run.id}-model.h5:v0" and default.type == "model"
        run.log_model("multi", name="multi-model", aliases=["candidate"])
        (any_ws_env / "notes.txt").write_text("n")
        run.log_artifact("notes.txt", name="notes", type="dataset")
    with wandb.init(project="p") as run:
        path = run.use_model(f"run-{producer_id}-model.h5:latest")
        assert Path(path).read_bytes() == b"w1" and Path(path).name == "model.h5"
        folder = run.use_model("multi-model:candidate")
        assert sorted(p.name for p in Path(folder).iterdir()) == ["a", "b"]
        with pytest.raises(ValueError, match="model"):
            run.use_model("notes:latest")


def test_config_accepts_a_namespace_and_summary_attributes(ws_env):
    import argparse

    with wandb.init(project="p") as run:
        run.config.update(argparse.Namespace(lr=0.1, layers=3))
        run.summary.best = 0.9
    record = _store().get_run(run.entity, "p", run.id)
    assert record.config == {"lr": 0.1, "layers": 3}
    assert record.summary["best"] == 0.9


def test_use_model_refuses_a_dataset_without_recording_it(ws_env):
    (ws_env / "d.csv").write_text("1")
    with wandb.init(project="p") as run:
        run.log_artifact("d.csv", name="data", type="dataset")
    with wandb.init(project="p") as run:
        with pytest.raises(ValueError, match="'dataset'"):
            run.use_model("data:latest")
        assert run.used_artifacts() == []


def test_disabled_mode_records_nothing(ws_env):
    with wandb.init(project="p", mode="disabled", id="offrec01") as run:
        run.log({"x": 1})
        (ws_env / "f").write_text("f")
        run.log_artifact("f", name="nothing")
    assert _store().get_run("tester", "p", "offrec01") is None
    assert not wandb.Api(overrides={"project": "p"}).artifact_exists("nothing:v0")


def test_an_artifact_from_another_workspace_is_refused(ws_env, tmp_path):
    (ws_env / "f").write_text("f")
    with wandb.init(project="p", settings={"root_dir": str(tmp_path / "other")}) as other:
        foreign = other.log_artifact("f", name="foreign")
    with wandb.init(project="p") as run:
        with pytest.raises(ValueError, match="another workspace"):
            run.use_artifact(foreign)
        assert run.used_artifacts() == []
