"""api.runs(path, filters, order, per_page) and the Run objects, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

import wandb_dagster as wandb
from wandb_dagster.sdk.workspace import Workspace


def _make_runs() -> list[str]:
    specs = [
        dict(config={"lr": 0.1, "experiment_name": "foo", "experiment": {"category": "testing"}}, tags=["prod"], group="g1", job_type="train"),
        dict(config={"lr": 0.01, "experiment_name": "bar"}, tags=[], group="g1", job_type="eval"),
        dict(config={"lr": 0.001, "experiment_name": "baz"}, tags=["prod", "old"], group=None, job_type="train"),
        dict(config={"experiment_name": "foo"}, tags=["x"], group="g2", job_type=None),
    ]
    ids = []
    for i, spec in enumerate(specs):
        with wandb.init(project="proj", name=f"run-{i}", **spec) as run:
            if i != 3:
                run.log({"loss": [0.5, 0.3, 0.9][i], "model1": {"loss": [0.5, 0.2, 0.5][i]}})
            ids.append(run.id)
    return ids


def test_runs_filters_like_the_w_and_b_examples(api_env):
    ids = _make_runs()
    api = wandb.Api()

    def found(filters=None, **kw):
        return [r.id for r in api.runs("tester/proj", filters=filters, **kw)]

    assert found({"config.experiment_name": "foo"}) == [ids[0], ids[3]]
    assert found({"$or": [{"config.experiment_name": "foo"}, {"config.experiment_name": "bar"}]}) == [ids[0], ids[1], ids[3]]
    assert found({"config.experiment_name": {"$regex": "b.*"}}) == [ids[1], ids[2]]
    assert found({"display_name": {"$regex": "^run-[12]"}}) == [ids[1], ids[2]]
    assert found({"displayName": "run-3"}) == [ids[3]]
    assert found({"config.experiment.category": "testing"}) == [ids[0]]
    assert found({"summary_metrics.model1.loss": 0.5}) == [ids[0], ids[2]]
    assert found({"config.lr": {"$lt": 0.05}}) == [ids[1], ids[2]]
    assert found({"config.lr": {"$exists": False}}) == [ids[3]]
    assert found({"tags": "prod"}) == [ids[0], ids[2]]
    assert found({"tags": {"$nin": ["prod"]}}) == [ids[1], ids[3]]
    assert found({"tags": {"$size": 0}}) == [ids[1]]
    assert found({"group": None}) == [ids[2]]
    assert found({"group": {"$ne": "g1"}}) == [ids[2], ids[3]]
    assert found({"jobType": "train", "state": "finished"}) == [ids[0], ids[2]]
    assert found({"name": ids[1]}) == [ids[1]]
    assert found({"$nor": [{"group": "g1"}, {"tags": "x"}]}) == [ids[2]]
    assert found({"createdAt": {"$gte": "2000-01-01T00:00:00Z"}}) == ids
    assert found({"createdAt": {"$lt": datetime(2000, 1, 1, tzinfo=timezone.utc)}}) == []
    assert found({"duration": {"$gte": 0}}) == ids
    assert found({"username": {"$exists": True}, "host": {"$exists": True}}) == ids
    with pytest.raises(ValueError, match="unknown filter field 'colour' for runs; valid fields"):
        api.runs("proj", {"colour": "red"})


def test_runs_order_and_keyset_pagination(api_env):
    ids = _make_runs()
    api = wandb.Api()
    assert [r.id for r in api.runs("proj")] == ids
    assert [r.id for r in api.runs("proj", order="-created_at", per_page=1)] == ids[::-1]
    assert [r.id for r in api.runs("proj", order="created_at", per_page=3)] == ids  # no sign: ascending, as W&B
    # JSON keys: missing first, then numbers; ties broken by id, pages of 1 row each.
    assert [r.id for r in api.runs("proj", order="+summary_metrics.loss", per_page=1)] == [ids[3], ids[1], ids[0], ids[2]]
    assert [r.id for r in api.runs("proj", order="-summary_metrics.loss", per_page=2)] == [ids[2], ids[0], ids[1], ids[3]]
    assert [r.id for r in api.runs("proj", order="+summary_metrics.model1.loss", per_page=1)] == [ids[3], ids[1], ids[0], ids[2]]
    assert [r.id for r in api.runs("proj", order="+config.experiment_name", per_page=1)] == [ids[1], ids[2], ids[0], ids[3]]
    assert len(list(api.runs("proj", order="+heartbeat_at", per_page=1))) == 4
    with pytest.raises(ValueError, match="order 'loss' is invalid"):
        api.runs("proj", order="loss")


def test_runs_are_lazy_pages_and_len_is_a_count(api_env):
    ids = _make_runs()
    api = wandb.Api()
    store = Workspace.default().store
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(store._engine, "before_cursor_execute", record)
    try:
        runs = api.runs("proj", {"tags": {"$exists": True}}, per_page=2)
        assert statements == []  # nothing is read before it is needed
        assert len(runs) == 3
        assert [s for s in statements if "count(" in s.lower()] and all("LIMIT" not in s for s in statements)
        statements.clear()
        assert runs[0].id == ids[0]
        assert len([s for s in statements if "LIMIT" in s]) == 1  # one page of two rows
        assert [r.id for r in runs] == [ids[0], ids[2], ids[3]]
        assert len([s for s in statements if "LIMIT" in s]) == 2
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", record)
    assert runs[-1].id == ids[3] and runs[1:][0].id == ids[2] and len(runs) == 3


def test_run_objects(api_env):
    with wandb.init(project="proj", config={"lr": 0.1}, tags=["a"], group="g", job_type="train", notes="n") as run:
        for step in range(12):
            run.log({"loss": 1.0 / (step + 1), "acc": step} if step % 2 == 0 else {"loss": 1.0 / (step + 1)})
        data = wandb.Artifact("data", type="dataset")
        with data.new_file("d.txt") as f:
            f.write("d")
        run.log_artifact(data)
    with wandb.init(project="proj") as consumer:
        consumer.use_artifact("data:latest")
    api = wandb.Api()
    got = api.run(f"tester/proj/{run.id}")
    assert got == api.run(f"proj/{run.id}") == api.run(f"tester/proj/runs/{run.id}") == api.from_path(f"tester/proj/runs/{run.id}")
    assert (got.id, got.state, got.config, got.tags, got.group, got.job_type, got.notes) == (
        run.id, "finished", {"lr": 0.1}, ["a"], "g", "train", "n",
    )
    assert got.name == got.display_name == run.name and got.path == ["tester", "proj", run.id]
    assert got.summary["loss"] == pytest.approx(1 / 12) and got.summary["acc"] == 10
    assert got.created_datetime.tzinfo is not None and got.finished_datetime >= got.created_datetime
    rows = got.history(pandas=False)
    assert [r["_step"] for r in rows] == list(range(12))
    sampled = got.history(samples=4, pandas=False)
    assert [r["_step"] for r in sampled] == [0, 3, 6, 9]
    assert got.history(keys=["acc"], pandas=False) == [{"_step": s, "acc": s} for s in range(0, 12, 2)]
    scanned = list(got.scan_history(page_size=5))
    assert [r["_step"] for r in scanned] == list(range(12))
    assert [r["_step"] for r in got.scan_history(keys=["acc"], page_size=2, min_step=3, max_step=9)] == [4, 6, 8]
    assert [a.name for a in got.logged_artifacts()] == ["data:v0"]
    assert [a.name for a in api.run(f"proj/{consumer.id}").used_artifacts()] == ["data:v0"]
    assert got.logged_artifacts()[0].collection.name == "data"
    got.tags = ["a", "b"]
    got.config["lr"] = 0.2
    got.name = "renamed"
    got.update()
    again = api.run(f"proj/{run.id}")
    assert (again.tags, again.config, again.name) == (["a", "b"], {"lr": 0.2}, "renamed")
    with pytest.raises(ValueError, match="Could not find run tester/proj/nope"):
        api.run("proj/nope")


def test_run_history_as_a_dataframe(api_env):
    pd = pytest.importorskip("pandas")
    with wandb.init(project="proj") as run:
        run.log({"loss": 0.5})
        run.log({"loss": 0.25})
    frame = wandb.Api().run(f"proj/{run.id}").history()
    assert isinstance(frame, pd.DataFrame) and list(frame["loss"]) == [0.5, 0.25]


def test_create_run_and_projects(api_env):
    api = wandb.Api()
    created = api.create_run(project="made")
    assert api.run(f"made/{created.id}").state == "running"
    api.create_project("empty", "tester")
    api.create_project("other", "someone-else")
    names = [p.name for p in api.projects()]
    assert names == ["made", "empty"] and len(api.projects(per_page=1)) == 2
    assert api.project("empty").created_at is not None and api.project("absent").created_at is None
    assert api.from_path("tester/made").name == "made" and api.from_path("made").entity == "tester"
    assert [r.id for r in api.project("made").runs()] == [created.id]
    with pytest.raises(ValueError, match="sweep"):
        api.from_path("tester/made/sweeps/abc")
    old = datetime.now(timezone.utc) - timedelta(days=1)
    assert [r.id for r in api.runs("made", {"createdAt": {"$gt": old.isoformat()}})] == [created.id]
