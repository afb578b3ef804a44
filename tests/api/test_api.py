"""The Api's artifact, type, collection and workspace methods (docs/behaviour.md section 7), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.api import Paginator


def _log(run, name: str, content: str, type: str = "dataset", **kw):
    Path(f"{name}.txt").write_text(content)
    art = wandb.Artifact(name, type=type)
    art.add_file(f"{name}.txt")
    return run.log_artifact(art, **kw)


def test_artifact_methods(api_env):
    with wandb.init(project="proj") as run:
        for i in range(5):
            _log(run, "data", f"v{i}", tags=["even"] if i % 2 == 0 else [])
        _log(run, "model", "m", type="model", aliases=["best"])
    api = wandb.Api(overrides={"project": "proj"})
    art = api.artifact("data:v3")
    assert (art.version, art.type, art.collection.name, art.collection.type) == ("v3", "dataset", "data", "dataset")
    assert api.artifact("tester/proj/model:best").type == "model"
    with pytest.raises(ValueError, match="has type 'model', not 'dataset'"):
        api.artifact("model:best", type="dataset")
    assert api.artifact_exists("data:v4") and not api.artifact_exists("data:v5")
    assert not api.artifact_exists("model:best", type="dataset") and api.artifact_exists("model:best", type="model")
    versions = api.artifacts("dataset", "data", per_page=2)
    assert isinstance(versions, Paginator) and len(versions) == 5
    assert [a.version for a in versions] == ["v0", "v1", "v2", "v3", "v4"]
    assert versions[-1].version == "v4" and [a.version for a in versions[1:3]] == ["v1", "v2"]
    assert [a.version for a in api.artifacts("dataset", "proj/data", tags=["even"])] == ["v0", "v2", "v4"]
    with pytest.warns(DeprecationWarning, match="artifacts"):
        assert len(api.artifact_versions("dataset", "data")) == 5
    # Collections and types.
    coll = api.artifact_collection("dataset", "tester/proj/data")
    assert (coll.name, coll.aliases, coll.is_sequence()) == ("data", ["latest"], True)
    assert api.artifact_collection_exists("data", "dataset") and not api.artifact_collection_exists("data", "model")
    assert not api.artifact_collection_exists("nope", "dataset")
    with pytest.raises(wandb.ArtifactNotFoundError, match="nope"):
        api.artifact_collection("dataset", "nope")
    assert [c.name for c in api.artifact_collections("proj", "dataset")] == ["data"]
    assert [c.name for c in api.artifact_collections("tester/proj", "model")] == ["model"]
    assert [t.name for t in api.artifact_types("proj")] == ["dataset", "model"]
    model_type = api.artifact_type("model", "proj")
    assert [c.name for c in model_type.collections()] == ["model"] and model_type.collection("model").name == "model"
    with pytest.raises(ValueError, match="No artifacts of type 'code'.*'dataset', 'model'"):
        api.artifact_type("code", "proj")
    api.flush()


def test_base_url_names_another_workspace(api_env, tmp_path):
    other_url = f"sqlite:///{tmp_path / 'other' / 'store.db'}"
    other = {"database_url": other_url, "storage_root": str(tmp_path / "ob"), "create": True}
    with wandb.init(project="elsewhere", settings=other) as run:
        _log(run, "data", "x")
    assert wandb.Api(overrides={"base_url": other_url}).artifact("elsewhere/data:v0").version == "v0"
    assert not wandb.Api().artifact_exists("elsewhere/data:v0")
    assert [p.name for p in wandb.Api(overrides={"base_url": other_url}).projects()] == ["elsewhere"]
    with pytest.raises(ValueError, match="not a workspace URL"):
        wandb.Api(overrides={"base_url": "https://api.wandb.ai"})
    with pytest.raises(ValueError, match="valid keys"):
        wandb.Api(overrides={"colour": "red"})
    assert wandb.Api(timeout=5, api_key="ignored").api_key is None


def test_events_delegate_to_the_event_feed(api_env):
    pytest.importorskip("wandb_dagster.api.events", reason="the event feed (api/events.py) is another task's")
    api = wandb.Api()
    start = api.event_cursor()
    with wandb.init(project="proj") as run:
        art = _log(run, "data", "x")
    page = api.events(after=start, types=["CREATE_ARTIFACT"])
    assert [e.artifact_id for e in page] == [art.id]
    assert list(api.events(after=page.cursor)) == []
