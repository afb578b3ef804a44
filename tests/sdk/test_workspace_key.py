"""Which open workspace a caller gets (sdk/workspace.py): the storage options are part of the key.

A second caller with other credentials (or another endpoint) must get a store opened with its own options,
never silently the first caller's; the options are kept in the key only as a digest, so no secret ends up
in a repr or an error.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.settings import Settings
from wandb_dagster.storage.errors import StorageAccessError

SECRET = "s3cr3t-never-shown"


@pytest.fixture(autouse=True)
def _closed_afterwards():
    yield
    Workspace.close_all()


def _settings(tmp_path: Path, storage_root: str, options: dict) -> Settings:
    return Settings.resolve(
        database_url=f"sqlite:///{tmp_path / 'store.db'}", storage_root=storage_root,
        cache_dir=tmp_path / "cache", storage_options=options,
    )


def test_callers_with_other_storage_options_get_other_stores(tmp_path: Path) -> None:
    root = str(tmp_path / "blobs")
    first = Workspace.for_settings(_settings(tmp_path, root, {"token": SECRET, "n": 1}))
    same = Workspace.for_settings(_settings(tmp_path, root, {"n": 1, "token": SECRET}))  # equal, another dict
    other = Workspace.for_settings(_settings(tmp_path, root, {"token": "another", "n": 1}))
    assert same is first, "equal options share the open workspace"
    assert other is not first and other.blobs is not first.blobs
    assert Workspace.current(_settings(tmp_path, root, {"n": 1, "token": SECRET})) is first
    assert Workspace.current(_settings(tmp_path, root, {})) is None
    for text in (repr(first), repr(other), repr(Workspace._open), repr(first.settings)):
        assert SECRET not in text


def test_a_second_caller_with_a_wrong_endpoint_is_not_handed_the_first_callers_bucket(
    s3_server, s3_bucket, tmp_path: Path
) -> None:
    root = f"s3://{s3_bucket}/blobs"
    good = Workspace.for_settings(_settings(tmp_path, root, s3_server.storage_options))
    good.blobs.put_bytes(b"reachable")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    wrong = dict(s3_server.storage_options, secret=SECRET, client_kwargs={"endpoint_url": f"http://127.0.0.1:{port}"})
    with pytest.raises(StorageAccessError, match=rf"could not be reached.*127.0.0.1:{port}") as info:
        Workspace.for_settings(_settings(tmp_path, root, wrong))
    assert SECRET not in str(info.value)
    assert Workspace.for_settings(_settings(tmp_path, root, dict(s3_server.storage_options))) is good
