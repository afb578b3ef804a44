"""gs:// references against fake-gcs-server on loopback: fields, generations, prefixes, changed and missing
objects, the reference cache and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.storage.hashing import md5_b64


def _log(artifact: wandb.Artifact, project: str = "refs") -> wandb.Artifact:
    with wandb.init(project=project) as run:
        run.log_artifact(artifact)
    return wandb.Api(overrides={"project": project}).artifact(f"{artifact.collection_name}:latest")


def _put(fs, path: str, data: bytes) -> int:
    fs.pipe(path, data)
    fs.invalidate_cache()
    return int(fs.info(path)["generation"])


def test_naming_table_as_for_s3(ws_env, gcs_server, gcs_bucket):
    fs = gcs_server.filesystem()
    for key in ("images/cat.png", "images/dog.png", "checkpoints/model.h5", "model.h5", "images-old/x.png"):
        _put(fs, f"{gcs_bucket}/{key}", key.encode())
    cases = [
        ("model.h5", None, ["model.h5"]),
        ("checkpoints/model.h5", None, ["model.h5"]),
        ("model.h5", "models/mymodel.h5", ["models/mymodel.h5"]),
        ("images", None, ["cat.png", "dog.png"]),
        ("images/", "images", ["images/cat.png", "images/dog.png"]),
    ]
    for key, name, expected in cases:
        artifact = wandb.Artifact("gcs-refs", type="dataset")
        artifact.add_reference(f"gs://{gcs_bucket}/{key}", name=name)
        assert sorted(artifact.manifest.entries) == expected, key


def test_fields_md5hash_size_generation(ws_env, gcs_server, gcs_bucket):
    fs = gcs_server.filesystem()
    generation = _put(fs, f"{gcs_bucket}/d/obj.bin", b"some bytes")
    [entry] = wandb.Artifact("f", type="t").add_reference(f"gs://{gcs_bucket}/d/obj.bin")
    assert entry.digest == md5_b64(b"some bytes") and entry.size == 10
    assert entry.extra == {"versionID": generation} and entry.ref == f"gs://{gcs_bucket}/d/obj.bin"


def test_generation_pinned_and_fetched(ws_env, gcs_server, gcs_versioned_bucket):
    fs = gcs_server.filesystem()
    path = f"{gcs_versioned_bucket}/model.pt"
    g1 = _put(fs, path, b"first model")
    _put(fs, path, b"second model")
    artifact = wandb.Artifact("pinned", type="model")
    [entry] = artifact.add_reference(f"gs://{path}#{g1}")
    assert entry.extra == {"versionID": g1} and entry.digest == md5_b64(b"first model") and entry.path == "model.pt"
    latest = wandb.Artifact("latest", type="model")
    [now] = latest.add_reference(f"gs://{path}")
    assert now.digest == md5_b64(b"second model") and now.extra["versionID"] != g1
    logged = _log(artifact)
    _put(fs, path, b"third model")
    assert (Path(logged.download(root="out")) / "model.pt").read_bytes() == b"first model"


def test_changed_missing_and_allow_missing(ws_env, gcs_server, gcs_bucket):
    fs = gcs_server.filesystem()
    for name, data in (("keep", b"keep"), ("change", b"before"), ("gone", b"gone")):
        _put(fs, f"{gcs_bucket}/d/{name}", data)
    artifact = wandb.Artifact("dl", type="dataset")
    artifact.add_reference(f"gs://{gcs_bucket}/d/")
    logged = _log(artifact)
    assert sorted(p.name for p in Path(logged.download(root="a")).iterdir()) == ["change", "gone", "keep"]
    _put(fs, f"{gcs_bucket}/d/change", b"after")  # unversioned: the recorded generation is gone
    fs.rm(f"{gcs_bucket}/d/gone")
    with pytest.raises(ValueError) as err:
        logged.get_entry("change").download(root="b", skip_cache=True)
    message = str(err.value)
    assert "'change'" in message and md5_b64(b"before") in message and md5_b64(b"after") in message
    with pytest.raises(FileNotFoundError, match="'gone'"):
        logged.get_entry("gone").download(root="c", skip_cache=True)
    with pytest.raises(ValueError, match="'change'"):
        logged.download(root="d", skip_cache=True, allow_missing_references=True)
    _put(fs, f"{gcs_bucket}/d/change", b"before")  # same bytes again under a new generation: accepted
    root = Path(logged.download(root="e", skip_cache=True, allow_missing_references=True))
    assert sorted(p.name for p in root.iterdir()) == ["change", "keep"] and (root / "change").read_bytes() == b"before"


def test_downloads_are_cached_by_url_and_checksum(ws_env, gcs_server, gcs_bucket):
    fs = gcs_server.filesystem()
    _put(fs, f"{gcs_bucket}/c.bin", b"cached bytes")
    artifact = wandb.Artifact("cached", type="dataset")
    artifact.add_reference(f"gs://{gcs_bucket}/c.bin")
    logged = _log(artifact)
    logged.download(root="first")
    fs.rm(f"{gcs_bucket}/c.bin")  # only the cache can serve it now
    assert (Path(logged.download(root="second")) / "c.bin").read_bytes() == b"cached bytes"
    with pytest.raises(FileNotFoundError):
        logged.download(root="third", skip_cache=True)


def test_checksum_false_and_max_objects(ws_env, gcs_server, gcs_bucket):
    fs = gcs_server.filesystem()
    for i in range(3):
        _put(fs, f"{gcs_bucket}/p/{i}", b"%d" % i)
    uri = f"gs://{gcs_bucket}/p/0"
    [entry] = wandb.Artifact("u", type="t").add_reference(uri, checksum=False)
    assert (entry.digest, entry.ref, entry.size, entry.path) == (uri, uri, None, "0")
    with pytest.raises(ValueError, match="max_objects=2"):
        wandb.Artifact("m", type="t").add_reference(f"gs://{gcs_bucket}/p", max_objects=2)
    assert len(wandb.Artifact("m", type="t").add_reference(f"gs://{gcs_bucket}/p", max_objects=3)) == 3


def test_missing_bucket_and_object_errors(ws_env, gcs_server, gcs_bucket):
    with pytest.raises(FileNotFoundError, match=r"gs://no-such-bucket-x/k.*bucket 'no-such-bucket-x' does not exist"):
        wandb.Artifact("x", type="t").add_reference("gs://no-such-bucket-x/k")
    with pytest.raises(FileNotFoundError, match=rf"gs://{gcs_bucket}/nothing.*matches no object"):
        wandb.Artifact("x", type="t").add_reference(f"gs://{gcs_bucket}/nothing")
    with pytest.raises(FileNotFoundError, match="generation 123"):
        wandb.Artifact("x", type="t").add_reference(f"gs://{gcs_bucket}/nothing#123")


def test_missing_credentials_error(ws_env, gcs_server, monkeypatch, tmp_path):
    # No emulator and no Google credentials anywhere: refused before any request leaves the machine.
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    with pytest.raises(PermissionError) as err:
        wandb.Artifact("x", type="t").add_reference("gs://some-bucket/key")
    assert "gs://some-bucket/key" in str(err.value) and "GOOGLE_APPLICATION_CREDENTIALS" in str(err.value)


def test_no_stale_checksum_and_verify_rehashes(ws_env, gcs_server, gcs_bucket):
    fs = gcs_server.filesystem()
    _put(fs, f"{gcs_bucket}/s/a.txt", b"one")
    [first] = wandb.Artifact("stale", type="t").add_reference(f"gs://{gcs_bucket}/s")
    _put(fs, f"{gcs_bucket}/s/a.txt", b"two")
    artifact = wandb.Artifact("stale", type="t")
    [second] = artifact.add_reference(f"gs://{gcs_bucket}/s")
    assert second.digest == md5_b64(b"two") != first.digest
    logged = _log(artifact)
    root = Path(logged.download(root="out"))
    logged.verify(root)
    (root / "a.txt").write_bytes(b"owt")  # same size, other bytes: the md5Hash catches it
    with pytest.raises(ValueError, match="'a.txt' has digest"):
        logged.verify(root)


def test_unreachable_emulator_error(ws_env, gcs_server, monkeypatch):
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    with pytest.raises(ConnectionError) as err:
        wandb.Artifact("x", type="t").add_reference("gs://bucket/key.txt")
    assert "gs://bucket/key.txt" in str(err.value) and f"STORAGE_EMULATOR_HOST=http://127.0.0.1:{port}" in str(err.value)


def test_round_trip_on_both_databases(any_ws_env, gcs_server, gcs_versioned_bucket):
    fs = gcs_server.filesystem()
    generation = _put(fs, f"{gcs_versioned_bucket}/r/a.txt", b"round trip")
    artifact = wandb.Artifact("rt", type="dataset")
    artifact.add_reference(f"gs://{gcs_versioned_bucket}/r")
    logged = _log(artifact)
    [entry] = list(logged.manifest)
    assert entry.extra == {"versionID": generation} and entry.digest == md5_b64(b"round trip")
    _put(fs, f"{gcs_versioned_bucket}/r/a.txt", b"overwritten")
    assert (Path(logged.download(root="o", skip_cache=True)) / "a.txt").read_bytes() == b"round trip"
