"""s3:// references against a real S3 endpoint (moto's server on loopback): fields, prefixes, pinning,
changed and missing objects, the reference cache, request counts and clear errors."""

from __future__ import annotations

import html
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.storage import references

from ._seeds import seed_path


def _put(s3_server, bucket: str, key: str, body: bytes) -> dict:
    return s3_server.client().put_object(Bucket=bucket, Key=key, Body=body)


def _log(artifact: wandb.Artifact, project: str = "refs") -> wandb.Artifact:
    with wandb.init(project=project) as run:
        run.log_artifact(artifact)
    return wandb.Api(overrides={"project": project}).artifact(f"{artifact.collection_name}:latest")


def _seed_s3_rows() -> list[tuple[str, list[str]]]:
    """(call, expected entry names) for every add_reference('s3://...') row of seed 003's tables."""
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", seed_path("003").read_text(encoding="utf-8"), flags=re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)
        if len(cells) == 2 and "add_reference(" in cells[0]:
            names = re.findall(r"<p>(.*?)</p>", cells[1]) or [cells[1]]
            rows.append((html.unescape(cells[0].strip()), [html.unescape(n.strip()) for n in names]))
    return rows


def test_seed_003_s3_naming_table(ws_env, s3_server, s3_bucket):
    for key in ("images/cat.png", "images/dog.png", "checkpoints/model.h5", "model.h5"):
        _put(s3_server, s3_bucket, key, key.encode())
    rows = _seed_s3_rows()
    assert len(rows) == 5, rows  # the table as the seed has it
    for call, expected in rows:
        artifact = wandb.Artifact("seed-refs", type="dataset")
        exec(call.replace("s3://my-bucket", f"s3://{s3_bucket}"), {"artifact": artifact})
        assert sorted(artifact.manifest.entries) == sorted(expected), call


def test_single_object_records_etag_size_and_plain_ref(ws_env, s3_server, s3_bucket):
    etag = _put(s3_server, s3_bucket, "data/table.csv", b"a,b\n1,2\n")["ETag"].strip('"')
    artifact = wandb.Artifact("single", type="dataset")
    [entry] = artifact.add_reference(f"s3://{s3_bucket}/data/table.csv")
    assert (entry.path, entry.digest, entry.size, entry.ref) == ("table.csv", etag, 8, f"s3://{s3_bucket}/data/table.csv")
    assert entry.extra == {"etag": etag}  # unversioned bucket: no versionID
    assert '"' not in entry.digest


def test_versioned_bucket_records_and_honours_version_id(ws_env, s3_server, s3_versioned_bucket):
    bucket = s3_versioned_bucket
    v1 = _put(s3_server, bucket, "m.bin", b"version one")
    v2 = _put(s3_server, bucket, "m.bin", b"version two!")
    latest = wandb.Artifact("latest", type="model")
    [entry] = latest.add_reference(f"s3://{bucket}/m.bin")
    assert entry.extra == {"etag": v2["ETag"].strip('"'), "versionID": v2["VersionId"]} and entry.size == 12
    pinned = wandb.Artifact("pinned", type="model")
    [old] = pinned.add_reference(f"s3://{bucket}/m.bin?versionId={v1['VersionId']}", name="old.bin")
    assert old.extra == {"etag": v1["ETag"].strip('"'), "versionID": v1["VersionId"]}
    assert old.ref == f"s3://{bucket}/m.bin" and old.size == 11 and old.path == "old.bin"
    logged = _log(pinned)
    _put(s3_server, bucket, "m.bin", b"version three")  # newer content: the pinned version is still fetched
    root = Path(logged.download(root="pinned"))
    assert (root / "old.bin").read_bytes() == b"version one"


def test_prefix_expands_with_relative_names_and_skips_siblings(ws_env, s3_server, s3_versioned_bucket):
    bucket = s3_versioned_bucket
    for key in ("images/a.png", "images/sub/b.png", "images-old/c.png", "images/"):
        _put(s3_server, bucket, key, key.encode())
    s3_server.client().delete_object(Bucket=bucket, Key="images/sub/b.png")  # latest is a delete marker
    _put(s3_server, bucket, "images/sub/d.png", b"d")
    artifact = wandb.Artifact("prefix", type="dataset")
    entries = artifact.add_reference(f"s3://{bucket}/images", name="pics")
    assert sorted(e.path for e in entries) == ["pics/a.png", "pics/sub/d.png"]
    assert all(e.extra.get("versionID") for e in entries)
    assert sorted(e.ref for e in entries) == [f"s3://{bucket}/images/a.png", f"s3://{bucket}/images/sub/d.png"]
    whole = wandb.Artifact("bucket", type="dataset")
    assert sorted(e.path for e in whole.add_reference(f"s3://{bucket}")) == ["images-old/c.png", "images/a.png", "images/sub/d.png"]


def test_checksum_false_is_one_untracked_entry_without_any_request(ws_env, s3_server, s3_bucket):
    _put(s3_server, s3_bucket, "dir/x.txt", b"x")
    s3_server.requests.clear()
    artifact = wandb.Artifact("unchecked", type="dataset")
    uri = f"s3://{s3_bucket}/dir/x.txt"
    [entry] = artifact.add_reference(uri, checksum=False)
    assert (entry.path, entry.digest, entry.ref, entry.size) == ("x.txt", uri, uri, None)
    assert s3_server.requests == []
    logged = _log(artifact)
    _put(s3_server, s3_bucket, "dir/x.txt", b"changed")  # not tracked: whatever is there is downloaded
    assert (Path(logged.download(root="u")) / "x.txt").read_bytes() == b"changed"


def test_max_objects_exceeded_names_the_limit(ws_env, s3_server, s3_bucket):
    for i in range(3):
        _put(s3_server, s3_bucket, f"p/{i}", b"%d" % i)
    artifact = wandb.Artifact("limited", type="dataset")
    with pytest.raises(ValueError, match="max_objects=2"):
        artifact.add_reference(f"s3://{s3_bucket}/p", max_objects=2)
    assert len(artifact.manifest) == 0
    assert len(artifact.add_reference(f"s3://{s3_bucket}/p", max_objects=3)) == 3


def test_download_changed_missing_and_allow_missing(ws_env, s3_server, s3_bucket):
    _put(s3_server, s3_bucket, "d/keep.txt", b"keep")
    old = _put(s3_server, s3_bucket, "d/change.txt", b"before")["ETag"].strip('"')
    _put(s3_server, s3_bucket, "d/gone.txt", b"gone")
    artifact = wandb.Artifact("dl", type="dataset")
    artifact.add_reference(f"s3://{s3_bucket}/d")
    logged = _log(artifact)
    root = Path(logged.download(root="first"))
    assert {p.name: p.read_bytes() for p in root.iterdir()} == {"keep.txt": b"keep", "change.txt": b"before", "gone.txt": b"gone"}

    new = _put(s3_server, s3_bucket, "d/change.txt", b"after")["ETag"].strip('"')
    s3_server.client().delete_object(Bucket=s3_bucket, Key="d/gone.txt")
    with pytest.raises(ValueError) as err:
        logged.get_entry("change.txt").download(root="second", skip_cache=True)
    assert "'change.txt'" in str(err.value) and old in str(err.value) and new in str(err.value)
    with pytest.raises(FileNotFoundError, match="gone.txt"):
        logged.get_entry("gone.txt").download(root="third", skip_cache=True)
    # allow_missing_references skips only the missing one: the changed one still fails.
    with pytest.raises(ValueError, match="change.txt"):
        logged.download(root="fourth", skip_cache=True, allow_missing_references=True)
    _put(s3_server, s3_bucket, "d/change.txt", b"before")  # restored: same ETag again
    root = Path(logged.download(root="fifth", skip_cache=True, allow_missing_references=True))
    assert sorted(p.name for p in root.iterdir()) == ["change.txt", "keep.txt"]


def test_reference_downloads_are_cached_by_url_and_etag(ws_env, s3_server, s3_bucket):
    _put(s3_server, s3_bucket, "c/one.bin", b"1" * 1000)
    _put(s3_server, s3_bucket, "c/two.bin", b"2" * 2000)
    artifact = wandb.Artifact("cached", type="dataset")
    artifact.add_reference(f"s3://{s3_bucket}/c")
    logged = _log(artifact)
    logged.download(root="a")
    gets = lambda: [r for r in s3_server.requests if r[0] == "GET" and "/c/" in r[1]]  # noqa: E731
    assert len(gets()) == 2
    s3_server.requests.clear()
    root = Path(logged.download(root="b"))
    assert gets() == [] and s3_server.requests == []  # served from the cache: nothing asked of S3
    assert (root / "two.bin").read_bytes() == b"2" * 2000
    # Deleted remotely: the recorded content is still served from the cache (it is the logged version).
    s3_server.client().delete_object(Bucket=s3_bucket, Key="c/one.bin")
    assert (Path(logged.download(root="c")) / "one.bin").read_bytes() == b"1" * 1000


@pytest.mark.parametrize("versioned", [False, True])
def test_relogging_an_unchanged_prefix_costs_one_listing(ws_env, s3_server, s3_bucket, versioned):
    client = s3_server.client()
    if versioned:
        client.put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    with ThreadPoolExecutor(8) as pool:  # arranging 1,000 objects one by one would dominate the test's time
        list(pool.map(lambda i: client.put_object(Bucket=s3_bucket, Key=f"many/{i:04d}.txt", Body=b"%d" % i), range(1000)))
    first = wandb.Artifact("many", type="dataset")
    first.add_reference(f"s3://{s3_bucket}/many")
    v0 = _log(first)
    s3_server.requests.clear()
    again = wandb.Artifact("many", type="dataset")
    entries = again.add_reference(f"s3://{s3_bucket}/many")
    assert len(entries) == 1000 and all(("versionID" in e.extra) == versioned for e in entries)
    relogged = _log(again)
    assert relogged.version == v0.version == "v0"  # unchanged: the same version
    assert len(s3_server.requests) == 1, s3_server.requests  # one listing, no per-object request
    method, path, query = s3_server.requests[0]
    assert method == "GET" and "versions" in query and "prefix=many" in query


def test_unknown_scheme_error(ws_env):
    with pytest.raises(ValueError, match=r"'ftp'.*supported schemes: .*s3"):
        wandb.Artifact("x", type="t").add_reference("ftp://host/file")


def test_missing_bucket_error_names_uri_and_bucket(ws_env, s3_server, s3_bucket):
    with pytest.raises(FileNotFoundError) as err:
        wandb.Artifact("x", type="t").add_reference("s3://no-such-bucket-here/key.txt")
    assert "s3://no-such-bucket-here/key.txt" in str(err.value) and "does not exist" in str(err.value)
    assert "bucket name" in str(err.value)


def test_missing_key_error(ws_env, s3_server, s3_bucket):
    with pytest.raises(FileNotFoundError, match=rf"s3://{s3_bucket}/nothing/here.*matches no object"):
        wandb.Artifact("x", type="t").add_reference(f"s3://{s3_bucket}/nothing/here")


def test_missing_credentials_error(ws_env, s3_server, s3_bucket, monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata probe off this machine
    with pytest.raises(PermissionError) as err:
        wandb.Artifact("x", type="t").add_reference(f"s3://{s3_bucket}/k")
    assert f"s3://{s3_bucket}/k" in str(err.value) and "AWS_ACCESS_KEY_ID" in str(err.value)


def test_unreachable_endpoint_error(ws_env, s3_server, s3_bucket, monkeypatch):
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(ConnectionError) as err:
        wandb.Artifact("x", type="t").add_reference(f"s3://{s3_bucket}/k")
    assert f"s3://{s3_bucket}/k" in str(err.value) and f"127.0.0.1:{port}" in str(err.value)
    assert "AWS_ENDPOINT_URL" in str(err.value)


def test_handler_resolve_without_sdk(s3_server, s3_bucket):
    """The storage-layer API on its own (no workspace): what add_reference builds on."""
    _put(s3_server, s3_bucket, "k.txt", b"k")
    [ref] = references.resolve(f"s3://{s3_bucket}/k.txt")
    assert ref.path == "k.txt" and ref.size == 1


def test_no_stale_etag_after_a_change_in_the_same_process(ws_env, s3_server, s3_bucket):
    _put(s3_server, s3_bucket, "s/a.txt", b"one")
    first = wandb.Artifact("stale", type="t").add_reference(f"s3://{s3_bucket}/s")
    new = _put(s3_server, s3_bucket, "s/a.txt", b"two!")["ETag"].strip('"')
    second = wandb.Artifact("stale", type="t").add_reference(f"s3://{s3_bucket}/s")
    assert second[0].digest == new != first[0].digest and second[0].size == 4


def test_listing_without_list_versions_permission_still_pins_versions(s3_server, s3_versioned_bucket):
    """The fallback used where s3:ListBucketVersions is denied: ListObjectsV2, plus HEADs for VersionId."""
    from wandb_dagster.storage import refs_s3

    bucket = s3_versioned_bucket
    first = _put(s3_server, bucket, "f/a", b"a")
    _put(s3_server, bucket, "f/b", b"b")
    got = list(refs_s3.S3Handler()._latest_without_versions(refs_s3._filesystem(), f"s3://{bucket}/f", bucket, "f/"))
    assert [o["Key"] for o in got] == ["f/a", "f/b"]
    assert got[0]["VersionId"] == first["VersionId"] and got[0]["ETag"].strip('"') == first["ETag"].strip('"')


def test_verify_checks_sizes_of_s3_references(ws_env, s3_server, s3_bucket):
    _put(s3_server, s3_bucket, "v/a.txt", b"abc")
    artifact = wandb.Artifact("verify", type="t")
    artifact.add_reference(f"s3://{s3_bucket}/v")
    logged = _log(artifact)
    root = Path(logged.download(root="out"))
    logged.verify(root)
    (root / "a.txt").write_bytes(b"abcd")
    with pytest.raises(ValueError, match="'a.txt' has 4 bytes, expected 3"):
        logged.verify(root)


def test_round_trip_on_both_databases(any_ws_env, s3_server, s3_versioned_bucket):
    first = _put(s3_server, s3_versioned_bucket, "r/a.txt", b"round trip")
    artifact = wandb.Artifact("rt", type="dataset")
    artifact.add_reference(f"s3://{s3_versioned_bucket}/r")
    logged = _log(artifact)
    [entry] = list(logged.manifest)
    assert entry.extra == {"etag": first["ETag"].strip('"'), "versionID": first["VersionId"]}
    _put(s3_server, s3_versioned_bucket, "r/a.txt", b"overwritten")
    assert (Path(logged.download(root="o", skip_cache=True)) / "a.txt").read_bytes() == b"round trip"


def test_keys_with_query_like_characters_keep_their_own_ref(ws_env, s3_server, s3_bucket):
    # "?" is part of an S3 key: a key that looks like a signed URL's query must not lose it (the ref would
    # then name the other object "d/report", downloaded in its place for checksum=False).
    _put(s3_server, s3_bucket, "d/report?sig=1.csv", b"the weird one")
    _put(s3_server, s3_bucket, "d/report", b"the other one")
    artifact = wandb.Artifact("odd-keys", type="dataset")
    entries = {e.path: e for e in artifact.add_reference(f"s3://{s3_bucket}/d")}
    assert entries["report?sig=1.csv"].ref == f"s3://{s3_bucket}/d/report?sig=1.csv"
    artifact.add_reference(f"s3://{s3_bucket}/d/report?sig=1.csv", name="unchecked.csv", checksum=False)
    root = Path(_log(artifact).download(root="out"))
    assert (root / "report?sig=1.csv").read_bytes() == b"the weird one"
    assert (root / "report").read_bytes() == b"the other one"
    assert (root / "unchecked.csv").read_bytes() == b"the weird one"
    [unnamed] = wandb.Artifact("odd", type="t").add_reference(f"s3://{s3_bucket}/d/report?sig=1.csv", checksum=False)
    assert unnamed.path == "report?sig=1.csv"  # the basename of the key, as for checksum=True
