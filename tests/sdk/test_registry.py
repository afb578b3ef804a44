"""Registry links through the SDK (issue 4, registry slice), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk.names import normalize_project_name, parse_artifact_path, parse_link_target
from wandb_dagster.sdk.workspace import Workspace

from ._seeds import run_block, seed_blocks


def _log_model(run, content: bytes, name: str = "my-model", **kwargs):
    Path("model.bin").write_bytes(content)
    art = wandb.Artifact(name, type="model", **kwargs)
    art.add_file("model.bin")
    return run.log_artifact(art)


def test_seed_000_walkthrough_through_the_registry(any_ws_env):
    blocks = seed_blocks("000")
    assert "link_artifact" in blocks[4] and "wandb-registry-" in blocks[5]
    ns = run_block(blocks[2], {}, Team_Entity="tester")
    run_block(blocks[3], ns)  # train, log model-demo:v0
    source = wandb.Api().artifact("tester/my-awesome-project/model-demo:v0")
    run_block(blocks[4], ns)  # use_artifact + link_artifact to wandb-registry-Model/DemoModels
    run_block(blocks[5], ns)  # use_artifact("wandb-registry-Model/DemoModels:v0").download()
    registry_model = ns["registry_model"]
    assert registry_model.id == source.id
    assert (registry_model.project, registry_model.name, registry_model.version) == (
        "wandb-registry-model",
        "DemoModels:v0",
        "v0",
    )
    assert registry_model.aliases == ["latest"] and registry_model.is_link
    assert registry_model.description == "My trained model" and registry_model.type == "model"
    assert registry_model.source_qualified_name == "tester/my-awesome-project/model-demo:v0"
    assert Path(ns["local_model_path"], "model.txt").read_text() == str(ns["weights"])
    # The Api sees the same link, by any spelling of the registry name.
    for name in ("wandb-registry-Model/DemoModels:v0", "wandb-registry-model/DemoModels:latest"):
        assert wandb.Api().artifact(name).id == source.id
    # The last run used the linked version.
    store = Workspace.default().store
    run = store.get_run("tester", "my-awesome-project", ns["run"].id)
    assert [v.id for v in store.run_inputs(run.pk)] == [source.id]


def test_linking_copies_nothing_and_numbers_per_collection(any_ws_env):
    with wandb.init(project="proj") as run:
        _log_model(run, b"first")
        v1 = _log_model(run, b"second", description="better", metadata={"acc": 0.9})
        v1.tags = ["candidate"]
        v1.save()
        assert v1.version == "v1"
        linked = run.link_artifact(v1, "wandb-registry-Model/Demo", aliases=["staging"])
    assert (linked.version, linked.id, linked.digest) == ("v0", v1.id, v1.digest)
    assert (linked.description, linked.metadata, linked.tags) == ("better", {"acc": 0.9}, ["candidate"])
    assert sorted(linked.aliases) == ["latest", "staging"]
    fetched = wandb.Api().artifact("wandb-registry-model/Demo:staging")
    assert fetched.version == "v0" and fetched.id == v1.id
    assert fetched.collection_name == "Demo"  # collection names keep their case
    # Aliases are per collection: the project's v1 has only its own.
    assert wandb.Api().artifact("proj/my-model:v1").aliases == ["latest"]
    assert [e.path for e in fetched.files()] == ["model.bin"]
    assert Path(fetched.download(root="dl"), "model.bin").read_bytes() == b"second"
    store = Workspace.default().store
    coll = store.collection("default", "wandb-registry-model", "Demo")
    assert (coll.kind, coll.type) == ("portfolio", "model")


def test_latest_follows_the_newest_link_and_relink_applies_aliases_only(any_ws_env):
    with wandb.init(project="proj") as run:
        a = _log_model(run, b"a")
        b = _log_model(run, b"b")
        assert run.link_artifact(b, "wandb-registry-model/Demo").version == "v0"
        assert a.link("wandb-registry-model/Demo", aliases=["prod"]).version == "v1"
        assert wandb.Api().artifact("wandb-registry-model/Demo:latest").id == a.id
        again = run.link_artifact(b, "wandb-registry-model/Demo", aliases=["prod"])
        assert again.version == "v0" and again.aliases == ["prod"]
        assert wandb.Api().artifact("wandb-registry-model/Demo:latest").id == a.id
        assert wandb.Api().artifact("wandb-registry-model/Demo:prod").id == b.id
        c = _log_model(run, b"c")
        assert c.link("wandb-registry-model/Demo").version == "v2"
        assert wandb.Api().artifact("wandb-registry-model/Demo:latest").id == c.id
        # A legacy portfolio in an ordinary project works the same way; ':alias' in the path adds an alias.
        legacy = run.link_artifact(c, "portfolio:best")
        assert (legacy.project, legacy.version, sorted(legacy.aliases)) == ("proj", "v0", ["best", "latest"])


def test_link_model_default_name_and_errors(any_ws_env):
    Path("weights.pt").write_bytes(b"weights")
    with wandb.init(project="proj") as run:
        linked = run.link_model("weights.pt", "Models", aliases=["prod"])
        assert (linked.project, linked.name, sorted(linked.aliases)) == (
            "wandb-registry-model",
            "Models:v0",
            ["latest", "prod"],
        )
        source = wandb.Api().artifact(f"proj/run-{run.id}-weights.pt:v0")
        assert source.id == linked.id and source.type == "model"
        # Identical content reuses the version; relinking it applies aliases only.
        again = run.link_model("weights.pt", "Models")
        assert again.id == linked.id and again.version == "v0"
        assert wandb.Api().artifacts("model", f"proj/run-{run.id}-weights.pt")[-1].version == "v0"
        with pytest.raises(ValueError, match="'team/Models'.*'/'"):
            run.link_model("weights.pt", "team/Models")
        with pytest.raises(ValueError, match="v3"):
            run.link_artifact(source, "wandb-registry-model/Models:v3")
        with pytest.raises(ValueError, match="'a/b/c/d'"):
            run.link_artifact(source, "a/b/c/d")
        data = wandb.Artifact("data", type="dataset")
        Path("d.txt").write_text("d")
        data.add_file("d.txt")
        data = run.log_artifact(data)
        with pytest.raises(ValueError, match="'dataset'"):
            data.link("wandb-registry-model/Models")
        with pytest.raises(ValueError, match="not a registry collection"):
            data.link(f"proj/run-{run.id}-weights.pt")


def test_unlink(any_ws_env):
    with wandb.init(project="proj") as run:
        a = _log_model(run, b"a")
        b = _log_model(run, b"b")
        a.link("wandb-registry-model/Demo")
        b.link("wandb-registry-model/Demo", aliases=["prod"])
    api = wandb.Api()
    linked_b = api.artifact("wandb-registry-model/Demo:v1")
    linked_b.unlink()
    assert api.artifact("wandb-registry-model/Demo:latest").id == a.id
    assert not api.artifact_exists("wandb-registry-model/Demo:prod")
    # The version itself stays, with its own aliases.
    assert api.artifact("proj/my-model:v1").aliases == ["latest"]
    with pytest.raises(ValueError, match="not a link"):
        api.artifact("proj/my-model:v1").unlink()
    # delete() on a link removes only the link.
    api.artifact("wandb-registry-model/Demo:v0").delete()
    assert not api.artifact_exists("wandb-registry-model/Demo:latest")
    assert api.artifact("proj/my-model:v0").id == a.id


def test_registry_names_are_case_insensitive():
    assert normalize_project_name("wandb-registry-Model") == "wandb-registry-model"
    assert normalize_project_name("My-Project") == "My-Project"
    assert parse_artifact_path("wandb-registry-Model/DemoModels:v0", "e", "p").project == "wandb-registry-model"
    assert parse_artifact_path("e/WANDB-registry-Dataset/Data", "x", "p").project == "wandb-registry-dataset"
    assert parse_link_target("wandb-registry-Model/DemoModels", "e", "p") == (
        "e",
        "wandb-registry-model",
        "DemoModels",
        "",
    )
    assert parse_link_target("Coll", "e", "p") == ("e", "p", "Coll", "")


def test_seed_000_registry_query_block(any_ws_env, capsys):
    blocks = seed_blocks("000")
    assert "api.registries(filter=registry_filters)" in blocks[8]
    ns = run_block(blocks[2], {}, Team_Entity="tester")
    run_block(blocks[3], ns)
    run_block(blocks[4], ns)  # link model-demo:v0 into wandb-registry-Model/DemoModels
    source = wandb.Api().artifact("tester/my-awesome-project/model-demo:v0")
    # A second collection in another registry whose name also matches "model", holding a tagged version
    # without 'latest' (an older link), and one in the dataset registry, which must not show up.
    with wandb.init(project="my-awesome-project") as run:
        old = _log_model(run, b"old", name="clf")
        old.tags = ["text-classification"]
        old.save()
        new = _log_model(run, b"new", name="clf")
        wandb.Api().create_registry("my-models", visibility="organization")
        old.link("wandb-registry-my-models/Classifiers")
        new.link("wandb-registry-my-models/Classifiers")
        data = wandb.Artifact("data", type="dataset")
        Path("d.txt").write_text("d")
        data.add_file("d.txt")
        run.log_artifact(data).link("wandb-registry-dataset/Data")
    capsys.readouterr()
    ns = run_block(blocks[8], {})
    found = sorted((a.project, a.name, a.collection.name, tuple(a.aliases), tuple(a.tags)) for a in ns["artifacts"])
    assert found == [
        ("wandb-registry-model", "DemoModels:v0", "DemoModels", ("latest",), ()),
        ("wandb-registry-my-models", "Classifiers:v0", "Classifiers", (), ("text-classification",)),
        ("wandb-registry-my-models", "Classifiers:v1", "Classifiers", ("latest",), ()),
    ]
    assert [a.id for a in ns["artifacts"] if a.project == "wandb-registry-model"] == [source.id]
    printed = capsys.readouterr().out
    assert "artifact name: DemoModels:v0" in printed and "collection artifact belongs to: DemoModels" in printed
    assert "artifact created at: " in printed and "tags attached to artifact: ['text-classification']" in printed
