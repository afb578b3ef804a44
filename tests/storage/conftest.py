"""Fixtures for the storage layer: blob stores on a local directory and on fsspec's in-memory filesystem."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from wandb_dagster.storage.blobs import BlobStore


@pytest.fixture
def local_store(tmp_path: Path) -> BlobStore:
    return BlobStore(str(tmp_path / "blobs"))


@pytest.fixture
def named_tmp_store(tmp_path: Path) -> BlobStore:
    """A local store that uses named temp files + rename, as where O_TMPFILE or /proc is missing."""
    store = BlobStore(str(tmp_path / "blobs"))
    store._use_tmpfile = False
    return store


@pytest.fixture
def memory_store() -> Iterator[BlobStore]:
    # fsspec's memory filesystem is process-global: give each test its own root and clear it afterwards.
    root = f"memory://blobs-{uuid.uuid4().hex}"
    store = BlobStore(root)
    yield store
    if store._fs.exists(store._fsroot):
        store._fs.rm(store._fsroot, recursive=True)


@pytest.fixture(params=["local", "named_tmp", "memory"])
def store(request: pytest.FixtureRequest) -> BlobStore:
    """The same cases through the local fast path, its named-temp fallback and the generic fsspec path."""
    return request.getfixturevalue(f"{request.param}_store")
