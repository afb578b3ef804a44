"""Digests and the manifest JSON, pinned to W&B's known vectors (docs/behaviour.md section 1)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

import wandb_dagster as wandb
from wandb_dagster.sdk.manifest import Manifest, ManifestEntry, artifact_digest


def test_known_file_digests(ws_env):
    (ws_env / "empty").write_bytes(b"")
    (ws_env / "hello").write_bytes(b"hello\n")
    art = wandb.Artifact("vectors", type="dataset")
    assert art.add_file("empty").digest == "1B2M2Y8AsgTpgAmY7PhCfg=="
    assert art.add_file("hello").digest == "sZRqySSS0jR8YjW00mERhA=="


def test_known_artifact_digests(ws_env):
    assert wandb.Artifact("empty", type="dataset").digest == "64e7c61456b10382e2f3b571ac24b659"
    (ws_env / "a.txt").write_bytes(b"hello\n")
    art = wandb.Artifact("one", type="dataset")
    art.add_file("a.txt")
    assert art.digest == "df2baf4982f9ccdd99de4a5a8b016e45"


def test_digest_ignores_everything_but_paths_and_entry_digests():
    base = Manifest()
    base.add(ManifestEntry(path="a.txt", digest="sZRqySSS0jR8YjW00mERhA==", size=6))
    other = Manifest()
    other.add(ManifestEntry(path="a.txt", digest="sZRqySSS0jR8YjW00mERhA==", size=999, ref="s3://b/a.txt", extra={"etag": "x"}))
    assert base.digest() == other.digest() == "df2baf4982f9ccdd99de4a5a8b016e45"


def test_manifest_json_round_trip_and_defaults_left_out():
    m = Manifest()
    m.add(ManifestEntry(path="b/c.bin", digest="1B2M2Y8AsgTpgAmY7PhCfg==", size=0))
    m.add(ManifestEntry(path="ref", digest="etag123", size=10, ref="s3://bucket/key", extra={"etag": "etag123", "versionID": "7"}))
    body = json.loads(m.dumps())
    assert body["version"] == 1
    assert body["storagePolicy"] == "wandb-storage-policy-v1"
    assert body["storagePolicyConfig"] == {"storageLayout": "V2"}
    assert body["contents"]["b/c.bin"] == {"digest": "1B2M2Y8AsgTpgAmY7PhCfg==", "size": 0}
    assert "ref" not in body["contents"]["b/c.bin"] and "extra" not in body["contents"]["b/c.bin"]
    again = Manifest.from_json(m.dumps())
    assert again.to_json() == m.to_json()
    assert again.digest() == m.digest()


def test_manifest_readers_ignore_unknown_keys():
    text = json.dumps({
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {"storageLayout": "V2"},
        "contents": {"a.txt": {"digest": "sZRqySSS0jR8YjW00mERhA==", "size": 6, "local_path": "/tmp/x", "skip_cache": True}},
    })
    assert Manifest.from_json(text).digest() == "df2baf4982f9ccdd99de4a5a8b016e45"


def test_manifest_rejects_unsafe_paths_on_read():
    text = json.dumps({"version": 1, "contents": {"../escape": {"digest": "sZRqySSS0jR8YjW00mERhA=="}}})
    try:
        Manifest.from_json(text)
    except ValueError as e:
        assert "../escape" in str(e)
    else:
        raise AssertionError("a '..' entry path was accepted")


_path = st.lists(st.text(alphabet="abcxyz019_-.", min_size=1, max_size=5).filter(lambda p: p not in (".", "..")), min_size=1, max_size=3).map("/".join)


@given(st.dictionaries(_path, st.text(alphabet="ABCdef0123+/=", min_size=1, max_size=24), max_size=12))
def test_digest_is_order_independent_and_matches_the_formula(entries):
    import hashlib

    pairs = list(entries.items())
    expected = hashlib.md5(
        ("wandb-artifact-manifest-v1\n" + "".join(f"{p}:{d}\n" for p, d in sorted(pairs))).encode()
    ).hexdigest()
    assert artifact_digest(pairs) == expected
    assert artifact_digest(list(reversed(pairs))) == expected
    m = Manifest()
    for p, d in reversed(pairs):
        m.add(ManifestEntry(path=p, digest=d))
    assert m.digest() == expected
    assert Manifest.from_json(m.dumps()).digest() == expected
