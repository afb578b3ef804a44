"""Invariants 1 and 2 of docs/architecture.md through the SDK, with real processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import wandb_dagster as wandb

_CTX = multiprocessing.get_context("spawn")


def _log_many(env: dict, workdir: str, worker: int, count: int, same: bool) -> None:
    os.environ.update(env)
    os.chdir(workdir)
    import wandb_dagster as wandb

    with wandb.init(project="race") as run:
        for i in range(count):
            artifact = wandb.Artifact("shared", type="dataset")
            with artifact.new_file("data.txt", mode="w") as f:
                f.write("identical" if same else f"worker {worker} item {i}")
            run.log_artifact(artifact, aliases=[f"w{worker}"] if same else None)


def _env() -> dict:
    keys = ("WANDB_DAGSTER_DIR", "WANDB_DAGSTER_CACHE_DIR", "WANDB_DAGSTER_DATABASE_URL", "WANDB_DAGSTER_STORAGE", "WANDB_ENTITY")
    return {k: os.environ[k] for k in keys if k in os.environ}


def _run_workers(cwd: Path, workers: int, count: int, same: bool) -> None:
    procs = [_CTX.Process(target=_log_many, args=(_env(), str(cwd), w, count, same)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(240)
        assert p.exitcode == 0, f"worker exited with {p.exitcode}"


@pytest.mark.slow
def test_concurrent_writers_get_unique_gapless_versions(any_ws_env):
    _run_workers(any_ws_env, workers=4, count=6, same=False)
    api = wandb.Api(overrides={"project": "race"})
    versions = sorted(int(api.artifact(f"shared:v{i}").version[1:]) for i in range(24))
    assert versions == list(range(24))
    assert not api.artifact_exists("shared:v24")
    assert api.artifact("shared:latest").version == "v23"
    digests = {api.artifact(f"shared:v{i}").digest for i in range(24)}
    assert len(digests) == 24


@pytest.mark.slow
def test_concurrent_identical_content_yields_one_version(any_ws_env):
    _run_workers(any_ws_env, workers=4, count=2, same=True)
    api = wandb.Api(overrides={"project": "race"})
    only = api.artifact("shared:v0")
    assert not api.artifact_exists("shared:v1")
    assert sorted(only.aliases) == ["latest", "w0", "w1", "w2", "w3"]


_SLOW_LOG = """
import os, sys, time
import wandb_dagster as wandb
from wandb_dagster.storage import blobs

original = blobs.BlobStore.put_files
def slow_put_files(self, paths, expected=None, **kwargs):
    # One file at a time, announcing progress, so the parent can kill us between two blobs.
    out = []
    for i, path in enumerate(paths):
        out += original(self, [path], expected=[expected[i]] if expected else None, **kwargs)
        print("stored", i + 1, flush=True)
        time.sleep(0.05)
    return out
blobs.BlobStore.put_files = slow_put_files

run = wandb.init(project="crash")
artifact = wandb.Artifact("big", type="dataset")
artifact.add_dir("tree", policy="immutable")
print("added", flush=True)
run.log_artifact(artifact)
print("logged", flush=True)
"""


@pytest.mark.slow
def test_kill_9_while_logging_leaves_no_version(any_ws_env):
    tree = any_ws_env / "tree"
    tree.mkdir()
    for i in range(40):
        (tree / f"f{i}.txt").write_text(f"file {i}")
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_LOG], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    stored = 0
    for line in proc.stdout:
        if line.startswith("stored"):
            stored = int(line.split()[1])
            if stored >= 10:
                break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 10 <= stored < 40
    api = wandb.Api(overrides={"project": "crash"})
    assert not api.artifact_exists("big:v0")
    assert not api.artifact_exists("big:latest")
    # The same content logs cleanly afterwards, as v0, and downloads intact.
    with wandb.init(project="crash") as run:
        artifact = wandb.Artifact("big", type="dataset")
        artifact.add_dir("tree")
        run.log_artifact(artifact)
    assert artifact.version == "v0"
    root = Path(artifact.download(root="check"))
    assert sorted(p.name for p in root.iterdir()) == sorted(f"f{i}.txt" for i in range(40))
    artifact.verify(root)



def test_a_small_version_is_committed_after_its_blobs_and_their_names_are_fsynced(ws_env, monkeypatch):
    """Invariant 1 on the few-blobs path: each blob the version names (also one already stored by another
    writer and not synced yet) and the directories naming it are fsynced before the version's transaction
    commits; no whole-filesystem syncfs is needed for it."""
    from wandb_dagster.sdk.workspace import Workspace
    from wandb_dagster.storage import blobs as blobs_mod
    from wandb_dagster.storage.hashing import b64_to_hex
    from wandb_dagster.store import Store

    with wandb.init(project="durable") as run:
        first = wandb.Artifact("warm-up", type="dataset")  # the store's first write creates its folders
        with first.new_file("a.txt", mode="w") as f:
            f.write("creates the blob store")
        run.log_artifact(first)
        blobs = Workspace.default().blobs
        # Stored by "someone else" (no sync): this commit must make it durable as well, since it names it.
        theirs, _ = blobs.put_bytes(b"written by another writer, not synced")
        (ws_env / "theirs.txt").write_bytes(b"written by another writer, not synced")
        (ws_env / "ours.txt").write_bytes(b"new content of this version")

        fsynced, syncfs_calls, at_commit = [], [], []
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            fsynced.append(os.path.realpath(f"/proc/self/fd/{fd}"))
            real_fsync(fd)

        monkeypatch.setattr(blobs_mod.os, "fsync", fsync)
        monkeypatch.setattr(blobs_mod, "_syncfs", syncfs_calls.append)
        monkeypatch.setattr(Store, "_fault_hook", lambda point: at_commit.append((point, list(fsynced))))
        artifact = wandb.Artifact("small", type="dataset")
        artifact.add_file(str(ws_env / "ours.txt"))
        artifact.add_file(str(ws_env / "theirs.txt"))
        logged = run.log_artifact(artifact)
        monkeypatch.setattr(Store, "_fault_hook", None)

    [(point, before_commit)] = at_commit
    assert point == "commit_version" and syncfs_calls == []
    named = {os.path.realpath(blobs.blob_path(b64_to_hex(entry.digest))) for entry in logged.manifest}
    assert os.path.realpath(blobs.blob_path(theirs)) in named and len(named) == 2
    for path in named:
        assert path in before_commit, f"blob {path} was not fsynced before the version committed"
        assert os.path.dirname(path) in before_commit, f"the directory naming {path} was not fsynced"
    assert os.path.realpath(blobs.root) in before_commit
