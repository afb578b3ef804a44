"""Versions, aliases, tags, dedup, save() and delete() (docs/behaviour.md section 4), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

import wandb_dagster as wandb


def _artifact(cwd: Path, content: str, name: str = "bike-dataset", type: str = "dataset") -> wandb.Artifact:
    (cwd / "data.txt").write_text(content)
    artifact = wandb.Artifact(name, type=type)
    artifact.add_file(str(cwd / "data.txt"))
    return artifact


def test_versions_are_gapless_and_latest_moves(any_ws_env):
    with wandb.init(project="p") as run:
        logged = [run.log_artifact(_artifact(any_ws_env, f"content {i}")) for i in range(3)]
    assert [a.version for a in logged] == ["v0", "v1", "v2"]
    api = wandb.Api(overrides={"project": "p"})
    assert api.artifact("bike-dataset:latest").version == "v2"
    assert api.artifact("bike-dataset").version == "v2"
    assert api.artifact("bike-dataset:v0").aliases == []
    assert api.artifact("bike-dataset:v2").aliases == ["latest"]
    assert api.artifact("bike-dataset:v1").name == "bike-dataset:v1"


def test_identical_content_reuses_the_version_applies_aliases_and_keeps_lineage(any_ws_env):
    with wandb.init(project="p") as first:
        a = first.log_artifact(_artifact(any_ws_env, "same"))
    with wandb.init(project="p") as second:
        b = second.log_artifact(_artifact(any_ws_env, "same"), aliases=["best-ap50"])
    assert a.version == b.version == "v0"
    assert a.id == b.id
    assert sorted(b.aliases) == ["best-ap50", "latest"]
    # Ours: the second run is recorded as a producer too (W&B drops this lineage link).
    assert [x.id for x in second.logged_artifacts()] == [a.id]
    assert [x.id for x in first.logged_artifacts()] == [a.id]


def test_custom_aliases_move_between_versions(any_ws_env):
    with wandb.init(project="p") as run:
        run.log_artifact(_artifact(any_ws_env, "one"), aliases=["latest", "best-ap50"])
        run.log_artifact(_artifact(any_ws_env, "two"), aliases=["best-ap50"])
    api = wandb.Api(overrides={"project": "p"})
    assert api.artifact("bike-dataset:best-ap50").version == "v1"
    assert api.artifact("bike-dataset:v0").aliases == []


def test_type_is_fixed_per_collection(any_ws_env):
    with wandb.init(project="p") as run:
        run.log_artifact(_artifact(any_ws_env, "x"))
        with pytest.raises(ValueError, match="dataset.*model|model.*dataset"):
            run.log_artifact(_artifact(any_ws_env, "y", type="model"))


def test_tags_and_the_seed_003_update_snippet(any_ws_env):
    with wandb.init(project="p") as run:
        run.log_artifact(_artifact(any_ws_env, "x"), tags=["raw"])
    api = wandb.Api(overrides={"project": "p"})
    artifact = api.artifact("bike-dataset:latest")
    assert artifact.tags == ["raw"]
    artifact.metadata = {"oldKey": "old"}
    artifact.save()
    # Seed 003, "updating an artifact", line by line.
    artifact = api.artifact("bike-dataset:latest")
    artifact.description = "My new description"
    artifact.metadata["oldKey"] = "new value"
    assert api.artifact("bike-dataset:latest").metadata == {"oldKey": "old"}  # nothing persisted yet
    artifact.metadata = {"newKey": "new value"}
    artifact.aliases.append("best")
    artifact.aliases.remove("latest")
    artifact.aliases = ["replaced"]
    artifact.tags = ["raw", "checked"]
    artifact.save()
    fresh = api.artifact("bike-dataset:v0")
    assert fresh.description == "My new description"
    assert fresh.metadata == {"newKey": "new value"}
    # W&B removes 'latest' when the saved list drops it; "name:latest" still finds the newest version.
    assert fresh.aliases == ["replaced"]
    assert api.artifact("bike-dataset:latest").id == fresh.id
    assert sorted(fresh.tags) == ["checked", "raw"]
    assert api.artifact("bike-dataset:replaced").id == fresh.id


def test_latest_cannot_be_put_on_an_older_version(any_ws_env):
    with wandb.init(project="p") as run:
        run.log_artifact(_artifact(any_ws_env, "one"))
        run.log_artifact(_artifact(any_ws_env, "two"))
    old = wandb.Api(overrides={"project": "p"}).artifact("bike-dataset:v0")
    old.aliases.append("latest")
    with pytest.raises(ValueError, match="latest"):
        old.save()


def test_removing_latest_as_w_and_b_does(any_ws_env):
    with wandb.init(project="p") as run:
        run.log_artifact(_artifact(any_ws_env, "one"))
        run.log_artifact(_artifact(any_ws_env, "two"))
    api = wandb.Api(overrides={"project": "p"})
    artifact = api.artifact("bike-dataset:latest")
    artifact.aliases.remove("latest")
    artifact.save()
    assert api.artifact("bike-dataset:v1").aliases == []  # removed, not silently kept
    assert "latest" not in api.artifact_collection("dataset", "bike-dataset").aliases
    # While no version holds it, "name:latest" (and a bare name) resolve to the newest version.
    assert api.artifact("bike-dataset:latest").version == "v1"
    assert api.artifact("bike-dataset").version == "v1"
    # Put back on the newest version it is accepted; on an older one it is refused (never moved back).
    old = api.artifact("bike-dataset:v0")
    old.aliases.append("latest")
    with pytest.raises(ValueError, match="v1.*v0"):
        old.save()
    newest = api.artifact("bike-dataset:v1")
    newest.aliases.append("latest")
    newest.save()
    assert api.artifact("bike-dataset:v1").aliases == ["latest"]
    newest.aliases.remove("latest")
    newest.save()
    # The next log moves it again.
    with wandb.init(project="p") as run:
        third = run.log_artifact(_artifact(any_ws_env, "three"))
    assert third.aliases == ["latest"]
    assert api.artifact("bike-dataset:latest").version == "v2"
    # Logging content identical to v0 moves it back there, as always.
    with wandb.init(project="p") as run:
        run.log_artifact(_artifact(any_ws_env, "one"))
    assert api.artifact("bike-dataset:latest").version == "v0"


def test_removing_latest_in_a_registry_collection(any_ws_env):
    with wandb.init(project="p") as run:
        first = run.log_artifact(_artifact(any_ws_env, "one", name="m", type="model"))
        second = run.log_artifact(_artifact(any_ws_env, "two", name="m", type="model"))
        run.link_artifact(first, "wandb-registry-model/models")
        run.link_artifact(second, "wandb-registry-model/models")
    api = wandb.Api()
    link = api.artifact("wandb-registry-model/models:latest")
    assert link.version == "v1"
    link.aliases.remove("latest")
    link.save()
    assert api.artifact("wandb-registry-model/models:v1").aliases == []
    assert api.artifact("wandb-registry-model/models:latest").version == "v1"
    assert api.artifact("p/m:latest").version == "v1"  # the project's own 'latest' is untouched
    assert api.artifact("p/m:v1").aliases == ["latest"]


def test_delete_rules_and_indices_never_reused(any_ws_env):
    with wandb.init(project="p") as run:
        run.log_artifact(_artifact(any_ws_env, "one"))
        second = run.log_artifact(_artifact(any_ws_env, "two"), aliases=["keep"])
    with pytest.raises(ValueError, match="keep|latest"):
        second.delete()
    second.delete(delete_aliases=True)
    api = wandb.Api(overrides={"project": "p"})
    assert not api.artifact_exists("bike-dataset:v1")
    assert not api.artifact_exists("bike-dataset:keep")
    assert api.artifact("bike-dataset:latest").version == "v0"  # latest falls back to the newest remaining
    with wandb.init(project="p") as run:
        third = run.log_artifact(_artifact(any_ws_env, "three"))
    assert third.version == "v2"


def test_alias_and_tag_validation_on_log(any_ws_env):
    with wandb.init(project="p") as run:
        with pytest.raises(ValueError, match="'v3'"):
            run.log_artifact(_artifact(any_ws_env, "x"), aliases=["v3"])
        with pytest.raises(ValueError, match="'a:b'"):
            run.log_artifact(_artifact(any_ws_env, "x"), aliases=["a:b"])
        with pytest.raises(ValueError, match="'bad;tag'"):
            run.log_artifact(_artifact(any_ws_env, "x"), tags=["bad;tag"])


def test_saving_an_out_of_date_copy_changes_only_what_it_changed(any_ws_env):
    with wandb.init(project="p") as run:
        run.log_artifact(_artifact(any_ws_env, "one"), tags=["raw"])
    api = wandb.Api(overrides={"project": "p"})
    stale = api.artifact("bike-dataset:latest")  # v0, holding 'latest'
    other = api.artifact("bike-dataset:v0")
    other.aliases.append("reviewed")
    other.tags = ["raw", "checked"]
    other.save()
    with wandb.init(project="p") as run:
        run.log_artifact(_artifact(any_ws_env, "two"))
    stale.description = "edited from an old copy"
    stale.aliases.append("best")
    stale.save()
    assert api.artifact("bike-dataset:latest").version == "v1"  # not moved back
    v0 = api.artifact("bike-dataset:v0")
    assert sorted(v0.aliases) == ["best", "reviewed"] and sorted(v0.tags) == ["checked", "raw"]
    assert v0.description == "edited from an old copy"


def test_incremental_artifacts_build_on_the_latest_version(any_ws_env):
    (any_ws_env / "a.txt").write_text("a")
    (any_ws_env / "b.txt").write_text("b")
    with wandb.init(project="p") as run:
        first = wandb.Artifact("inc", type="dataset")
        first.add_file("a.txt")
        run.log_artifact(first)
        more = wandb.Artifact("inc", type="dataset", incremental=True)
        more.add_file("b.txt")
        run.log_artifact(more)
    assert more.version == "v1" and sorted(more.manifest.entries) == ["a.txt", "b.txt"]


def test_a_relative_workspace_dir_is_recorded_absolute(ws_env, monkeypatch):
    (ws_env / "a").mkdir()
    (ws_env / "b").mkdir()
    (ws_env / "a" / "f.txt").write_text("f")
    monkeypatch.setenv("WANDB_DAGSTER_DIR", "ws")
    monkeypatch.setenv("WANDB_DAGSTER_DATABASE_URL", f"sqlite:///{ws_env / 'shared.db'}")
    monkeypatch.chdir(ws_env / "a")
    with wandb.init(project="p") as run:
        run.log_artifact("f.txt", name="rel")
    from wandb_dagster.sdk.workspace import Workspace

    Workspace.close_all()
    monkeypatch.chdir(ws_env / "b")
    root = wandb.Api(overrides={"project": "p"}).artifact("rel:v0").download(root="out")
    assert (ws_env / "b" / root / "f.txt").read_text() == "f"


def test_api_artifacts_lists_versions_with_tag_filter(any_ws_env):
    with wandb.init(project="p") as run:
        run.log_artifact(_artifact(any_ws_env, "one"), tags=["raw"])
        run.log_artifact(_artifact(any_ws_env, "two"))
    api = wandb.Api(overrides={"project": "p"})
    assert [a.version for a in api.artifacts("dataset", "bike-dataset")] == ["v0", "v1"]
    assert [a.version for a in api.artifacts("dataset", "p/bike-dataset", tags=["raw"])] == ["v0"]
    with pytest.raises(ValueError, match="'model'"):
        api.artifacts("model", "bike-dataset")
    with pytest.raises(wandb.ArtifactNotFoundError):
        api.artifacts("dataset", "missing")
