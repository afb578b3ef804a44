"""S3-specific behaviour of the object-store blob store, checked against what moto's server really received."""

from __future__ import annotations

import collections
import hashlib
import os
from pathlib import Path

import pytest

from wandb_dagster.storage import buckets, remote_blobs
from wandb_dagster.storage.backend import open_blob_store
from wandb_dagster.storage.errors import ContentChangedError
from wandb_dagster.storage.remote_blobs import StorageAccessError


def methods(server) -> collections.Counter:
    """Requests moto answered, by kind: LIST (ListObjectsV2), PUT, HEAD, GET, POST (multipart create/complete)."""
    kinds: collections.Counter = collections.Counter()
    for method, _path, query in server.requests:
        kinds["LIST" if method == "GET" and "list-type=2" in query else method] += 1
    return kinds


def files(folder: Path, n: int, size: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"{i:04d}"
        p.write_bytes(os.urandom(size))
        out.append(p)
    return out


def test_small_files_cost_one_listing_and_one_put_each(s3_server, s3_bucket, tmp_path: Path) -> None:
    store = open_blob_store(f"s3://{s3_bucket}/root", s3_server.storage_options)
    paths = files(tmp_path, 200, 1024)
    s3_server.requests.clear()
    store.put_files(paths)
    assert methods(s3_server) == {"LIST": 1, "PUT": 200}, "no HEAD per blob"
    s3_server.requests.clear()
    store.put_files(paths)
    assert methods(s3_server) == {"LIST": 1}, "present blobs are neither probed one by one nor sent again"


def test_dedup_leaves_a_versioned_bucket_with_one_version_per_blob(s3_server, s3_versioned_bucket, tmp_path) -> None:
    store = open_blob_store(f"s3://{s3_versioned_bucket}", s3_server.storage_options)
    paths = files(tmp_path, 30, 100) + files(tmp_path / "big", 1, remote_blobs.SMALL_MAX + 1)
    store.put_files(paths)
    store.put_files(paths)
    open_blob_store(f"s3://{s3_versioned_bucket}", s3_server.storage_options).put_files(paths)
    versions = s3_server.client().list_object_versions(Bucket=s3_versioned_bucket)["Versions"]
    assert len(versions) == 31


def test_large_file_goes_up_in_concurrent_parts(s3_server, s3_bucket, tmp_path: Path) -> None:
    store = open_blob_store(f"s3://{s3_bucket}", s3_server.storage_options)
    data = os.urandom(3 * buckets.PART_SIZE)
    path = tmp_path / "big"
    path.write_bytes(data)
    s3_server.requests.clear()
    [(h, n)] = store.put_files([path])
    parts = [q for m, _, q in s3_server.requests if m == "PUT" and "partNumber=" in q]
    assert len(parts) == 3
    head = s3_server.client().head_object(Bucket=s3_bucket, Key=f"{h[:2]}/{h[2:]}")
    assert head["ContentLength"] == len(data) and head["ETag"].strip('"').endswith("-3")  # a multipart object
    assert h == hashlib.md5(data).hexdigest()


def test_a_changed_large_file_aborts_its_multipart_upload(s3_server, s3_bucket, tmp_path: Path) -> None:
    store = open_blob_store(f"s3://{s3_bucket}", s3_server.storage_options)
    path = tmp_path / "big"
    path.write_bytes(os.urandom(buckets.PART_SIZE + 1))
    stale = hashlib.md5(b"what the file held when it was added").hexdigest()
    with pytest.raises(ContentChangedError):
        store.put_files([path], expected=[stale])
    client = s3_server.client()
    assert client.list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == [], "aborted, not left open"


def test_missing_bucket_is_reported_with_the_root(s3_server, s3_bucket) -> None:
    with pytest.raises(StorageAccessError, match=r"s3://no-such-bucket-x/p.*does not exist.*create it"):
        open_blob_store("s3://no-such-bucket-x/p", s3_server.storage_options).check_access()


def test_missing_credentials_are_reported(s3_server, s3_bucket, monkeypatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    options = {"client_kwargs": {"endpoint_url": s3_server.endpoint_url}}
    with pytest.raises(StorageAccessError, match=rf"credentials for storage root 's3://{s3_bucket}'.*AWS_ACCESS_KEY_ID"):
        open_blob_store(f"s3://{s3_bucket}", options).check_access()


def test_refused_credentials_are_reported(s3_server, s3_bucket, monkeypatch) -> None:
    import moto.settings

    # moto checks signatures against its IAM users once this count of unauthenticated calls is used up.
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    options = dict(s3_server.storage_options, key="AKIAUNKNOWNKEY000000", secret="wrong")
    with pytest.raises(StorageAccessError, match=rf"credentials for storage root 's3://{s3_bucket}' were refused"):
        open_blob_store(f"s3://{s3_bucket}", options).check_access()


def test_unreachable_endpoint_is_reported(s3_server) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = dict(s3_server.storage_options, client_kwargs={"endpoint_url": f"http://127.0.0.1:{port}"})
    with pytest.raises(StorageAccessError, match=rf"'s3://b/p' could not be reached.*127.0.0.1:{port}"):
        open_blob_store("s3://b/p", options).check_access()


def test_an_endpoint_lost_midway_is_reported_with_the_root(s3_server, tmp_path: Path) -> None:
    server = type(s3_server)()  # a server of its own, stopped below (the session's one stays up)
    try:
        # "403" in the bucket name: the error is told by its type, never by text that quotes a URL.
        server.client().create_bucket(Bucket="lost-endpoint-403")
        # One botocore attempt: a refused loopback connection needs no retry to be sure.
        options = dict(server.storage_options, config_kwargs={"retries": {"max_attempts": 1}})
        store = open_blob_store("s3://lost-endpoint-403/root", options)
        store.check_access()
        [source] = files(tmp_path / "src", 1, 100)
        [(hexdigest, size)] = store.put_files([source])
    finally:
        server.stop()
    out = tmp_path / "out"
    lost = r"'s3://lost-endpoint-403/root' could not be reached.*EndpointConnection"
    with pytest.raises(StorageAccessError, match=lost):
        store.get_files([(hexdigest, size, out / "a.bin")])
    assert not out.exists() or list(out.iterdir()) == []  # no partial or temp file
    with pytest.raises(StorageAccessError, match="could not be reached"):
        store.exists_many([hexdigest])


def test_gc_aborts_the_unfinished_uploads_under_its_root_only(s3_server, s3_bucket) -> None:
    """A writer killed mid-upload leaves an S3 multipart upload (its parts billed until aborted);
    remove_stale_temps (gc) aborts those under the store's root older than the age given, and no others."""
    client = s3_server.client()
    mine = client.create_multipart_upload(Bucket=s3_bucket, Key="root/ab/" + "c" * 30)["UploadId"]
    other = client.create_multipart_upload(Bucket=s3_bucket, Key="elsewhere/ab/" + "c" * 30)["UploadId"]
    store = open_blob_store(f"s3://{s3_bucket}/root", s3_server.storage_options)
    # (moto reports every upload as initiated in 2010, so the age cut-off itself cannot be shown here.)
    assert store.remove_stale_temps(older_than_s=3600) == 1
    left = {u["UploadId"] for u in client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])}
    assert mine not in left and other in left
