"""Fixtures for the Dagster integration: a WandbResource on a fresh workspace (SQLite and PostgreSQL) and a
temporary Dagster instance. Everything is real: Dagster runs in process, the workspace is a real database."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import dagster as dg  # in the dev extra: a missing dagster fails the tests, never skips them
import pytest

from wandb_dagster.dagster import WandbArtifactIOManager, WandbResource  # noqa: E402
from wandb_dagster.sdk.workspace import Workspace  # noqa: E402

warnings.filterwarnings("ignore", module="dagster")


@pytest.fixture
def wandb_resource(database_url: str, tmp_path) -> Iterator[WandbResource]:
    resource = WandbResource(
        database_url=database_url,
        storage_root=str(tmp_path / "blobs"),
        entity="tester",
        project="pipelines",
    )
    yield resource
    Workspace.close_all()


@pytest.fixture
def resources(wandb_resource: WandbResource, tmp_path) -> dict[str, Any]:
    return {
        "wandb": wandb_resource,
        "io_manager": WandbArtifactIOManager(wandb=wandb_resource, download_dir=str(tmp_path / "inputs")),
    }


@pytest.fixture
def instance() -> Iterator[Any]:
    with dg.instance_for_test() as inst:
        yield inst


def materialization_metadata(result: Any, key: Any, partition: str | None = None) -> dict[str, Any]:
    """The (plain) metadata of ``key``'s materialization in an ExecuteInProcessResult."""
    key = key if isinstance(key, dg.AssetKey) else dg.AssetKey(key)
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        if mat.asset_key == key and (partition is None or mat.partition == partition):
            return {k: v.value for k, v in mat.metadata.items()}
    raise AssertionError(f"no materialization of {key} (partition {partition}) in the run")


@pytest.fixture
def mat_meta() -> Any:
    """``mat_meta(result, key, partition=None)``: see :func:`materialization_metadata`."""
    return materialization_metadata
