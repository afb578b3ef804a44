"""Reading artifacts back: download, entries, verify, checkout, file(s), integrity and path safety."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.storage.hashing import b64_to_hex


@pytest.fixture
def logged(ws_env: Path) -> wandb.Artifact:
    (ws_env / "src" / "sub").mkdir(parents=True)
    (ws_env / "src" / "a.txt").write_text("alpha")
    (ws_env / "src" / "sub" / "b.txt").write_text("beta")
    with wandb.init(project="p") as run:
        artifact = wandb.Artifact("ds", type="dataset")
        artifact.add_dir("src")
        run.log_artifact(artifact)
    return wandb.Api(overrides={"project": "p"}).artifact("ds:v0")


def test_download_to_the_default_root(logged, ws_env):
    root = logged.download()
    assert Path(root) == Path("artifacts") / "ds:v0"
    assert (ws_env / "artifacts" / "ds:v0" / "a.txt").read_text() == "alpha"
    assert (ws_env / "artifacts" / "ds:v0" / "sub" / "b.txt").read_text() == "beta"
    logged.verify(root)


def test_download_with_prefix_entry_and_get_path(logged, ws_env):
    root = Path(logged.download(root="only-sub", path_prefix="sub/"))
    assert [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()] == ["sub/b.txt"]
    path = logged.get_entry("a.txt").download(root="single")
    assert Path(path).read_text() == "alpha"
    assert logged.get_path("sub/b.txt").path == "sub/b.txt"
    with pytest.raises(KeyError, match="nope"):
        logged.get_entry("nope")
    assert sorted(f.name for f in logged.files()) == ["a.txt", "sub/b.txt"]


def test_file_needs_exactly_one_entry(logged, ws_env):
    with pytest.raises(ValueError, match="2 entries"):
        logged.file()
    (ws_env / "one.txt").write_text("1")
    with wandb.init(project="p") as run:
        single = run.log_artifact("one.txt", name="single")
    assert Path(single.file(root="f")).read_text() == "1"


def test_verify_and_checkout_detect_and_repair_differences(logged, ws_env):
    root = Path(logged.download(root="out"))
    (root / "a.txt").write_text("tampered")
    (root / "extra.txt").write_text("x")
    with pytest.raises(ValueError) as err:
        logged.verify(root)
    assert "a.txt" in str(err.value) and "extra.txt" in str(err.value)
    logged.checkout(root)
    logged.verify(root)
    assert not (root / "extra.txt").exists()


def test_download_repairs_a_locally_edited_file(logged, ws_env):
    root = Path(logged.download(root="out"))
    (root / "a.txt").write_text("edited")
    logged.download(root="out")
    assert (root / "a.txt").read_text() == "alpha"


def test_corrupted_blob_is_never_returned(logged, ws_env):
    ws = Workspace.default()
    entry = logged.get_entry("a.txt")
    blob = Path(ws.blobs.blob_path(b64_to_hex(entry.digest)))
    os.chmod(blob, 0o644)
    blob.write_text("ALPHA")  # same size, other bytes
    with pytest.raises(ValueError, match=b64_to_hex(entry.digest)):
        logged.download(root="out", skip_cache=True)
    assert not (Path("out") / "a.txt").exists()
    with pytest.raises(ValueError, match=b64_to_hex(entry.digest)):
        logged.download(root="out2")
    assert not (Path("out2") / "a.txt").exists()


def test_download_cache_is_used_and_its_entries_checked(logged, ws_env):
    ws = Workspace.default()
    logged.download(root="first")
    hexdigest = b64_to_hex(logged.get_entry("a.txt").digest)
    cached = ws.cache.lookup(hexdigest, 5)
    assert cached is not None and cached.read_bytes() == b"alpha"
    # With the blob gone, a second download is served from the (verified) cache.
    Path(ws.blobs.blob_path(hexdigest)).unlink()
    assert (Path(logged.download(root="second")) / "a.txt").read_text() == "alpha"


def test_a_symlink_inside_the_root_cannot_redirect_writes(logged, ws_env, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = ws_env / "root"
    root.mkdir()
    os.symlink(outside, root / "sub")
    with pytest.raises(ValueError, match="outside the download root"):
        logged.download(root=str(root))
    assert list(outside.iterdir()) == []


def test_a_manifest_with_an_escaping_path_is_refused_on_read(ws_env):
    ws = Workspace.default()
    manifest = '{"version": 1, "contents": {"../../evil.txt": {"digest": "sZRqySSS0jR8YjW00mERhA==", "size": 6}}}'
    ws.store.commit_version(
        "tester", "p", "evil", "dataset", digest="0" * 32, manifest=manifest, size=6, file_count=1,
        metadata={}, description=None, aliases=["latest"], tags=[], run_pk=None,
    )
    artifact = wandb.Api(overrides={"project": "p"}).artifact("evil:v0")
    with pytest.raises(ValueError, match=r"\.\./\.\./evil\.txt"):
        artifact.download(root="x")
    assert not (ws_env.parent / "evil.txt").exists()


def test_an_artifact_larger_than_the_cache_still_downloads(ws_env, monkeypatch):
    # 400 x 20 KB through a 60 KB cache with 8 download threads: our own threads must not evict
    # entries between fetch and place.
    monkeypatch.setenv("WANDB_DAGSTER_CACHE_SIZE", "60000")
    src = ws_env / "many"
    src.mkdir()
    for i in range(400):
        (src / f"f{i:03d}.bin").write_bytes(os.urandom(20_000))
    with wandb.init(project="p") as run:
        artifact = wandb.Artifact("many", type="dataset")
        artifact.add_dir("many")
        run.log_artifact(artifact)
    root = Path(artifact.download(root="out"))
    artifact.verify(root)
    cache_bytes = sum(p.stat().st_size for p in (ws_env.parent / "cache" / "md5").rglob("*") if p.is_file())
    assert cache_bytes <= 60_000
