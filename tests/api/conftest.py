"""Fixtures for the query API tests: a fresh workspace per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wandb_dagster.sdk import run as run_mod
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.store import Store


@pytest.fixture
def api_env(tmp_path, monkeypatch, database_url):
    """A fresh workspace (SQLite, then PostgreSQL) as the default one; cwd is an empty folder."""
    for var in ("WANDB_PROJECT", "WANDB_RUN_ID", "WANDB_RUN_GROUP", "WANDB_JOB_TYPE", "WANDB_DAGSTER_ORGANIZATION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_DAGSTER_DIR", str(tmp_path / "workspace"))
    monkeypatch.setenv("WANDB_DAGSTER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_DAGSTER_DATABASE_URL", database_url)
    monkeypatch.setenv("WANDB_DAGSTER_STORAGE", str(tmp_path / "blobs"))
    monkeypatch.setenv("WANDB_ENTITY", "tester")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield cwd
    active = run_mod.current_run()
    if active is not None:
        active.finish()
    Workspace.close_all()


@pytest.fixture
def store(database_url: str, tmp_path) -> Iterator[Store]:
    opened = Store.open(database_url, storage_root=str(tmp_path / "blobs"))
    yield opened
    opened.close()
