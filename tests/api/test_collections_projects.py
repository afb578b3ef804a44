"""Collections, projects, timestamps and paginator cursors of the query API, as W&B's Public API reference
describes them (docs/behaviour.md section 7), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import wandb_dagster as wandb


def _log(run, name: str, content: str, type: str = "dataset", **kw):
    Path(f"{name}.txt").write_text(content)
    art = wandb.Artifact(name, type=type)
    art.add_file(f"{name}.txt")
    return run.log_artifact(art, **kw)


def _parse(text: str) -> datetime:
    # W&B's documentation parses these with exactly this call.
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_created_and_updated_at_are_iso_8601_text_as_in_w_and_b(api_env):
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    with wandb.init(project="proj") as run:
        logged = _log(run, "data", "x")
    api = wandb.Api(overrides={"project": "proj"})
    artifact = api.artifact("data:v0")
    collection = artifact.collection
    project = api.project("proj")
    got_run = api.run(f"proj/{run.id}")
    registry = next(iter(api.registries()))
    texts = [
        artifact.created_at, artifact.updated_at, logged.created_at, collection.created_at, collection.updated_at,
        project.created_at, got_run.created_at, got_run.heartbeat_at, registry.created_at, registry.updated_at,
    ]
    for text in texts:
        assert isinstance(text, str) and text.endswith("Z"), text
        assert before <= _parse(text) <= datetime.now(timezone.utc)
    # The same moments as datetimes, under their own names.
    assert _parse(artifact.created_at) == artifact.created_datetime
    assert _parse(collection.updated_at) == collection.updated_datetime
    assert _parse(got_run.created_at) == got_run.created_datetime
    assert _parse(project.created_at) == project.created_datetime
    assert _parse(registry.created_at) == registry.created_datetime
