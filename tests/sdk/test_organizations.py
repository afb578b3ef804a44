"""Registries belong to an organization, not to an entity (issue 11), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.store import RegistryNotFoundError


def _log_model(run, content: bytes, name: str = "my-model"):
    Path("model.bin").write_bytes(content)
    art = wandb.Artifact(name, type="model")
    art.add_file("model.bin")
    return run.log_artifact(art)


def test_a_version_linked_under_a_team_entity_is_found_by_a_plain_api(any_ws_env):
    # Before: the registry was created under entity my-team, and Api() (entity "tester") saw nothing.
    with wandb.init(entity="my-team", project="demo") as run:
        model = _log_model(run, b"weights")
        run.link_artifact(model, "wandb-registry-model/DemoModels", aliases=["production"])
    api = wandb.Api()
    assert api.default_entity == "tester"
    found = api.artifact("wandb-registry-Model/DemoModels:v0")
    assert found.id == model.id and found.entity == "default" and "production" in found.aliases
    versions = list(api.registries(filter={"name": "model"}).collections().versions(filter={"alias": "production"}))
    assert [v.id for v in versions] == [model.id]
    # The organization's name, its entity, and the team's entity all name the same registry.
    for path in ("default/wandb-registry-model/DemoModels:v0", "my-team/wandb-registry-model/DemoModels:v0"):
        assert api.artifact(path).id == model.id
    assert [r.full_name for r in api.registries(organization="default", filter={"name": "model"})] == [
        "wandb-registry-model"
    ]
    registry = api.registry("model")
    assert (registry.organization, registry.entity) == ("default", "default")
    assert [c.name for c in registry.collections()] == ["DemoModels"]
    # A run under another entity reads it through the same path.
    with wandb.init(entity="someone-else", project="serve") as run:
        assert run.use_artifact("wandb-registry-model/DemoModels:production").id == model.id


def test_an_unknown_organization_in_a_path_is_an_error_naming_the_organizations(any_ws_env):
    with pytest.raises(wandb.ArtifactNotFoundError, match=r"'nobody' is neither an organization.*\['default'\]"):
        wandb.Api().artifact("nobody/wandb-registry-model/DemoModels:v0")


def test_the_legacy_model_registry_path_is_the_core_model_registry(any_ws_env):
    with wandb.init(project="demo") as run:
        model = _log_model(run, b"weights")
        run.link_artifact(model, "tester/model-registry/Legacy")
    api = wandb.Api()
    assert api.artifact("wandb-registry-model/Legacy:latest").id == model.id
    assert api.artifact("tester/model-registry/Legacy:v0").id == model.id


def test_linking_into_a_missing_registry_names_the_registries_and_the_closest(any_ws_env):
    api = wandb.Api()
    api.create_registry("models-eu", visibility="organization")
    with wandb.init(project="demo") as run:
        model = _log_model(run, b"weights")
        with pytest.raises(RegistryNotFoundError, match=r"'wandb-registry-modle'.*did you mean 'wandb-registry-model'"):
            run.link_artifact(model, "wandb-registry-modle/x")
        with pytest.raises(ValueError, match=r"wandb-registry-models-eu"):
            model.link("wandb-registry-models-us/x")
        # The core registries need no creating; a created one takes links.
        run.link_artifact(model, "wandb-registry-dataset/odd-but-allowed")
        run.link_artifact(model, "wandb-registry-models-eu/x")
    assert sorted(r.name for r in api.registries()) == ["dataset", "model", "models-eu"]


def test_create_save_and_delete_a_registry(any_ws_env):
    api = wandb.Api()
    registry = api.create_registry(
        "demo", visibility="restricted", description="first", artifact_types=["model"]
    )
    assert (registry.name, registry.full_name, registry.visibility) == ("demo", "wandb-registry-demo", "restricted")
    assert registry.artifact_types == ["model"] and not registry.allow_all_artifact_types
    with pytest.raises(ValueError, match="already exists"):
        api.create_registry("demo", visibility="organization")
    with pytest.raises(ValueError, match="visibility 'public' is invalid"):
        api.create_registry("other", visibility="public")
    with wandb.init(project="demo") as run:
        model = _log_model(run, b"weights")
        run.link_artifact(model, "wandb-registry-demo/models", aliases=["production"])
        data = wandb.Artifact("data", type="dataset")
        data.add_file(str(Path("model.bin")))
        data = run.log_artifact(data)
        with pytest.raises(ValueError, match=r"accepts artifact types \['model'\], not 'dataset'"):
            run.link_artifact(data, "wandb-registry-demo/data")
    # Saved types cannot be removed; new ones can be added and saved.
    with pytest.raises(ValueError, match="cannot be removed"):
        registry.artifact_types.remove("model")
    registry.artifact_types.append("dataset")
    registry.description = "second"
    registry.name = "renamed"
    registry.save()
    again = api.registry("renamed")
    assert (again.description, again.artifact_types, again.full_name) == ("second", ["dataset", "model"],
                                                                          "wandb-registry-renamed")
    # A rename keeps the collections, links and aliases.
    assert api.artifact("wandb-registry-renamed/models:production").id == model.id
    with pytest.raises(ValueError, match="no registry 'demo'"):
        api.registry("demo")
    again.delete()
    assert "renamed" not in [r.name for r in api.registries()]
    # The linked version stays where it was logged.
    assert api.artifact("demo/my-model:v0").id == model.id
    with pytest.raises(ValueError, match="core registry"):
        api.registry("model").delete()


def test_the_settings_organization_is_where_paths_without_one_go(any_ws_env, monkeypatch):
    with wandb.init(project="demo") as run:
        model = _log_model(run, b"weights")
        run.link_artifact(model, "wandb-registry-model/Shared")
    monkeypatch.setenv("WANDB_DAGSTER_ORGANIZATION", "acme")
    api = wandb.Api()
    assert not api.artifact_exists("wandb-registry-model/Shared:v0")  # acme's model registry is its own
    assert api.artifact("default/wandb-registry-model/Shared:v0").id == model.id
    assert [r.organization for r in api.registries()] == ["acme", "acme"]
    assert [r.name for r in wandb.Api(overrides={"organization": "default"}).registries(filter={"name": "model"})
            ] == ["model"]


def test_an_organization_is_named_by_its_name_or_by_its_entity(any_ws_env, monkeypatch):
    # Team "acme" holds that entity name, so organization "acme" gets the entity "acme-org".
    monkeypatch.setenv("WANDB_USERNAME", "carol")
    wandb.Api().create_team("acme")
    monkeypatch.setenv("WANDB_DAGSTER_ORGANIZATION", "acme")
    with wandb.init(project="demo") as run:
        model = _log_model(run, b"weights")
        run.link_artifact(model, "wandb-registry-model/Shared")
    api = wandb.Api()
    registry = api.registry("model", organization="acme-org")
    assert (registry.organization, registry.entity) == ("acme", "acme-org")
    for org in ("acme", "acme-org"):
        assert sorted(r.name for r in api.registries(organization=org)) == ["dataset", "model"]
        assert api.artifact(f"{org}/wandb-registry-model/Shared:v0").id == model.id
    # The default organization's model registry is another one.
    assert [c.name for c in api.registry("model", organization="default").collections()] == []


def test_artifact_link_outside_a_run_goes_to_the_settings_organization(any_ws_env, monkeypatch):
    with wandb.init(project="demo") as run:
        _log_model(run, b"weights")
    monkeypatch.setenv("WANDB_DAGSTER_ORGANIZATION", "acme")
    api = wandb.Api()
    linked = api.artifact("demo/my-model:v0").link("wandb-registry-model/Offline")
    assert linked.entity == "acme"
    assert api.artifact("wandb-registry-model/Offline:v0").id == linked.id
    assert not api.artifact_exists("default/wandb-registry-model/Offline:v0")
