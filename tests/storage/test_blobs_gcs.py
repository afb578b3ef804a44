"""GCS-specific behaviour of the object-store blob store, against fake-gcs-server."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest

from wandb_dagster.storage import buckets, remote_blobs
from wandb_dagster.storage.backend import open_blob_store
from wandb_dagster.storage.errors import ContentChangedError
from wandb_dagster.storage.remote_blobs import StorageAccessError


def generations(gcs_server, bucket: str) -> dict[str, str]:
    fs = gcs_server.filesystem()
    return {p: info["generation"] for p, info in fs.find(bucket, detail=True).items()}


def test_dedup_never_rewrites_an_object(gcs_server, gcs_versioned_bucket, tmp_path: Path) -> None:
    paths = []
    for i, size in enumerate([10, 2000, remote_blobs.SMALL_MAX + 3]):
        p = tmp_path / f"f{i}"
        p.write_bytes(os.urandom(size))
        paths.append(p)
    store = open_blob_store(f"gs://{gcs_versioned_bucket}/b", gcs_server.storage_options)
    store.put_files(paths)
    before = generations(gcs_server, gcs_versioned_bucket)
    again = open_blob_store(f"gs://{gcs_versioned_bucket}/b", gcs_server.storage_options)
    assert isinstance(again, remote_blobs.ObjectStoreBlobs)
    again.put_files(paths)
    assert generations(gcs_server, gcs_versioned_bucket) == before, "a new generation means a re-upload"
    assert again.requests["put"] == 0 and again.requests["resumable"] == 0


def test_a_large_upload_in_several_chunks_is_finalized_once(gcs_server, gcs_bucket, tmp_path: Path) -> None:
    data = os.urandom(2 * buckets.PART_SIZE + 1)
    path = tmp_path / "big"
    path.write_bytes(data)
    store = open_blob_store(f"gs://{gcs_bucket}", gcs_server.storage_options)
    assert isinstance(store, remote_blobs.ObjectStoreBlobs)
    [(h, n)] = store.put_files([path])
    assert store.requests["part"] == 3
    assert gcs_server.filesystem().cat_file(f"{gcs_bucket}/{h[:2]}/{h[2:]}") == data


def test_a_changed_large_file_is_never_finalized(gcs_server, gcs_bucket, tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(os.urandom(buckets.PART_SIZE + 1))
    stale = hashlib.md5(b"earlier content").hexdigest()
    store = open_blob_store(f"gs://{gcs_bucket}", gcs_server.storage_options)
    with pytest.raises(ContentChangedError):
        store.put_files([path], expected=[stale])
    assert gcs_server.filesystem().find(gcs_bucket) == []


def test_missing_bucket_is_reported_with_the_root(gcs_server) -> None:
    with pytest.raises(StorageAccessError, match=r"gs://no-such-bucket-y/p.*does not exist.*create it"):
        open_blob_store("gs://no-such-bucket-y/p", gcs_server.storage_options).check_access()


def test_unreachable_endpoint_is_reported(gcs_server) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = dict(gcs_server.storage_options, endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(StorageAccessError, match=rf"'gs://b/p' could not be reached.*127.0.0.1:{port}"):
        open_blob_store("gs://b/p", options).check_access()
