"""Registries through the query API: core registries, descriptions and tags, and the filter chain
``registries(filter).collections(filter).versions(filter)`` (seed 001's examples), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.api import ArtifactCollection, Registry


def _model(run, content: str, name: str = "clf", tags=(), metadata=None):
    Path("model.bin").write_text(content)
    art = wandb.Artifact(name, type="model", metadata=metadata or {})
    art.add_file("model.bin")
    return run.log_artifact(art, tags=list(tags))


def _populate():
    """Two registries besides the core ones; collections with tags; links with aliases, tags, metadata."""
    with wandb.init(project="train") as run:
        a = _model(run, "a", tags=["prod"], metadata={"acc": 0.7, "task": "text-classification"})
        b = _model(run, "b", metadata={"acc": 0.9, "task": "vision"})
        c = _model(run, "c", tags=["text-classification"], metadata={"acc": 0.8, "labels": ["cat", "dog"]})
        data = wandb.Artifact("corpus", type="dataset")
        Path("d.txt").write_text("d")
        data.add_file("d.txt")
        data = run.log_artifact(data)
        a.link("wandb-registry-model/my_collection", aliases=["best"])
        b.link("wandb-registry-model/my_collection")
        c.link("wandb-registry-model/other")
        wandb.Api().create_registry("Staging-Models", visibility="organization")  # only core ones need none
        b.link("wandb-registry-Staging-Models/candidates", aliases=["best"])
        data.link("wandb-registry-dataset/corpora")
    api = wandb.Api()
    coll = api.artifact_collection("model", "wandb-registry-model/my_collection")
    coll.description = "Classifiers"
    coll.tags = ["my_tag", "nlp"]
    coll.save()
    return a, b, c, data


def test_core_registries_always_exist(api_env):
    api = wandb.Api()
    regs = api.registries()
    assert [r.name for r in regs] == ["model", "dataset"] and len(regs) == 2
    assert [r.full_name for r in regs] == ["wandb-registry-model", "wandb-registry-dataset"]
    assert all(isinstance(r, Registry) and r.organization == "default" and r.description for r in regs)
    # Every organization (entity) has its own.
    acme = wandb.Api(overrides={"organization": "acme"})
    assert [r.organization for r in acme.registries()] == ["acme", "acme"]
    assert [r.organization for r in api.registries(organization="acme")] == ["acme", "acme"]
    assert len(api.registries()) == 2  # listing again creates nothing
    # A registry's description can be changed and saved.
    model = api.registry("Model")
    model.description = "Our models"
    model.save()
    assert api.registry("wandb-registry-model").description == "Our models"
    assert wandb.Api().registries(filter={"description": {"$regex": "^Our"}})[0].name == "model"


def test_seed_001_registry_examples(api_env):
    a, b, c, data = _populate()
    api = wandb.Api()
    # Registries whose name contains "model" (no prefix inside $regex; names are case-insensitive).
    assert [r.full_name for r in api.registries(filter={"name": {"$regex": "model"}})] == [
        "wandb-registry-model",
        "wandb-registry-staging-models",
    ]
    found = api.registries().collections(filter={"name": "my_collection", "tag": "my_tag"})
    assert [(x.name, x.description, x.tags) for x in found] == [("my_collection", "Classifiers", ["my_tag", "nlp"])]
    best = api.registries().collections(filter={"name": {"$regex": "my_collection"}}).versions(filter={"alias": "best"})
    assert [(v.id, v.name, v.collection.name) for v in best] == [(a.id, "my_collection:v0", "my_collection")]
    either = api.registries(filter={"name": {"$regex": "model"}}).versions(filter={"$or": [{"tag": "prod"}, {"alias": "best"}]})
    assert sorted((v.project, v.name) for v in either) == [
        ("wandb-registry-model", "my_collection:v0"),
        ("wandb-registry-staging-models", "candidates:v0"),
    ]
    assert len(either) == 2


def test_version_filters(api_env):
    a, b, c, data = _populate()
    reg = wandb.Api().registries()

    def names(flt):
        return sorted(f"{v.collection.name}:{v.version}" for v in reg.versions(filter=flt))

    assert names({"metadata.acc": {"$gte": 0.8}}) == ["candidates:v0", "my_collection:v1", "other:v0"]
    assert names({"metadata.task": {"$regex": "^text"}}) == ["my_collection:v0"]
    assert names({"metadata.labels": {"$contains": "dog"}}) == ["other:v0"]
    assert names({"metadata.labels": {"$size": 2}, "tag": {"$all": ["text-classification"]}}) == ["other:v0"]
    assert names({"version": "v1"}) == ["my_collection:v1"]
    assert names({"version": {"$gt": "v0"}}) == ["my_collection:v1"]
    assert names({"alias": {"$size": 1}}) == ["corpora:v0", "my_collection:v0", "my_collection:v1", "other:v0"]
    assert names({"alias": {"$not": {"$in": ["latest"]}}}) == ["my_collection:v0"]
    assert names({"tag": {"$exists": False}, "metadata.acc": {"$exists": True}}) == ["candidates:v0", "my_collection:v1"]
    # The same version seen through two registries: its own tags and metadata, each link's aliases.
    assert {v.project: sorted(v.aliases) for v in reg.versions(filter={"metadata.task": "vision"})} == {
        "wandb-registry-model": ["latest"],
        "wandb-registry-staging-models": ["best", "latest"],
    }
    # Type of artifacts found through a registry is the source's; versions reuse the SDK Artifact.
    [v] = reg.versions(filter={"alias": "best", "metadata.task": "vision"})
    assert isinstance(v, wandb.Artifact) and v.type == "model" and v.is_link and v.id == b.id
    assert Path(v.download(root="dl"), "model.bin").read_text() == "b"


def test_collection_filters_and_chain_narrowing(api_env):
    _populate()
    api = wandb.Api()
    regs = api.registries(filter={"name": "model"})
    assert [c.name for c in regs.collections()] == ["my_collection", "other"]
    assert [c.name for c in regs.collections({"tag": {"$ne": "my_tag"}})] == ["other"]
    assert [c.name for c in regs.collections({"description": None})] == ["other"]
    assert [c.name for c in regs.collections({"tag": {"$size": 2}})] == ["my_collection"]
    assert [c.name for c in api.registries().collections({"name": {"$in": ["corpora", "candidates"]}})] == ["candidates", "corpora"]
    assert [v.name for v in regs.collections({"name": "other"}).versions()] == ["other:v0"]
    assert len(regs.versions()) == 3
    # Keyset pages: registry, collection, index order, whatever the page size.
    everything = [(v.project, v.collection.name, v.version) for v in api.registries().versions(per_page=100)]
    assert everything == sorted(everything) and len(everything) == 5
    assert [(v.project, v.collection.name, v.version) for v in api.registries().versions(per_page=1)] == everything
    assert [(v.project, v.collection.name, v.version) for v in api.registries().versions(per_page=2)] == everything
    assert [c.name for c in api.registries(filter={"name": "dataset"}).collections()] == ["corpora"]
    # Registry objects narrow too.
    model = api.registry("model")
    assert [c.name for c in model.collections({"name": {"$regex": "^o"}})] == ["other"]
    assert sorted(v.name for v in model.versions({"alias": "best"})) == ["my_collection:v0"]
    # Collections of other organizations are not seen.
    assert list(wandb.Api(overrides={"organization": "acme"}).registries().collections()) == []


def test_collection_objects_and_save(api_env):
    a, b, c, data = _populate()
    api = wandb.Api()
    coll = api.artifact_collection("model", "wandb-registry-model/my_collection")
    assert isinstance(coll, ArtifactCollection) and not coll.is_sequence()
    assert (coll.name, coll.type, coll.entity, coll.project) == ("my_collection", "model", "default", "wandb-registry-model")
    assert coll.aliases == ["best", "latest"] and coll.tags == ["my_tag", "nlp"]
    assert [v.version for v in coll.artifacts()] == ["v0", "v1"]
    coll.tags = ["nlp", "prod-ready"]
    coll.description = None
    coll.save()
    fresh = api.artifact_collection("model", "wandb-registry-Model/my_collection")
    assert (fresh.tags, fresh.description) == (["nlp", "prod-ready"], None)
    with pytest.raises(ValueError, match="tag"):
        fresh.tags = ["not/valid"]
    source = api.artifact_collection("model", "train/clf")
    assert source.is_sequence() and [v.version for v in source.artifacts(per_page=1)] == ["v0", "v1", "v2"]
    assert api.artifact("wandb-registry-model/my_collection:best").collection == coll
    assert api.artifact("wandb-registry-model/my_collection:best").source_collection == source


def test_pages_walk_many_collections_in_order(api_env):
    # More collections than one batch of PostgreSQL's collection walk (16, then 32...), sparse matches
    # and pages that end mid-collection: every page size gives the same, ordered, complete result.
    from wandb_dagster.sdk.workspace import Workspace

    store = Workspace.default().store
    expected = []
    for c in range(40):
        for i in range(c % 3 + 1):
            version = store.commit_version(
                "tester", "train", f"src-{c:02d}", "model", digest=f"{c}-{i}", manifest="{}", size=0, file_count=0,
                metadata={"keep": (c * 7 + i) % 5 == 0}, description=None, aliases=["latest"], tags=[], run_pk=None,
            ).version
            store.link_version(version.pk, "default", "wandb-registry-model", f"coll-{c:02d}", aliases=["latest"])
            if (c * 7 + i) % 5 == 0:
                expected.append(f"coll-{c:02d}:v{i}")
    api = wandb.Api()
    for per_page in (1, 3, 7, 100):
        found = api.registries().versions(filter={"metadata.keep": True}, per_page=per_page)
        assert [v.name for v in found] == expected
        assert len(found) == len(expected)
    everything = [v.name for v in api.registries(filter={"name": "model"}).versions(per_page=5)]
    assert len(everything) == 79 and everything == sorted(everything)
    assert [v.name for v in api.artifact_collection("model", "wandb-registry-model/coll-39").artifacts(per_page=1)] == [
        "coll-39:v0"
    ]
