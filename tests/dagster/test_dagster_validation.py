"""Failing before the compute runs: options checked when definitions load (also under `dagster definitions
validate`), the workspace checked in resource setup, no silent creation of a mistyped SQLite workspace, sensors
on a collection that does not exist, and input errors that say what exists and whose input failed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

import wandb_dagster as wandb
from wandb_dagster import Artifact
from wandb_dagster.dagster import (
    WandbArtifactIOManager,
    WandbResource,
    WandbWorkspaceError,
    validate_definitions,
    wandb_alias_sensor,
    wandb_artifact_sensor,
)
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.store import DatabaseUnreachableError, Store, WorkspaceNotFoundError

# ------------------------------------------------------------------------ options, when definitions load


def test_validate_definitions_names_asset_bad_key_and_closest() -> None:
    @dg.asset(metadata={"wandb": {"serialiser": "joblib"}})
    def features() -> dict:
        return {}

    @dg.asset(ins={"features": dg.AssetIn(metadata={"wandb": {"aliass": "production"}})},
              metadata={"wandb": {"link_to": [{"target": "wandb-registry-model/m", "alias": ["staging"]}]}})
    def model(features: dict) -> dict:
        return features

    @dg.op(out=dg.Out(metadata={"wandb": {"typ": "model"}}))
    def step() -> int:
        return 1

    @dg.job
    def op_job() -> None:
        step()

    with pytest.raises(ValueError) as raised:
        validate_definitions(dg.Definitions(assets=[features, model], jobs=[op_job]))
    message = str(raised.value)
    assert "4 problems" in message
    assert "asset 'features': unknown option 'serialiser' (did you mean 'serializer'?)" in message
    assert "valid keys: ['type', 'description', 'aliases'" in message
    # An input's problem names the downstream asset and its input, and what it reads.
    assert "input 'features' of asset 'model' (reads asset 'features'): unknown option 'aliass' (did you mean " \
           "'alias'?)" in message
    assert "link_to.0: unknown key 'alias' (did you mean 'aliases'?); valid keys: ['target', 'aliases']" in message
    assert "output 'result' of op 'step': unknown option 'typ' (did you mean 'type'?)" in message


def test_validate_definitions_returns_valid_definitions() -> None:
    @dg.asset(metadata={"wandb": {"serializer": "json", "link_to": "wandb-registry-model/m"}})
    def features() -> dict:
        return {}

    @dg.asset(ins={"features": dg.AssetIn(metadata={"wandb": {"alias": "production"}})})
    def model(features: dict) -> dict:
        return features

    defs = dg.Definitions(assets=[features, model, dg.AssetSpec("external")])
    assert validate_definitions(defs) is defs


_DEFS_FILE = '''
import dagster as dg
from wandb_dagster.dagster import WandbArtifactIOManager, WandbResource, validate_definitions

@dg.asset(metadata={{"wandb": {output}}})
def trained_model() -> dict:
    return {{}}

@dg.asset(ins={{"trained_model": dg.AssetIn(metadata={{"wandb": {input}}})}})
def evaluation(trained_model: dict) -> float:
    return 1.0

wandb = WandbResource(database_url="sqlite:////nonexistent/never/opened.db")
defs = validate_definitions(dg.Definitions(
    assets=[trained_model, evaluation],
    resources={{"wandb": wandb, "io_manager": WandbArtifactIOManager(wandb=wandb)}},
))
'''


def _definitions_validate(tmp_path: Path, output: dict, input: dict) -> subprocess.CompletedProcess:
    """``dagster definitions validate`` (the venv's console script, as a user runs it) on a small module."""
    path = tmp_path / "defs.py"
    path.write_text(_DEFS_FILE.format(output=output, input=input))
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DAGSTER_HOME": str(home)}
    dagster = Path(sys.executable).parent / "dagster"
    return subprocess.run(
        [str(dagster), "definitions", "validate", "-f", str(path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=180,
    )


@pytest.mark.parametrize(
    ("output", "input", "expected"),
    [
        ({"serialiser": "joblib"}, {}, "asset 'trained_model': unknown option 'serialiser' (did you mean 'serializer'?)"),
        # An output's aliases are a list under "aliases"; "alias" is the input's key.
        ({"alias": ["staging"]}, {}, "asset 'trained_model': unknown option 'alias' (did you mean 'aliases'?)"),
        ({}, {"aliases": "production"},
         "input 'trained_model' of asset 'evaluation' (reads asset 'trained_model'): unknown option 'aliases' "
         "(did you mean 'alias'?)"),
        ({"link_to": [{"target": "wandb-registry-model/m", "alias": ["staging"]}]}, {},
         "link_to.0: unknown key 'alias' (did you mean 'aliases'?)"),
    ],
    ids=["serialiser", "output-alias", "input-aliases", "link_to-alias"],
)
def test_dagster_definitions_validate_fails_on_a_typo(tmp_path: Path, output: dict, input: dict, expected: str) -> None:
    bad = _definitions_validate(tmp_path, output, input)
    text = bad.stdout + bad.stderr
    assert bad.returncode != 0, text
    assert expected in text, text


def test_dagster_definitions_validate_passes_valid_options(tmp_path: Path) -> None:
    good = _definitions_validate(tmp_path, {"serializer": "joblib", "aliases": ["staging"]}, {"alias": "production"})
    # Loading opens no workspace (the URL's folder does not exist): only the options are checked, so a code
    # location loads where the database is not reachable; the workspace is checked when a run sets it up.
    assert good.returncode == 0, good.stdout + good.stderr


# ------------------------------------------------------------------------ the workspace, in resource setup


def _marker_job(tmp_path: Path) -> tuple[Any, Path]:
    marker = tmp_path / "body-ran"

    @dg.asset
    def expensive() -> int:
        marker.write_text("ran")  # stands for hours of compute that must not run for nothing
        return 1

    return expensive, marker


@pytest.mark.parametrize("bound", ["both", "io_manager_only"])
def test_unreachable_postgres_fails_before_the_body(tmp_path: Path, bound: str) -> None:
    # Port 1 on loopback: nothing listens, so the connection is refused at once.
    resource = WandbResource(database_url="postgresql://pipeline:hunter2@127.0.0.1:1/workspace")
    asset, marker = _marker_job(tmp_path)
    resources: dict[str, Any] = {"io_manager": WandbArtifactIOManager(wandb=resource)}
    if bound == "both":
        resources["wandb"] = resource
    result = dg.materialize([asset], resources=resources, raise_on_error=False)
    assert not result.success and not marker.exists()
    text = _failure_text(result)
    assert "WandbResource cannot open its workspace 'postgresql://pipeline:***@127.0.0.1:1/workspace'" in text
    assert "from the resource's database_url" in text and "WANDB_DAGSTER_DATABASE_URL" in text
    assert "cannot connect to the workspace database" in text and "refused" in text.lower()
    assert "hunter2" not in text and "sqlalche.me" not in text and "sqlalchemy" not in text.lower(), text


def test_store_open_of_an_unreachable_database_is_one_plain_line() -> None:
    with pytest.raises(DatabaseUnreachableError) as raised:
        Store.open("postgresql://pipeline:hunter2@127.0.0.1:1/workspace", storage_root="/unused")
    message = str(raised.value)
    # The store's one translation of driver errors (store/sql.py translated_errors) words it.
    assert message.startswith("cannot connect to the workspace database 'postgresql://pipeline:***@127.0.0.1:1/workspace'"), message
    assert "database_url" in message and "WANDB_DAGSTER_DATABASE_URL" in message
    assert "refused" in message.lower() and "hunter2" not in message and "\n" not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # no SQLAlchemy chain to print


def test_unreachable_storage_root_fails_before_the_body(
    tmp_path: Path, s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_DAGSTER_STORAGE_OPTIONS", json.dumps(s3_server.storage_options))
    # The database is fine (its folder exists); the bucket its storage root names does not.
    resource = WandbResource(database_url=f"sqlite:///{tmp_path / 'store.db'}", storage_root="s3://no-such-bucket-here/ws")
    asset, marker = _marker_job(tmp_path)
    result = dg.materialize([asset], resources={"io_manager": WandbArtifactIOManager(wandb=resource)},
                            raise_on_error=False)
    assert not result.success and not marker.exists()
    text = _failure_text(result)
    assert "WandbResource cannot open its workspace" in text and "StorageAccessError" in text
    assert "no-such-bucket-here" in text and "its storage root (recorded when the workspace was created) is not" in text
    Workspace.close_all()


def test_env_url_is_named_as_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_DAGSTER_DATABASE_URL", f"sqlite:///{tmp_path / 'missing' / 'store.db'}")
    with pytest.raises(WandbWorkspaceError) as raised:
        WandbResource().check_workspace()
    message = str(raised.value)
    assert "from WANDB_DAGSTER_DATABASE_URL (the resource's database_url is unset)" in message
    assert "WorkspaceNotFoundError" in message and "does not exist" in message
    assert not (tmp_path / "missing").exists()


def test_newer_schema_fails_before_the_body(database_url: str, tmp_path: Path) -> None:
    Store.open(database_url, storage_root=str(tmp_path / "blobs")).close()
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    resource = WandbResource(database_url=database_url)
    asset, marker = _marker_job(tmp_path)
    with pytest.raises(Exception) as raised:
        dg.materialize([asset], resources={"io_manager": WandbArtifactIOManager(wandb=resource)})
    assert not marker.exists()
    text = "".join(_messages(raised.value))
    assert "WandbResource cannot open its workspace" in text and "9999_future" in text
    Workspace.close_all()


def _messages(exc: BaseException) -> list[str]:
    """The messages of ``exc`` and of what it was raised from, as Python (and Dagster's error records) show
    them: ``raise ... from None`` hides the context."""
    out: list[str] = []
    visited: set[int] = set()
    seen: BaseException | None = exc
    while seen is not None and id(seen) not in visited:  # Dagster's error chains can loop back on themselves
        visited.add(id(seen))
        out.append(str(seen))
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return out


def _failure_text(result: Any) -> str:
    """Every error Dagster recorded in the run's events (what its UI, event log and run storage show)."""
    texts = []
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        if error is not None:
            texts.append(error.to_string())
    return "\n".join(texts)


# ------------------------------------------------------------------------ no silent workspace creation


def test_missing_sqlite_folder_is_an_error_unless_creation_is_asked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nonexistent' / 'dir' / 'store.db'}"
    with pytest.raises(WorkspaceNotFoundError, match="nonexistent/dir' does not exist.*create=True"):
        Store.open(url, storage_root=str(tmp_path / "blobs"))
    resource = WandbResource(database_url=url, storage_root=str(tmp_path / "blobs"))
    asset, marker = _marker_job(tmp_path)
    with pytest.raises(Exception) as raised:
        dg.materialize([asset], resources={"wandb": resource, "io_manager": WandbArtifactIOManager(wandb=resource)})
    assert "does not exist" in "".join(_messages(raised.value))
    assert not marker.exists() and not (tmp_path / "nonexistent").exists()

    created = WandbResource(database_url=url, storage_root=str(tmp_path / "blobs"), create=True)
    dg.materialize([asset], resources={"wandb": created, "io_manager": WandbArtifactIOManager(wandb=created)})
    assert marker.exists() and (tmp_path / "nonexistent" / "dir" / "store.db").exists()
    Workspace.close_all()


def test_default_workspace_is_still_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_DAGSTER_DIR", str(tmp_path / "fresh" / "home"))
    monkeypatch.delenv("WANDB_DAGSTER_DATABASE_URL", raising=False)
    with wandb.init(project="p") as run:
        run.log({"x": 1})
    assert (tmp_path / "fresh" / "home" / "store.db").exists()
    monkeypatch.setenv("WANDB_DAGSTER_DATABASE_URL", f"sqlite:///{tmp_path / 'typo' / 'store.db'}")
    with pytest.raises(WorkspaceNotFoundError):
        wandb.init(project="p")
    Workspace.close_all()


# ------------------------------------------------------------------------ sensors on what does not exist


@dg.op
def _noop() -> None:
    pass


@dg.job
def react() -> None:
    _noop()


def _log(resource: WandbResource, name: str) -> Artifact:
    with wandb.init(settings=resource._settings(), job_type="producer") as run:
        art = Artifact(name, type="dataset")
        with art.new_file("data.txt") as f:
            f.write(name)
        return run.log_artifact(art)


def _tick(sensor: dg.SensorDefinition, resource: WandbResource, instance: Any, cursor: str | None) -> Any:
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"wandb": resource}) as context:
        return sensor(context)


def _skip(result: Any) -> str:
    return result.skip_reason.skip_message if result.skip_reason is not None else ""


def test_sensor_on_a_missing_collection_says_so(wandb_resource: WandbResource, instance: Any) -> None:
    _log(wandb_resource, "features")
    _log(wandb_resource, "labels")
    sensor = wandb_artifact_sensor(collection="pipelines/featurs", job=react)
    first = _tick(sensor, wandb_resource, instance, None)
    assert "collection tester/pipelines/featurs does not exist yet (closest: features)" in _skip(first)
    later = _tick(sensor, wandb_resource, instance, first.cursor)
    assert "closest: features" in _skip(later)

    project = wandb_artifact_sensor(collection="pipeline/features", job=react)
    skip = _skip(_tick(project, wandb_resource, instance, None))
    assert "project tester/pipeline does not exist yet (closest: pipelines)" in skip

    # A collection that exists: no complaint.
    fine = wandb_artifact_sensor(collection="pipelines/features", job=react)
    assert "does not exist" not in _skip(_tick(fine, wandb_resource, instance, None))


def test_sensor_on_a_missing_registry_is_an_error(wandb_resource: WandbResource, instance: Any) -> None:
    art = _log(wandb_resource, "features")
    wandb_resource.link(art, "wandb-registry-model/bike-models")
    empty = wandb_alias_sensor(collection="wandb-registry-model/bike-modles", job=react)
    assert "closest: bike-models" in _skip(_tick(empty, wandb_resource, instance, None))
    sensor = wandb_alias_sensor(collection="wandb-registry-modle/bike-models", job=react)
    with pytest.raises(Exception, match="registry default/wandb-registry-modle does not exist .*wandb-registry-model"):
        _tick(sensor, wandb_resource, instance, None)


# ------------------------------------------------------------------------ inputs: what exists, whose input


def test_pinned_version_that_does_not_exist_lists_what_does(resources: dict, wandb_resource: WandbResource) -> None:
    @dg.asset
    def features() -> dict:
        return {"x": 1}

    with dg.instance_for_test() as instance:
        dg.materialize([features], resources=resources, instance=instance)
        wandb_resource.promote("pipelines/features:v0", "wandb-registry-model/feats", alias="production")

        @dg.asset(name="features")
        def features_v1() -> dict:
            return {"x": 2}

        dg.materialize([features_v1], resources=resources, instance=instance)

        @dg.asset(ins={"features": dg.AssetIn(metadata={"wandb": {"version": "v99"}})})
        def model(features: dict) -> dict:
            return features

        with pytest.raises(Exception) as raised:
            dg.materialize([model, features_v1], selection=[model], resources=resources, instance=instance)
    text = "".join(_messages(raised.value))
    assert "input 'features' of asset 'model' (reading asset 'features')" in text
    assert "tester/pipelines/features has no version 'v99'" in text
    assert "tester/pipelines/features has versions: v0, v1 (latest)" in text


def test_pinned_alias_that_does_not_exist_lists_the_aliases(resources: dict, instance: Any) -> None:
    @dg.asset(metadata={"wandb": {"aliases": ["production"]}})
    def features() -> dict:
        return {"x": 1}

    @dg.asset(ins={"features": dg.AssetIn(metadata={"wandb": {"alias": "prodution"}})})
    def model(features: dict) -> dict:
        return features

    dg.materialize([features], resources=resources, instance=instance)
    result = dg.materialize([model, features], selection=[model], resources=resources, instance=instance,
                            raise_on_error=False)
    text = _failure_text(result)
    assert "input 'features' of asset 'model' (reading asset 'features'): tester/pipelines/features has no alias " \
           "'prodution'; tester/pipelines/features has versions: v0 (latest, production)" in text


def test_an_op_input_pinned_to_a_missing_version_names_the_op_and_lists_versions(resources: dict) -> None:
    @dg.op
    def produce() -> dict:
        return {"x": 1}

    @dg.op(ins={"data": dg.In(metadata={"wandb": {"version": "v99"}})})
    def consume(data: dict) -> dict:
        return data

    @dg.job(resource_defs=resources)
    def pipeline() -> None:
        consume(produce())

    result = pipeline.execute_in_process(raise_on_error=False)
    text = _failure_text(result)
    assert "input 'data' of op 'consume' (reading step output 'produce'): tester/pipelines/produce.result has no " \
           "version 'v99'; tester/pipelines/produce.result has versions: v0 (latest)" in text


def test_no_materialization_in_an_ephemeral_instance_says_how(resources: dict) -> None:
    @dg.asset
    def features() -> dict:
        return {"x": 1}

    @dg.asset
    def model(features: dict) -> dict:
        return features

    dg.materialize([features], resources=resources)  # an ephemeral instance, forgotten after the call
    with pytest.raises(Exception) as raised:
        dg.materialize([model, features], selection=[model], resources=resources)
    text = "".join(_messages(raised.value))
    assert "never materialized" not in text
    assert "input 'features' of asset 'model' (reading asset 'features')" in text
    assert "has no materialization in this Dagster instance" in text
    assert "dg.materialize(..., instance=dg.DagsterInstance.get())" in text
    assert "AssetIn(metadata={'wandb': {'alias': 'latest'}})" in text
    assert "tester/pipelines/features has versions: v0 (latest)" in text
