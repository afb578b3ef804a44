"""The remote-server fixtures of tests/conftest.py ("remote servers") really serve what they promise."""

from __future__ import annotations

import os

import requests


def test_s3_server_environment_and_buckets(s3_server, s3_bucket):
    import s3fs

    assert os.environ["AWS_ENDPOINT_URL"] == s3_server.endpoint_url
    assert os.environ["AWS_ACCESS_KEY_ID"] and os.environ["AWS_SECRET_ACCESS_KEY"]
    # Through explicit storage options, and through "the usual environment" alone.
    explicit = s3fs.S3FileSystem(skip_instance_cache=True, **s3_server.storage_options)
    explicit.pipe(f"{s3_bucket}/a/b.txt", b"hello")
    from_env = s3fs.S3FileSystem(skip_instance_cache=True)
    assert from_env.cat_file(f"{s3_bucket}/a/b.txt") == b"hello"
    versioning = s3_server.client().get_bucket_versioning(Bucket=s3_bucket)
    assert versioning.get("Status") is None
    assert any(method == "PUT" and path.endswith("/a/b.txt") for method, path, _ in s3_server.requests)


def test_s3_reset_between_tests(s3_server, s3_bucket):
    names = [b["Name"] for b in s3_server.client().list_buckets()["Buckets"]]
    assert names == [s3_bucket]  # the previous test's bucket is gone


def test_s3_versioned_bucket(s3_server, s3_versioned_bucket):
    client = s3_server.client()
    assert client.get_bucket_versioning(Bucket=s3_versioned_bucket)["Status"] == "Enabled"
    v1 = client.put_object(Bucket=s3_versioned_bucket, Key="k", Body=b"one")["VersionId"]
    client.put_object(Bucket=s3_versioned_bucket, Key="k", Body=b"two")
    assert client.get_object(Bucket=s3_versioned_bucket, Key="k", VersionId=v1)["Body"].read() == b"one"


def test_gcs_server_buckets_and_generations(gcs_server, gcs_versioned_bucket, gcs_bucket):
    assert os.environ["STORAGE_EMULATOR_HOST"] == gcs_server.endpoint_url
    assert os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] == "false"
    fs = gcs_server.filesystem()
    path = f"{gcs_versioned_bucket}/dir/x.bin"
    fs.pipe(path, b"first")
    gen1 = fs.info(path)["generation"]
    fs.pipe(path, b"second")
    fs.invalidate_cache()
    assert fs.info(path)["generation"] != gen1
    assert fs.cat_file(f"{path}#{gen1}") == b"first"
    assert fs.cat_file(path) == b"second"
    fs.pipe(f"{gcs_bucket}/y", b"y")
    assert fs.ls(gcs_bucket, detail=False) == [f"{gcs_bucket}/y"]


def test_http_server_routes(http_server):
    url = http_server.put("a/strong.bin", b"abc")
    head = requests.head(url, timeout=10)
    assert head.headers["ETag"] == '"900150983cd24fb0d6963f7d28e17f72"' and head.headers["Content-Length"] == "3"
    http_server.put("weak", b"abc", etag="weak", content_length=False)
    got = requests.get(http_server.url("weak"), timeout=10)
    assert got.content == b"abc" and got.headers["ETag"].startswith('W/"') and "Content-Length" not in got.headers
    http_server.put("nohead", b"z", head=False)
    assert requests.head(http_server.url("nohead"), timeout=10).status_code == 405
    assert requests.get(http_server.url("missing"), timeout=10).status_code == 404
    http_server.put("a/strong.bin", b"changed")
    assert requests.get(url, timeout=10).content == b"changed"
    assert ("HEAD", "/a/strong.bin") in http_server.requests


def test_both_s3_bucket_fixtures_in_one_test(s3_server, s3_bucket, s3_versioned_bucket):
    names = sorted(b["Name"] for b in s3_server.client().list_buckets()["Buckets"])
    assert names == sorted([s3_bucket, s3_versioned_bucket])
