"""run.save / wandb.save (issue 12, run files): W&B's glob and base_path rules, the three policies, and the
files read back through the Public API, on SQLite and PostgreSQL (docs/behaviour.md section 9)."""

from __future__ import annotations

import time

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk import run_files
from wandb_dagster.sdk.workspace import Workspace


def _files(run) -> dict[str, bytes]:
    """The run's saved files as the store records them, read from the blob store."""
    ws = Workspace.default()
    out = {}
    for f in ws.store.run_files(run._pk):
        with ws.blobs.open(f.digest) as blob:
            out[f.name] = blob.read()
    return out


def test_save_keeps_paths_relative_to_the_base_path(any_ws_env, tmp_path) -> None:
    (any_ws_env / "configs").mkdir()
    (any_ws_env / "configs" / "a.yaml").write_text("a: 1\n")
    (any_ws_env / "configs" / "b.yaml").write_text("b: 2\n")
    (any_ws_env / "configs" / "skip.txt").write_text("no")
    deep = tmp_path / "out" / "sub"
    deep.mkdir(parents=True)
    (deep / "x.txt").write_text("x")
    run = wandb.init(project="p")
    saved = run.save("configs/*.yaml", policy="now")
    assert saved == [str(any_ws_env / "configs" / "a.yaml"), str(any_ws_env / "configs" / "b.yaml")]
    assert wandb.save(str(deep / "x.txt"), base_path=str(tmp_path / "out"), policy="now") == [str(deep / "x.txt")]
    # An absolute glob without base_path keeps one folder level, as W&B does (and says so).
    with pytest.warns(UserWarning, match="Saving files without folders"):
        run.save(str(deep / "*.txt"), policy="now")
    assert _files(run) == {"configs/a.yaml": b"a: 1\n", "configs/b.yaml": b"b: 2\n", "sub/x.txt": b"x"}
    run.finish()


def test_save_refuses_what_w_and_b_refuses(ws_env) -> None:
    run = wandb.init(project="p")
    with pytest.raises(ValueError, match="may not walk above the base path"):
        run.save("../elsewhere/*.txt")
    with pytest.raises(ValueError, match="may not start with '\\*'"):
        run.save("*/a.txt")
    with pytest.raises(ValueError, match="policy='sometimes' is invalid"):
        run.save("a/b.txt", policy="sometimes")
    with pytest.warns(UserWarning, match="cloud storage url"):
        assert run.save("s3://bucket/key") == []
    run.finish()
    with pytest.raises(RuntimeError, match=r"wandb.init\(\) before wandb.save\(\)"):
        wandb.save("a/b.txt")


def test_policies_now_live_and_end(any_ws_env, monkeypatch) -> None:
    monkeypatch.setattr(run_files, "WATCH_INTERVAL_S", 0.05)
    d = any_ws_env / "d"
    d.mkdir()
    for name in ("now.txt", "live.txt", "end.txt"):
        (d / name).write_text("v1")
    run = wandb.init(project="p")
    run.save("d/now.txt", policy="now")
    run.save("d/live.txt")  # "live" is the default, as in W&B
    run.save("d/end.txt", policy="end")
    assert _files(run) == {"d/now.txt": b"v1", "d/live.txt": b"v1"}  # "end" waits for the finish
    time.sleep(0.01)  # a later mtime even on coarse clocks
    for name in ("now.txt", "live.txt", "end.txt"):
        (d / name).write_text("v2 longer")
    deadline = time.monotonic() + 20
    while _files(run)["d/live.txt"] != b"v2 longer":  # the watcher uploads the change while the run goes on
        assert time.monotonic() < deadline, "a live file's change was not uploaded during the run"
        time.sleep(0.05)
    run.finish()
    assert _files(run) == {"d/now.txt": b"v1", "d/live.txt": b"v2 longer", "d/end.txt": b"v2 longer"}


def test_public_api_lists_and_downloads_saved_files_beside_media(any_ws_env, tmp_path) -> None:
    import numpy as np

    (any_ws_env / "ckpt").mkdir()
    (any_ws_env / "ckpt" / "model.bin").write_bytes(b"\x00weights")
    run = wandb.init(project="p")
    run.save("ckpt/model.bin", policy="end")
    run.log({"img": wandb.Image(np.zeros((2, 2, 3), dtype=np.uint8))})
    run.finish()
    api_run = wandb.Api().run(f"p/{run.id}")
    names = [f.name for f in api_run.files()]
    assert names[0] == "ckpt/model.bin" and len(names) == 2 and names[1].startswith("media/images/img_0_")
    assert [f.name for f in api_run.files(pattern="%.bin")] == ["ckpt/model.bin"]
    one = api_run.file("ckpt/model.bin")
    assert one.size == 8 and one.mimetype == "application/octet-stream"
    with one.download(root=tmp_path / "dl") as f:
        assert f.name == str(tmp_path / "dl" / "ckpt" / "model.bin")
    assert (tmp_path / "dl" / "ckpt" / "model.bin").read_bytes() == b"\x00weights"


def test_a_saved_file_is_recorded_after_its_blob_is_fsynced(ws_env, monkeypatch) -> None:
    """docs/architecture.md invariant 1 for run files: the blob a run_files row names is durable before the
    row's transaction commits."""
    import os

    from wandb_dagster.storage import blobs as blobs_mod
    from wandb_dagster.store import Store

    (ws_env / "d").mkdir()
    (ws_env / "d" / "warm.txt").write_text("creates the blob store's folders")
    (ws_env / "d" / "model.txt").write_text("the content to keep")
    run = wandb.init(project="p", settings={"console": "off"})
    run.save("d/warm.txt", policy="now")
    fsynced, at_commit = [], []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        fsynced.append(os.path.realpath(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(blobs_mod.os, "fsync", fsync)
    monkeypatch.setattr(Store, "_fault_hook", lambda point: at_commit.append((point, list(fsynced))))
    run.save("d/model.txt", policy="now")
    monkeypatch.setattr(Store, "_fault_hook", None)
    run.finish()
    [(point, before_commit)] = at_commit
    [row] = [f for f in Workspace.default().store.run_files(run._pk) if f.name == "d/model.txt"]
    assert point == "put_run_files"
    assert os.path.realpath(Workspace.default().blobs.blob_path(row.digest)) in before_commit
