"""http(s):// references against a loopback HTTP server: ETag/Content-Length, weak ETags, routes without
Content-Length or HEAD, content that changes, missing content, the cache and clear errors."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.storage.hashing import md5_b64


def _log(artifact: wandb.Artifact, project: str = "refs") -> wandb.Artifact:
    with wandb.init(project=project) as run:
        run.log_artifact(artifact)
    return wandb.Api(overrides={"project": project}).artifact(f"{artifact.collection_name}:latest")


def test_strong_etag_and_content_length(ws_env, http_server):
    url = http_server.put("data/table.csv", b"a,b\n1,2\n")
    [entry] = wandb.Artifact("h", type="t").add_reference(url)
    etag = hashlib.md5(b"a,b\n1,2\n").hexdigest()
    assert (entry.path, entry.digest, entry.size, entry.ref) == ("table.csv", etag, 8, url)
    assert entry.extra == {"etag": f'"{etag}"'}
    assert ("HEAD", "/data/table.csv") in http_server.requests
    assert not any(method == "GET" for method, _ in http_server.requests)  # metadata only: the body is not read


def test_route_without_content_length_and_without_head(ws_env, http_server):
    url = http_server.put("nolen", b"no length here", content_length=False, head=False)
    [entry] = wandb.Artifact("h", type="t").add_reference(url, name="renamed.bin")
    assert entry.size is None and entry.digest == hashlib.md5(b"no length here").hexdigest()
    assert entry.path == "renamed.bin"
    artifact = wandb.Artifact("nolen", type="t")
    artifact.add_reference(url)
    assert (Path(_log(artifact).download(root="o")) / "nolen").read_bytes() == b"no length here"


def test_no_etag_is_untracked(ws_env, http_server):
    url = http_server.put("plain", b"v1", etag=None)
    artifact = wandb.Artifact("plain", type="t")
    [entry] = artifact.add_reference(url)
    assert entry.digest == url and entry.ref == url and entry.size == 2 and entry.extra == {}
    logged = _log(artifact)
    http_server.put("plain", b"v2 changed", etag=None)
    assert (Path(logged.download(root="o")) / "plain").read_bytes() == b"v2 changed"


def test_weak_etag_records_content_md5_and_detects_changes_behind_it(ws_env, http_server):
    # A weak ETag that stays the same while the bytes change: exactly why it is not a checksum.
    url = http_server.put("weak.txt", b"original", etag='W/"same"')
    artifact = wandb.Artifact("weak", type="t")
    [entry] = artifact.add_reference(url)
    assert entry.digest == md5_b64(b"original") and entry.size == 8 and entry.extra == {"etag": 'W/"same"'}
    logged = _log(artifact)
    assert (Path(logged.download(root="a")) / "weak.txt").read_bytes() == b"original"
    http_server.put("weak.txt", b"modified", etag='W/"same"')
    with pytest.raises(ValueError) as err:
        logged.download(root="b", skip_cache=True)
    assert "'weak.txt'" in str(err.value) and md5_b64(b"original") in str(err.value) and md5_b64(b"modified") in str(err.value)


def test_content_that_changes_with_strong_etag(ws_env, http_server):
    url = http_server.put("model.bin", b"v1 weights")
    artifact = wandb.Artifact("changing", type="model")
    artifact.add_reference(url)
    logged = _log(artifact)
    http_server.put("model.bin", b"v2 weights!")
    with pytest.raises(ValueError) as err:
        logged.download(root="o", skip_cache=True)
    old, new = hashlib.md5(b"v1 weights").hexdigest(), hashlib.md5(b"v2 weights!").hexdigest()
    assert "'model.bin'" in str(err.value) and old in str(err.value) and new in str(err.value)
    # Logging again records the new content as a new version.
    again = wandb.Artifact("changing", type="model")
    again.add_reference(url)
    relogged = _log(again)
    assert relogged.version == "v1"
    assert (Path(relogged.download(root="v1")) / "model.bin").read_bytes() == b"v2 weights!"


def test_missing_and_allow_missing(ws_env, http_server):
    artifact = wandb.Artifact("m", type="t")
    artifact.add_reference(http_server.put("keep", b"k"))
    artifact.add_reference(http_server.put("gone", b"g"))
    logged = _log(artifact)
    http_server.delete("gone")
    with pytest.raises(FileNotFoundError, match="'gone'.*allow_missing_references"):
        logged.download(root="a", skip_cache=True)
    root = Path(logged.download(root="b", skip_cache=True, allow_missing_references=True))
    assert sorted(p.name for p in root.iterdir()) == ["keep"]
    with pytest.raises(FileNotFoundError, match="HTTP 404"):
        wandb.Artifact("x", type="t").add_reference(http_server.url("never-there"))


def test_downloads_are_cached_by_url_and_etag(ws_env, http_server):
    url = http_server.put("c.bin", b"c" * 5000)
    artifact = wandb.Artifact("c", type="t")
    artifact.add_reference(url)
    logged = _log(artifact)
    logged.download(root="a")
    http_server.requests.clear()
    assert (Path(logged.download(root="b")) / "c.bin").read_bytes() == b"c" * 5000
    assert http_server.requests == []


def test_checksum_false_and_max_objects(ws_env, http_server):
    url = http_server.put("x", b"x")
    http_server.requests.clear()
    [entry] = wandb.Artifact("u", type="t").add_reference(url, checksum=False)
    assert (entry.digest, entry.ref, entry.size) == (url, url, None) and http_server.requests == []
    assert len(wandb.Artifact("u", type="t").add_reference(url, max_objects=1)) == 1  # never a prefix
    with pytest.raises(ValueError, match="max_objects=0"):
        wandb.Artifact("u", type="t").add_reference(url, max_objects=0)


def test_unreachable_server_error(ws_env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/file.bin"
    with pytest.raises(ConnectionError) as err:
        wandb.Artifact("x", type="t").add_reference(url)
    assert url in str(err.value) and "reachable" in str(err.value)
