"""gc keeps every blob a run names (docs/architecture.md, "Garbage collection"): its saved files, its
console's output.log and the media its history rows and summary name; a deleted run's blobs are garbage.
SQLite and PostgreSQL; the concurrent-writer test with real processes is in test_gc_concurrency.py."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import wandb_dagster as wandb
from wandb_dagster.sdk.data_types import media_files
from wandb_dagster.sdk.gc import collect_garbage
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.storage.hashing import b64_to_hex


def _stored() -> set[str]:
    return set(Workspace.default().blobs.iter_hexes())


def _log_run(where: Path, seed: int) -> wandb.sdk.run.Run:
    rng = np.random.default_rng(seed)
    (where / "notes.txt").write_text(f"saved by run {seed}")
    run = wandb.init(project="gcr")
    print(f"console output of run {seed}")
    sys.stdout.flush()
    run.save(str(where / "notes.txt"), base_path=str(where), policy="now")
    run.log({"img": wandb.Image(rng.integers(0, 255, (4, 4, 3), dtype=np.uint8))})
    run.log({"imgs": [wandb.Image(rng.integers(0, 255, (3, 3, 3), dtype=np.uint8)) for _ in range(2)]})
    run.log({"page": wandb.Html(f"<p>run {seed}</p>")})
    run.summary["best"] = wandb.Image(rng.integers(0, 255, (5, 5, 3), dtype=np.uint8))
    run.finish()
    return run


def _named_by(run_id: str) -> dict[str, str]:
    """name -> hex of every file the run names: its run files and its history's and summary's media."""
    api_run = wandb.Api().run(f"gcr/{run_id}")
    out = {f.name: b64_to_hex(f.md5) for f in api_run.files()}
    for value in (*api_run.scan_history(), api_run.summary):
        out.update((name, b64_to_hex(digest)) for name, digest, _ in media_files(value))
    return out


def test_gc_keeps_the_files_and_media_a_run_names_and_frees_them_once_the_run_is_deleted(
    any_ws_env: Path, tmp_path: Path
) -> None:
    kept = _log_run(any_ws_env, 1)
    gone = _log_run(any_ws_env, 2)
    named = _named_by(kept.id)
    # notes.txt, output.log, img, 2 imgs, page, best: every one a file of the run, listed once.
    files = [f.name for f in wandb.Api().run(f"gcr/{kept.id}").files()]
    assert len(files) == len(set(files)) == 7 and {"notes.txt", "output.log"} <= set(files), files
    assert set(named) == set(files)
    ws = Workspace.default()
    before = _stored()
    assert set(named.values()) <= before

    report = collect_garbage(ws, grace_s=0)
    assert report.deleted == 0 and _stored() == before
    for f in wandb.Api().run(f"gcr/{kept.id}").files():  # each download checks the blob's MD5
        f.download(root=tmp_path / "dl", replace=True).close()
    assert (tmp_path / "dl" / "notes.txt").read_text() == "saved by run 1"
    assert "console output of run 1" in (tmp_path / "dl" / "output.log").read_text()

    gone_only = set(_named_by(gone.id).values()) - set(named.values())
    wandb.Api().run(f"gcr/{gone.id}").delete()
    report = collect_garbage(ws, grace_s=0)
    assert report.deleted == len(gone_only) > 0
    assert _stored() == before - gone_only
    for f in wandb.Api().run(f"gcr/{kept.id}").files():
        f.download(root=tmp_path / "dl2").close()


def test_a_run_logging_media_and_files_onto_marked_garbage_keeps_them(any_ws_env: Path, tmp_path: Path) -> None:
    """The dedup case: blobs found unused by a gc (a deleted run's), then named again by a new run that
    stores the same media and file contents; a gc with no grace keeps them."""
    first = _log_run(any_ws_env, 3)
    blobs = set(_named_by(first.id).values())
    wandb.Api().run(f"gcr/{first.id}").delete()
    ws = Workspace.default()
    assert collect_garbage(ws, grace_s=3600).marked >= len(blobs) - 1  # output.log's content differs by run
    again = _log_run(any_ws_env, 3)
    named = _named_by(again.id)
    collect_garbage(ws, grace_s=0)
    assert set(named.values()) <= _stored()
    for f in wandb.Api().run(f"gcr/{again.id}").files():
        f.download(root=tmp_path / "dl", replace=True).close()
