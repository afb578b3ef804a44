"""Checking a whole workspace (``wandb-dagster verify``): blobs against manifests, the database's own
consistency, and repair from a good copy (the download cache, or files given), on SQLite and PostgreSQL,
and on a bucket (S3 and GCS)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import sqlalchemy as sa

import wandb_dagster as wandb
from wandb_dagster.sdk.verify import verify_workspace
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.storage.hashing import b64_to_hex

from .test_remote_workspace import Remote, remote, remote_ws  # noqa: F401  (fixtures)


def _log_tree(root: Path, name: str = "ds") -> tuple[wandb.Artifact, dict[str, bytes]]:
    files = {f"f{i}.bin": os.urandom(100 + i) for i in range(4)}
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    with wandb.init(project="vfy") as run:
        artifact = wandb.Artifact(name, type="dataset")
        artifact.add_dir(str(root))
        run.log_artifact(artifact)
    return artifact, files


def _hex_of(artifact: wandb.Artifact, path: str) -> str:
    return b64_to_hex(artifact.manifest.entries[path].digest)


def _flip_a_bit(path: Path) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))


def test_a_sound_workspace_verifies(any_ws_env: Path) -> None:
    _log_tree(any_ws_env / "a", "one")
    _log_tree(any_ws_env / "b", "two")
    report = verify_workspace(Workspace.default())
    assert report.ok and report.problems == []
    assert (report.versions, report.blobs) == (2, 8)
    assert report.bytes == 2 * sum(100 + i for i in range(4))


def test_corrupt_and_missing_blobs_are_reported_with_their_entries_and_repaired_from_a_copy(
    any_ws_env: Path,
) -> None:
    artifact, files = _log_tree(any_ws_env / "data")
    ws = Workspace.default()
    corrupt, missing = _hex_of(artifact, "f0.bin"), _hex_of(artifact, "f1.bin")
    _flip_a_bit(Path(ws.blobs.blob_path(corrupt)))
    ws.blobs.delete(missing)

    report = verify_workspace(ws)
    assert not report.ok
    found = {p["blob"]: p for p in report.problems}
    assert set(found) == {corrupt, missing}
    assert found[corrupt]["kind"] == "corrupt" and found[missing]["kind"] == "missing"
    assert found[corrupt]["entries"] == [{"version": "tester/vfy/ds:v0", "path": "f0.bin"}]
    assert not any(p["repaired"] for p in report.problems)

    # The originals, elsewhere and under other names: found by content.
    originals = any_ws_env / "originals"
    originals.mkdir()
    for i, rel in enumerate(files):
        shutil.copyfile(any_ws_env / "data" / rel, originals / f"copy-{i}")
    repaired = verify_workspace(ws, repair=True, sources=[originals])
    assert repaired.ok and {p["blob"] for p in repaired.problems if p["repaired"]} == {corrupt, missing}
    assert verify_workspace(ws).problems == []
    got = wandb.Api().artifact("vfy/ds:v0")
    root = got.download(root=str(any_ws_env / "out"))
    got.verify(root)


def test_a_blob_is_repaired_from_the_download_cache(any_ws_env: Path) -> None:
    artifact, _ = _log_tree(any_ws_env / "data")
    wandb.Api().artifact("vfy/ds:v0").download(root=str(any_ws_env / "dl"))  # fills the cache
    ws = Workspace.default()
    bad = _hex_of(artifact, "f2.bin")
    _flip_a_bit(Path(ws.blobs.blob_path(bad)))
    report = verify_workspace(ws, repair=True)
    assert [(p["blob"], p["kind"], p["repaired"]) for p in report.problems] == [(bad, "corrupt", True)]
    assert verify_workspace(ws).ok


def test_a_blob_with_no_good_copy_stays_reported(any_ws_env: Path) -> None:
    artifact, _ = _log_tree(any_ws_env / "data")
    ws = Workspace.default()
    ws.blobs.delete(_hex_of(artifact, "f3.bin"))
    (any_ws_env / "unrelated").mkdir()
    (any_ws_env / "unrelated" / "x").write_bytes(os.urandom(103))  # the right size, other bytes
    report = verify_workspace(ws, repair=True, sources=[any_ws_env / "unrelated"])
    assert not report.ok and [p["repaired"] for p in report.problems] == [False]


def test_database_inconsistencies_are_reported(any_ws_env: Path) -> None:
    _log_tree(any_ws_env / "a")
    _log_tree(any_ws_env / "b")  # v1: holds latest
    ws = Workspace.default()
    # Damage by hand, as a bad restore might: latest taken off the newest version.
    with ws.store._engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM aliases WHERE alias = 'latest'"))
    kinds = [(p["kind"], p["where"]) for p in verify_workspace(ws).problems]
    assert kinds == [("latest", "tester/vfy/ds:v1")]


def test_a_sample_checks_that_many_versions(any_ws_env: Path) -> None:
    for i in range(4):
        _log_tree(any_ws_env / f"t{i}", f"s{i}")
    report = verify_workspace(Workspace.default(), sample=2, seed=1)
    assert report.versions == 2 and report.ok


def test_a_corrupt_blob_in_a_bucket_is_found_and_repaired(remote: Remote, remote_ws: Path) -> None:  # noqa: F811
    artifact, _ = _log_tree(remote_ws / "data")
    ws = Workspace.default()
    bad = _hex_of(artifact, "f1.bin")
    remote.corrupt(bad)
    report = verify_workspace(ws)
    assert [(p["blob"], p["kind"]) for p in report.problems] == [(bad, "corrupt")]
    fixed = verify_workspace(ws, repair=True, sources=[remote_ws / "data"])
    assert fixed.ok and verify_workspace(ws).ok


def test_a_damaged_manifest_is_reported_naming_the_version(any_ws_env: Path) -> None:
    _log_tree(any_ws_env / "a")
    ws = Workspace.default()
    with ws.store._engine.begin() as conn:
        conn.execute(sa.text("""UPDATE versions SET manifest = '{"version": 1, "contents": ["x"]}'"""))
    (problem,) = verify_workspace(ws).problems
    assert (problem["kind"], problem["where"]) == ("manifest", "tester/vfy/ds:v0")
    assert "Damaged the manifest of tester/vfy/ds:v0" in problem["detail"]
