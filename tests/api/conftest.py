"""Fixtures for the query API tests (``api_env``, a fresh workspace per test on SQLite and PostgreSQL, is in
tests/conftest.py: the web app's tests build on it too)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wandb_dagster.store import Store


@pytest.fixture
def store(database_url: str, tmp_path) -> Iterator[Store]:
    opened = Store.open(database_url, storage_root=str(tmp_path / "blobs"))
    yield opened
    opened.close()
