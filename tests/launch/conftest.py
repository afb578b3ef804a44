"""A real workspace (SQLite and PostgreSQL) seen through the Api, for the Launch tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import wandb_dagster as wandb
from wandb_dagster.launch import job_spec, publish_job
from wandb_dagster.sdk.workspace import Workspace


@pytest.fixture
def api(database_url: str, tmp_path) -> Iterator[wandb.Api]:
    yield wandb.Api(
        overrides={
            "base_url": database_url, "storage_root": str(tmp_path / "blobs"), "entity": "tester",
            "project": "pipelines",
        }
    )
    Workspace.close_all()


def train_spec(**changes) -> dict:
    """The spec of a Dagster job "train" with one op "train" taking lr and epochs."""
    schema = {"ops": {"train": {"type": "strict_shape", "fields": {"config": {"type": "strict_shape", "fields": {
        "lr": {"type": "float", "required": True}, "epochs": {"type": "int", "required": False, "default": 1},
    }, "required": True}}}}}  # fmt: skip
    spec = {"dagster_job": "train", "code_location": "bikes", "run_config_schema": schema, "git": {"commit": "abc"}}
    spec.update(changes)
    return job_spec(**spec)


@pytest.fixture
def train_job(api: wandb.Api):
    """The W&B job job-train:v0 in tester/pipelines."""
    return publish_job(api._ws, entity="tester", project="pipelines", spec=train_spec())
