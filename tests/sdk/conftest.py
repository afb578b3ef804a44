"""Fixtures for SDK tests: every test gets its own workspace, cache and working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from wandb_dagster.sdk import run as run_mod
from wandb_dagster.sdk.workspace import Workspace


def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str | None) -> Path:
    for var in (
        "WANDB_PROJECT", "WANDB_RUN_ID", "WANDB_RUN_GROUP", "WANDB_JOB_TYPE", "WANDB_DAGSTER_STORAGE",
        "WANDB_DAGSTER_ORGANIZATION", "WANDB_USERNAME",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_DAGSTER_DIR", str(tmp_path / "workspace"))
    monkeypatch.setenv("WANDB_DAGSTER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_ENTITY", "tester")
    if database_url:
        monkeypatch.setenv("WANDB_DAGSTER_DATABASE_URL", database_url)
        # A PostgreSQL workspace needs a blob root of its own per test, too.
        monkeypatch.setenv("WANDB_DAGSTER_STORAGE", str(tmp_path / "blobs"))
    else:
        monkeypatch.delenv("WANDB_DAGSTER_DATABASE_URL", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def _cleanup() -> None:
    active = run_mod.current_run()
    if active is not None:
        active.finish()
    Workspace.close_all()


@pytest.fixture
def ws_env(tmp_path, monkeypatch):
    """A fresh embedded (SQLite) workspace; the test's working directory is an empty folder."""
    cwd = _isolate(tmp_path, monkeypatch, None)
    yield cwd
    _cleanup()


@pytest.fixture
def any_ws_env(tmp_path, monkeypatch, database_url):
    """Like ws_env, once on SQLite and once on PostgreSQL."""
    cwd = _isolate(tmp_path, monkeypatch, database_url)
    yield cwd
    _cleanup()
