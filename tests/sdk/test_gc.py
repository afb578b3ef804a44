"""Garbage collection (docs/architecture.md, "Garbage collection"): what gc deletes and what it must keep, on
SQLite and PostgreSQL; the concurrent-writer tests with real processes are in test_gc_concurrency.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk.gc import collect_garbage
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.storage.hashing import b64_to_hex

from .test_remote_workspace import Remote, remote, remote_ws  # noqa: F401  (fixtures)


def _log(name: str, files: dict[str, bytes], where: Path, **kw) -> wandb.Artifact:
    where.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        (where / rel).write_bytes(data)
    with wandb.init(project="gc") as run:
        artifact = wandb.Artifact(name, type="dataset")
        artifact.add_dir(str(where))
        run.log_artifact(artifact, **kw)
    artifact.wait()
    return artifact


def _hexes(artifact: wandb.Artifact) -> set[str]:
    return {b64_to_hex(e.digest) for e in artifact.manifest}


def _stored() -> set[str]:
    return set(Workspace.default().blobs.iter_hexes())


def test_gc_deletes_orphans_and_the_blobs_of_deleted_versions_only(any_ws_env: Path) -> None:
    shared = os.urandom(300)
    kept = _log("kept", {"shared.bin": shared, "own.bin": os.urandom(200)}, any_ws_env / "a")
    gone = _log("gone", {"shared.bin": shared, "unique.bin": os.urandom(100)}, any_ws_env / "b")
    ws = Workspace.default()
    orphan, _ = ws.blobs.put_bytes(b"left behind by a crashed writer")
    unique = _hexes(gone) - _hexes(kept)
    wandb.Api().artifact("gc/gone:v0").delete(delete_aliases=True)

    dry = collect_garbage(ws, grace_s=0, dry_run=True)
    assert (dry.deleted, dry.unused) == (len(unique) + 1, len(unique) + 1)
    assert dry.bytes_freed == 100 + len(b"left behind by a crashed writer")
    assert {orphan} | unique <= _stored(), "a dry run deleted something"

    report = collect_garbage(ws, grace_s=0)
    assert (report.deleted, report.bytes_freed) == (dry.deleted, dry.bytes_freed)
    assert _stored() == _hexes(kept)
    wandb.Api().artifact("gc/kept:v0").verify(wandb.Api().artifact("gc/kept:v0").download())
    again = collect_garbage(ws, grace_s=0)
    assert (again.deleted, again.unused) == (0, 0)


def test_a_blob_is_deleted_only_once_a_gc_found_it_unused_longer_ago_than_the_grace(any_ws_env: Path) -> None:
    ws = Workspace.default()
    orphan, _ = ws.blobs.put_bytes(b"orphan")
    first = collect_garbage(ws, grace_s=3600)
    assert (first.unused, first.marked, first.deleted, first.waiting) == (1, 1, 0, 1)
    second = collect_garbage(ws, grace_s=3600)
    assert (second.marked, second.deleted, second.waiting) == (0, 0, 1)  # the mark stays, its clock runs
    assert orphan in _stored()
    assert collect_garbage(ws, grace_s=0).deleted == 1
    assert orphan not in _stored()


def test_a_blob_found_unused_then_reused_by_a_new_version_is_kept(any_ws_env: Path) -> None:
    """The dedup case gc must survive: a blob that was garbage when gc marked it and that a writer then
    deduplicated onto (its claim drops the mark); a gc with no grace at all keeps it."""
    ws = Workspace.default()
    data = os.urandom(500)
    hexdigest, _ = ws.blobs.put_bytes(data)
    assert collect_garbage(ws, grace_s=3600).marked == 1
    (any_ws_env / "d").mkdir()
    (any_ws_env / "d" / "reused.bin").write_bytes(data)
    with wandb.init(project="gc") as run:
        artifact = wandb.Artifact("reuse", type="dataset")
        artifact.add_dir(str(any_ws_env / "d"))  # finds the blob stored: deduplicated, and claimed
        assert collect_garbage(ws, grace_s=0).deleted == 0  # the draft's claim protects it before the commit
        run.log_artifact(artifact)
    assert collect_garbage(ws, grace_s=0).deleted == 0  # now the version names it
    assert hexdigest in _stored()
    a = wandb.Api().artifact("gc/reuse:v0")
    a.verify(a.download())


def test_a_claim_learns_that_gc_deleted_the_blob_it_found_stored(any_ws_env: Path) -> None:
    """The other interleaving: gc deleted the blob after the writer saw it stored but before its claim. The
    claim says so, and add_file/commit store it again (docs/architecture.md, "Garbage collection")."""
    ws = Workspace.default()
    hexdigest, _ = ws.blobs.put_bytes(b"soon gone")
    assert collect_garbage(ws, grace_s=0).deleted == 1
    assert ws.store.claim_blobs("writer-1", [hexdigest]) == {hexdigest}
    # A second writer that also saw it stored before the deletion hears of it too: the first claim does not
    # consume the deletion record (the first writer may not have stored the blob again yet).
    assert ws.store.claim_blobs("writer-2", [hexdigest]) == {hexdigest}


def test_parts_of_a_distributed_artifact_keep_their_blobs_until_merged_and_after(any_ws_env: Path) -> None:
    ws = Workspace.default()
    parts = {}
    for i in range(2):
        (any_ws_env / f"p{i}.bin").write_bytes(os.urandom(64 + i))
        with wandb.init(project="gc") as run:
            part = wandb.Artifact("dist", type="dataset")
            part.add_file(str(any_ws_env / f"p{i}.bin"))
            run.upsert_artifact(part, distributed_id="d1")
        parts[i] = _hexes(part)
    assert collect_garbage(ws, grace_s=0).deleted == 0  # upserted parts are not garbage
    assert parts[0] | parts[1] <= _stored()
    with wandb.init(project="gc") as run:
        final = wandb.Artifact("dist", type="dataset")
        run.finish_artifact(final, distributed_id="d1")
    assert collect_garbage(ws, grace_s=0).deleted == 0  # the merged version names them now
    merged = wandb.Api().artifact("gc/dist:v0")
    assert _hexes(merged) == parts[0] | parts[1]
    merged.verify(merged.download())
    # Deleting the collection frees them at the next gc.
    wandb.Api().artifact_collection("dataset", "gc/dist").delete()
    assert collect_garbage(ws, grace_s=0).deleted == 2
    assert not (parts[0] | parts[1]) & _stored()


def test_gc_refuses_a_negative_grace(ws_env: Path) -> None:
    with pytest.raises(ValueError, match="grace_s=-1 is negative"):
        collect_garbage(Workspace.default(), grace_s=-1)


def _current_objects(remote: Remote) -> set[str]:  # noqa: F811
    """The blobs in the bucket now (the S3 fixture's bucket is versioned: a deleted object keeps old versions,
    which Remote.objects lists)."""
    if remote.kind != "s3":
        return set(remote.objects())
    pages = remote.server.client().get_paginator("list_objects_v2").paginate(Bucket=remote.bucket, Prefix="team-ws/")
    return {"".join(o["Key"].split("/")[1:]) for page in pages for o in page.get("Contents", [])}


def test_gc_on_a_bucket_deletes_the_orphans_and_keeps_what_versions_name(remote: Remote, remote_ws: Path) -> None:  # noqa: F811
    kept = _log("kept", {"a.bin": os.urandom(300)}, remote_ws / "a")
    gone = _log("gone", {"b.bin": os.urandom(200)}, remote_ws / "b")
    ws = Workspace.default()
    orphan, _ = ws.blobs.put_bytes(b"an upload nothing names")
    wandb.Api().artifact("gc/gone:v0").delete(delete_aliases=True)
    report = collect_garbage(ws, grace_s=0)
    assert (report.deleted, report.bytes_freed) == (2, 200 + len(b"an upload nothing names"))
    assert _current_objects(remote) == _hexes(kept)  # seen by the bucket's own client
    assert orphan not in _current_objects(remote) and not _hexes(gone) & _current_objects(remote)
    art = wandb.Api().artifact("gc/kept:v0")
    art.verify(art.download())
