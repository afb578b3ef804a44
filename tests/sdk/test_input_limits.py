"""Hostile input at the SDK boundary (issue 18, "Hangs and crashes"): NUL bytes, deep nesting and tampered
manifests give a ValueError naming the field, the limit or the version, the same on SQLite and PostgreSQL
(docs/architecture.md, "Input limits")."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

import wandb_dagster as wandb
from wandb_dagster.sdk import values
from wandb_dagster.store import schema as db

MAX_DEPTH = getattr(values, "MAX_NESTING_DEPTH", 100)


def _nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth):
        value = {"k": value}
    return value


def _log(any_ws_env, **kwargs) -> wandb.Artifact:
    (any_ws_env / "a.txt").write_text("hello\n")
    with wandb.init(project="p") as run:
        art = wandb.Artifact(kwargs.pop("name", "data"), type=kwargs.pop("type", "dataset"), **kwargs)
        art.add_file("a.txt")
        run.log_artifact(art, aliases=kwargs.get("aliases"))
        art.wait()
    return art


@pytest.mark.parametrize(
    "field, build",
    [
        ("Artifact type", lambda: wandb.Artifact("data", type="data\x00set")),
        ("Artifact description", lambda: wandb.Artifact("data", type="dataset", description="a\x00b")),
        ("Metadata key", lambda: wandb.Artifact("data", type="dataset", metadata={"a\x00": 1})),
        ("Metadata value", lambda: wandb.Artifact("data", type="dataset", metadata={"a": {"b": ["x\x00"]}})),
        ("Artifact name", lambda: wandb.Artifact("da\x00ta", type="dataset")),
    ],
)
def test_nul_in_artifact_fields_is_refused_naming_the_field(any_ws_env, field, build):
    with pytest.raises(ValueError, match=field):
        build()


def test_nul_in_alias_and_description_setter_is_refused_before_the_database(any_ws_env):
    (any_ws_env / "a.txt").write_text("hello\n")
    with wandb.init(project="p") as run:
        art = wandb.Artifact("data", type="dataset")
        art.add_file("a.txt")
        with pytest.raises(ValueError, match="Alias .*NUL"):
            run.log_artifact(art, aliases=["prod\x00"])
        with pytest.raises(ValueError, match="Artifact description .*NUL"):
            art.description = "x\x00"
        run.log_artifact(art).wait()
        with pytest.raises(ValueError, match="Alias .*NUL"):
            art.aliases = ["prod\x00"]


def test_nul_in_config_keys_values_and_run_fields_is_refused(any_ws_env):
    with pytest.raises(ValueError, match="NUL"):
        wandb.init(project="p", config={"lr\x00": 0.1})
    with pytest.raises(ValueError, match="Run notes .*NUL"):
        wandb.init(project="p", notes="a\x00b")
    with wandb.init(project="p", config={"ok": 1}) as run:
        with pytest.raises(ValueError, match="NUL"):
            run.config["a\x00"] = 1
        with pytest.raises(ValueError, match="NUL"):
            run.config.update({"nested": {"k\x00": 1}})
        with pytest.raises(ValueError, match="NUL"):
            run.config["text"] = "a\x00b"
        with pytest.raises(ValueError, match="NUL"):
            run.log({"loss\x00": 1.0})
        with pytest.raises(ValueError, match="NUL"):
            run.summary["best"] = "a\x00"
        run.log({"loss": 1.0})
    # The refused values never reached the database: the run reads back clean on both backends.
    assert wandb.Api().run(f"{run.entity}/p/{run.id}").config == {"ok": 1}


@pytest.mark.parametrize("depth", [2_000, 10_000])
def test_deep_metadata_and_config_are_refused_naming_the_limit(any_ws_env, depth):
    with pytest.raises(ValueError, match=f"deeper than {MAX_DEPTH} levels"):
        wandb.Artifact("data", type="dataset", metadata={"m": _nested(depth)})
    with pytest.raises(ValueError, match=f"deeper than {MAX_DEPTH} levels"):
        wandb.init(project="p", config={"c": _nested(depth)})
    with wandb.init(project="p") as run, pytest.raises(ValueError, match=f"deeper than {MAX_DEPTH} levels"):
        run.log({"m": [_nested(depth)]})


# A string that makes its document just over MAX_JSON_BYTES (the quotes and key take the rest).
BIG = "x" * values.MAX_JSON_BYTES if hasattr(values, "MAX_JSON_BYTES") else "x" * 16 * 2**20


def test_oversized_config_is_refused_naming_the_limit_and_nothing_is_saved(any_ws_env):
    limit = r"the limit is 16,777,216 \(MAX_JSON_BYTES\)"
    with pytest.raises(ValueError, match="run.config is 16,777,2.. bytes as JSON; " + limit):
        wandb.init(project="p", id="big", config={"c": BIG})
    with wandb.init(project="p", config={"ok": 1}) as run:
        # The total counts, not each value: two halves are refused together.
        run.config["half"] = BIG[: len(BIG) // 2]
        with pytest.raises(ValueError, match="run.config .*" + limit):
            run.config["other"] = BIG[: len(BIG) // 2]
        with pytest.raises(ValueError, match="run.config .*" + limit):
            run.config.update({"other": BIG})
        with pytest.raises(ValueError, match="run.config .*" + limit):
            run.config.setdefaults({"other": BIG})
        assert sorted(run.config) == ["half", "ok"]  # refused values did not stay in memory either
    api_run = wandb.Api().run(f"{run.entity}/p/{run.id}")
    assert sorted(api_run.config) == ["half", "ok"]
    api_run.config["other"] = BIG
    with pytest.raises(ValueError, match="run.config .*" + limit):
        api_run.update()
    assert sorted(wandb.Api().run(f"{run.entity}/p/{run.id}").config) == ["half", "ok"]
    assert [r.id for r in wandb.Api().runs(f"{run.entity}/p")] == [run.id]  # "big" was never created


def test_oversized_metadata_is_refused_naming_the_limit(any_ws_env):
    limit = r"Artifact metadata is 16,777,2.. bytes as JSON; the limit is 16,777,216 \(MAX_JSON_BYTES\)"
    with pytest.raises(ValueError, match=limit):
        wandb.Artifact("data", type="dataset", metadata={"m": BIG})
    # Grown in place after the constructor checked it: refused when logged, and no version is made.
    (any_ws_env / "a.txt").write_text("hello\n")
    with wandb.init(project="p") as run:
        art = wandb.Artifact("data", type="dataset", metadata={"m": "small"})
        art.add_file("a.txt")
        art.metadata["m"] = BIG
        with pytest.raises(ValueError, match=limit):
            run.log_artifact(art).wait()
    with pytest.raises(Exception, match="data"):
        wandb.Api().artifact(f"{run.entity}/p/data:v0")
    # Just under the limit is stored and read back whole.
    art = _log(any_ws_env, name="under", metadata={"m": BIG[: -len('{"m":""}')]})
    assert len(wandb.Api().artifact(f"{art.entity}/p/under:v0").metadata["m"]) == len(BIG) - 8


def test_metadata_at_the_nesting_limit_round_trips(any_ws_env):
    metadata = {"m": _nested(MAX_DEPTH - 2)}
    art = _log(any_ws_env, metadata=metadata)
    assert wandb.Api().artifact(f"{art.entity}/p/data:v0").metadata == metadata


@pytest.mark.parametrize("damage", ["contents", "extra"])
def test_tampered_manifest_names_the_version(any_ws_env, damage):
    art = _log(any_ws_env)
    assert art.workspace is not None
    store = art.workspace.store
    with store._engine.begin() as conn:
        text = conn.execute(sa.select(db.versions.c.manifest)).scalar_one()
        manifest = json.loads(text)
        if damage == "contents":
            manifest["contents"] = list(manifest["contents"].items())
        else:
            manifest["contents"]["a.txt"]["extra"] = ["x"]
        conn.execute(sa.update(db.versions).values(manifest=json.dumps(manifest)))
    fresh = wandb.Api().artifact(f"{art.entity}/p/data:v0")
    with pytest.raises(ValueError, match=f"Damaged manifest of {art.entity}/p/data:v0: .*{damage}"):
        fresh.manifest  # noqa: B018 - reading it is the test
    # Incremental logging reads the latest manifest too, and names it the same way.
    with wandb.init(project="p") as run:
        draft = wandb.Artifact("data", type="dataset", incremental=True)
        with pytest.raises(ValueError, match=f"Damaged manifest of {art.entity}/p/data:v0"):
            run.log_artifact(draft).wait()
