"""Collections, projects, timestamps and paginator cursors of the query API, as W&B's Public API reference
describes them (docs/behaviour.md section 7), on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
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


def _setup(run) -> None:
    _log(run, "data", "one", aliases=["best"])
    second = _log(run, "data", "two")
    run.link_artifact(second, "wandb-registry-model/models", aliases=["production"])


def test_a_collection_is_renamed_with_its_aliases_links_and_history(api_env):
    with wandb.init(project="proj") as run:
        _setup(run)
    with wandb.init(project="proj") as reader:
        reader.use_artifact("data:best")
    api = wandb.Api(overrides={"project": "proj"})
    collection = api.artifact_collection("dataset", "data")
    assert collection.is_sequence() and sorted(collection.aliases) == ["best", "latest"]
    collection.name = "renamed"
    assert api.artifact_exists("data:v0")  # nothing changes before save()
    collection.save()
    assert collection.name == "renamed" and collection.path == "tester/proj/renamed"
    assert not api.artifact_exists("data:v0") and not api.artifact_collection_exists("data", "dataset")
    assert api.artifact("renamed:best").version == "v0" and api.artifact("renamed:latest").version == "v1"
    link = api.artifact("wandb-registry-model/models:production")
    assert link.source_collection.name == "renamed" and link.id == api.artifact("renamed:v1").id
    assert [a.name for a in api.run(f"proj/{run.id}").logged_artifacts()] == ["renamed:v0", "renamed:v1"]
    assert [a.name for a in api.run(f"proj/{reader.id}").used_artifacts()] == ["renamed:v0"]
    with wandb.init(project="proj") as run:
        assert _log(run, "renamed", "three").version == "v2"  # the sequence goes on
        assert _log(run, "data", "one").version == "v0"  # the old name is a new collection
    # A name in use, or an invalid one, is refused and changes nothing.
    collection.name = "data"
    try:
        collection.save()
        raise AssertionError("renaming onto an existing collection must fail")
    except ValueError as exc:
        assert "'data'" in str(exc)
    assert api.artifact("renamed:v0").name == "renamed:v0"
    try:
        collection.name = "bad name"
        raise AssertionError("an invalid name must be refused")
    except ValueError as exc:
        assert "bad name" in str(exc)


def test_collection_description_tags_and_version_pages(api_env):
    with wandb.init(project="proj") as run:
        _setup(run)
        _log(run, "data", "three")
    api = wandb.Api(overrides={"project": "proj"})
    collection = api.artifact_collection("dataset", "data")
    collection.description = "Bike data"
    collection.tags = ["bikes", "raw"]
    collection.save()
    again = api.artifact_collection("dataset", "data")
    assert (again.description, sorted(again.tags)) == ("Bike data", ["bikes", "raw"])
    assert [a.version for a in again.artifacts()] == ["v0", "v1", "v2"]
    assert [a.version for a in again.versions(per_page=1)] == ["v0", "v1", "v2"]
    registry_collection = api.artifact("wandb-registry-model/models:production").collection
    assert not registry_collection.is_sequence()
    assert sorted(registry_collection.aliases) == ["latest", "production"]


def test_deleting_a_collection_deletes_its_versions_and_their_links(api_env):
    with wandb.init(project="proj") as run:
        _setup(run)
        _log(run, "other", "o")
    api = wandb.Api(overrides={"project": "proj"})
    cursor = api.event_cursor()
    api.artifact_collection("dataset", "data").delete()
    assert not api.artifact_collection_exists("data", "dataset")
    assert not api.artifact_exists("data:v0") and not api.artifact_exists("data:latest")
    assert not api.artifact_exists("wandb-registry-model/models:production")  # the link went with the version
    assert [c.name for c in api.artifact_collections("proj", "dataset")] == ["other"]
    events = [(e.type, e.version, e.alias) for e in api.events(after=cursor)]
    assert ("DELETE_ARTIFACT", "v0", None) in events and ("DELETE_ARTIFACT", "v1", None) in events
    assert ("REMOVE_ARTIFACT_ALIAS", "v0", "best") in events
    assert any(t == "UNLINK_ARTIFACT" for t, _, _ in events)
    # The name is free again: a new collection, from v0.
    with wandb.init(project="proj") as run:
        assert _log(run, "data", "new").version == "v0"
    # Deleting a registry collection removes its links; the linked version stays where it was logged.
    with wandb.init(project="proj") as run:
        run.link_artifact(api.artifact("other:v0"), "wandb-registry-model/others")
    api.artifact("wandb-registry-model/others:v0").collection.delete()
    assert not api.artifact_exists("wandb-registry-model/others:v0")
    assert api.artifact("other:v0").version == "v0"


def test_project_attributes_collections_and_types(api_env):
    with wandb.init(project="proj") as run:
        _log(run, "data", "x")
        _log(run, "model", "m", type="model")
    api = wandb.Api()
    project = api.project("proj")
    assert project.id and project.is_benchmark is False and project.path == ["tester", "proj"]
    assert project.url == "http://127.0.0.1:8600/tester/proj" and project.entity_name == "tester"
    assert [c.name for c in project.collections()] == ["data", "model"]
    assert [c.name for c in project.collections(filters={"name": "model"})] == ["model"]
    types = project.artifacts_types()
    assert [t.name for t in types] == ["dataset", "model"] and len(types) == 2
    assert [t.name for t in api.artifact_types("proj")] == ["dataset", "model"]
    try:
        project.collections(order="-name")
        raise AssertionError("an unsupported order must be refused")
    except ValueError as exc:
        assert "-name" in str(exc)
    assert project.sweeps() == []  # a project without sweeps (tests/api/test_sweeps.py has some)
    try:
        _ = api.project("absent").id
        raise AssertionError("a project that does not exist has no id")
    except ValueError as exc:
        assert "absent" in str(exc)


def test_paginators_have_cursors_and_start_as_in_w_and_b(api_env):
    with wandb.init(project="proj") as run:
        for i in range(5):
            _log(run, "data", f"content {i}")
        for name in ("b", "c", "d"):
            _log(run, name, name)
    api = wandb.Api(overrides={"project": "proj"})
    versions = api.artifacts("dataset", "data", per_page=2)
    assert versions.cursor is None
    first_page = [a.version for a in itertools.islice(versions, 2)]  # W&B's own example
    assert first_page == ["v0", "v1"] and isinstance(versions.cursor, str)
    # Later, maybe in another process: resume from the saved cursor.
    rest = api.artifacts("dataset", "data", per_page=2, start=versions.cursor)
    assert [a.version for a in rest] == ["v2", "v3", "v4"]
    assert len(rest) == 5  # the count of the whole result, as W&B's total count
    collection = api.artifact_collection("dataset", "data")
    page = collection.artifacts(per_page=3)
    assert [a.version for a in page[:3]] == ["v0", "v1", "v2"]
    assert [a.version for a in collection.versions(start=page.cursor)] == ["v3", "v4"]
    collections = api.artifact_collections("proj", "dataset", per_page=2)
    assert [c.name for c in collections[:2]] == ["data", "b"]
    assert [c.name for c in api.artifact_collections("proj", "dataset", start=collections.cursor)] == ["c", "d"]
    types = api.artifact_types("proj")
    assert [t.name for t in types] == ["dataset"]
    registries = api.registries(per_page=1)
    first = registries[0]
    assert [r.name for r in api.registries(start=registries.cursor)] != [first.name]
    try:
        list(api.artifacts("dataset", "data", start="not-a-cursor"))
        raise AssertionError("a bad cursor must be refused")
    except ValueError as exc:
        assert "not-a-cursor" in str(exc)
