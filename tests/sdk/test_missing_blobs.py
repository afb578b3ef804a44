"""A version is never committed while a blob it names is missing (invariant 1 of docs/architecture.md), for any
number of blobs: a few are fsynced one by one, many are made durable by one syncfs, which cannot notice a missing
file, and a bucket has nothing to flush. Each case deletes one stored blob between ``add_dir`` and
``log_artifact``, as a person cleaning up by hand or a crash would.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.storage.errors import MissingBlobsError
from wandb_dagster.storage.hashing import b64_to_hex

from .test_remote_workspace import Remote, remote, remote_ws  # noqa: F401 (fixtures)


def _tree(root: Path, n: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"f{i:05d}.bin").write_bytes(f"file {i} ".encode() * 40)


def _victim(artifact: wandb.Artifact) -> tuple[str, str]:
    """(entry path, blob hex) of the entry in the middle of the manifest."""
    entries = sorted(artifact.manifest, key=lambda e: e.path)
    entry = entries[len(entries) // 2]
    return entry.path, b64_to_hex(entry.digest)


def _assert_refused_then_recovers(cwd: Path, n: int, delete, recover: bool = True) -> None:
    with wandb.init(project="p") as run:
        artifact = wandb.Artifact("ds", type="dataset")
        artifact.add_dir(str(cwd / "data"))
        path, hexdigest = _victim(artifact)
        delete(hexdigest)
        with pytest.raises(ValueError, match=rf"Artifact 'ds'.*{path}.*{hexdigest}.*add the file again"):
            run.log_artifact(artifact)
        # Nothing was committed: no version at all, so no version whose download would fail.
        with pytest.raises(wandb.ArtifactNotFoundError):
            wandb.Api().artifact("tester/p/ds:latest")
        if not recover:
            return
        # Adding the files again restores the blob; the next log succeeds as v0 and downloads intact.
        again = wandb.Artifact("ds", type="dataset")
        again.add_dir(str(cwd / "data"))
        run.log_artifact(again)
        assert again.version == "v0"
    logged = wandb.Api().artifact("tester/p/ds:v0")
    assert len(logged.manifest) == n
    root = Path(logged.download(root=str(cwd / "out")))
    assert (root / path).read_bytes() == (cwd / "data" / path).read_bytes()
    assert logged.verify(root=str(root)) is None


@pytest.mark.parametrize("n", [5, 40, pytest.param(10_000, marks=pytest.mark.slow)])
@pytest.mark.parametrize("warm", [False, True], ids=["fresh-store", "warm-store"])
def test_local_log_is_refused_when_a_blob_vanished_before_commit(any_ws_env: Path, n: int, warm: bool) -> None:
    """fresh-store: the process has just created the blob folders (syncfs even for 5 blobs); warm-store: a
    store that exists already (a few blobs are fsynced one by one, more than FSYNC_MAX_BLOBS take syncfs)."""
    if warm:
        with wandb.init(project="warm-up") as run:
            first = wandb.Artifact("warm", type="dataset")
            with first.new_file("a.txt", mode="w") as f:
                f.write("creates the blob folders")
            run.log_artifact(first)
        Workspace.close_all()  # a new process's view: the folders exist and were not created by it
    _tree(any_ws_env / "data", n)

    def delete(hexdigest: str) -> None:
        blob = Workspace.default().blobs.blob_path(hexdigest)
        assert os.path.exists(blob), "premise: add_dir stored the blob"
        os.unlink(blob)

    _assert_refused_then_recovers(any_ws_env, n, delete)


@pytest.mark.parametrize("n", [5, 40, pytest.param(10_000, marks=pytest.mark.slow)])
def test_bucket_log_is_refused_when_a_blob_vanished_before_commit(
    remote: Remote,  # noqa: F811
    remote_ws: Path,  # noqa: F811
    database_url: str,
    n: int,
) -> None:
    if n == 10_000 and (remote.kind != "s3" or not database_url.startswith("sqlite")):
        pytest.skip("10,000 objects once, on S3 with SQLite: the other combinations add time, not coverage")
    _tree(remote_ws / "data", n)

    def delete(hexdigest: str) -> None:
        key = f"team-ws/{hexdigest[:2]}/{hexdigest[2:]}"
        if remote.kind == "s3":
            client = remote.server.client()
            client.head_object(Bucket=remote.bucket, Key=key)  # premise: add_dir stored the blob
            client.delete_object(Bucket=remote.bucket, Key=key)
        else:
            fs = remote.server.filesystem()
            assert fs.exists(f"{remote.bucket}/{key}"), "premise: add_dir stored the blob"
            fs.rm_file(f"{remote.bucket}/{key}")

    # 10,000 objects through moto take minutes to store twice: the refusal is what that size adds.
    _assert_refused_then_recovers(remote_ws, n, delete, recover=n < 10_000)


def test_an_immutable_entry_whose_blob_vanished_is_stored_again_from_its_file(ws_env: Path) -> None:
    """The file the entry was added from still holds the bytes: the commit stores the blob again (verified)
    instead of refusing, and the version is complete."""
    _tree(ws_env / "data", 40)
    with wandb.init(project="p") as run:
        artifact = wandb.Artifact("ds", type="dataset")
        artifact.add_dir(str(ws_env / "data"), policy="immutable")
        path, hexdigest = _victim(artifact)
        blob = Workspace.default().blobs.blob_path(hexdigest)
        if os.path.exists(blob):
            os.unlink(blob)
        run.log_artifact(artifact)
    assert os.path.exists(blob)
    root = Path(wandb.Api().artifact("tester/p/ds:v0").download(root=str(ws_env / "out")))
    assert (root / path).read_bytes() == (ws_env / "data" / path).read_bytes()


@pytest.mark.parametrize("n", [3, 40])
def test_sync_names_every_missing_blob_or_wrong_size(tmp_path: Path, n: int) -> None:
    """The store's own contract, both sync paths: every missing blob and every blob of another size is listed."""
    from wandb_dagster.storage.backend import open_blob_store

    store = open_blob_store(str(tmp_path / "blobs"))
    hexes = [store.put_bytes(f"blob {i}".encode())[0] for i in range(n)]
    store.sync(hexes)  # nothing missing: no error
    Workspace.close_all()
    store = open_blob_store(str(tmp_path / "blobs"))  # not the creator of the folders: the fsync path for few
    os.unlink(store.blob_path(hexes[0]))
    sizes = {h: len(f"blob {i}") for i, h in enumerate(hexes)}
    sizes[hexes[1]] += 1
    with pytest.raises(MissingBlobsError) as caught:
        store.sync(hexes, sizes)
    assert caught.value.hexdigests == sorted([hexes[0], hexes[1]])
    assert hexes[0] in str(caught.value) or "more" in str(caught.value)
