"""Importing W&B offline run folders (``wandb-dagster sync``): folders made by the real wandb SDK in offline
mode, in a subprocess, then imported on SQLite and PostgreSQL. What W&B recorded is read back from the
``.wandb`` file with wandb's own reader and compared with what the workspace holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk.imports import SourceError, sync_wandb_runs
from wandb_dagster.sdk.workspace import Workspace

_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import wandb

    os.makedirs("data/sub", exist_ok=True)
    with open("data/a.txt", "w") as f:
        f.write("hello\\n")
    with open("data/sub/b.bin", "wb") as f:
        f.write(bytes(range(256)) * 20)
    with open("notes.md", "w") as f:
        f.write("saved with run.save\\n")
    run = wandb.init(entity="wbent", project="wbproj", name="offline-run", config={"lr": 0.1, "arch": {"depth": 3}},
                     tags=["baseline", "small"], group="exp-1", job_type="train", notes="made offline",
                     settings=wandb.Settings(x_stats_sampling_interval=0.1))
    for i in range(4):
        run.log({"loss": 1.0 / (i + 1), "acc": i / 10, "val": {"loss": 2.0 / (i + 1)}})
    rng = np.random.default_rng(0)
    run.log({"sample": wandb.Image(rng.integers(0, 255, (6, 5, 3), dtype=np.uint8), caption="noise"),
             "weights": wandb.Histogram([1, 2, 2, 3, 3, 3])})
    table = wandb.Table(columns=["id", "pred"], data=[[1, 0.9], [2, 0.4]])
    run.log({"predictions": table, "page": wandb.Html("<p>report</p>")})
    run.config.update({"epochs": 4})
    run.summary["best_acc"] = 0.3
    run.save("notes.md", policy="now")
    import time; time.sleep(0.5)  # a few system metrics samples
    print("printed by the run")
    art = wandb.Artifact("dataset", type="dataset", description="two files", metadata={"rows": 2})
    art.add_dir("data")
    run.log_artifact(art, aliases=["best"])
    with open("ref.txt", "w") as f:
        f.write("referenced, not copied\\n")
    refs = wandb.Artifact("refs", type="eval")
    refs.add_reference("file://" + os.path.abspath("ref.txt"))
    refs.add(table, "scores")  # a reference to the run_table artifact's entry, by W&B's client id
    run.log_artifact(refs)
    run.finish()

    failed = wandb.init(entity="wbent", project="wbproj", name="failing", reinit="finish_previous")
    failed.log({"loss": 9.0})
    failed.finish(exit_code=3)
    """
)


def _wandb_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "WANDB_DAGSTER_"))}
    env.update({
        "WANDB_MODE": "offline", "WANDB_DIR": str(root), "WANDB_SILENT": "true", "WANDB_DATA_DIR": str(root / "data-dir"),
        "WANDB_CACHE_DIR": str(root / "cache"), "WANDB_CONFIG_DIR": str(root / "config"),
    })  # fmt: skip
    return env


@pytest.fixture(scope="module")
def offline_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``wandb/`` folder with two offline runs, made by the real wandb SDK (a finished and a failed run)."""
    root = tmp_path_factory.mktemp("wandb-offline")
    (root / "crashed").mkdir()
    (root / "make_runs.py").write_text(_SCRIPT)
    proc = subprocess.run(
        [sys.executable, "make_runs.py"], cwd=root, env=_wandb_env(root), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    # A run whose process died at once: wandb leaves a log with no run record in it.
    crash = "import os, wandb; run = wandb.init(entity='wbent', project='wbproj', name='died'); os._exit(1)"
    subprocess.run([sys.executable, "-c", crash], cwd=root / "crashed", env=_wandb_env(root / "crashed"), timeout=300)
    return root / "wandb"


def _recorded(folder: Path) -> dict[str, Any]:
    """What W&B recorded in the folder's .wandb file, read with wandb's own reader (not the importer)."""
    from google.protobuf import json_format
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal import datastore

    store = datastore.DataStore()
    store.open_for_scan(str(next(folder.glob("run-*.wandb"))))
    out: dict[str, Any] = {"history": [], "artifacts": []}
    while (data := store.scan_data()) is not None:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["run"] = record.run
        elif kind == "history":
            out["history"].append(record.history)
        elif kind == "artifact":
            out["artifacts"].append(json_format.MessageToDict(record.artifact, preserving_proto_field_name=True))
    return out


def _folders(offline_runs: Path) -> dict[str, Path]:
    folders = {}
    for folder in offline_runs.glob("offline-run-*"):
        folders[_recorded(folder)["run"].display_name] = folder
    return folders


def _counts() -> dict[str, Any]:
    ws = Workspace.default()
    counts = dict(ws.store.counts())
    counts["blobs"] = sorted(ws.blobs.iter_hexes())
    counts["events"] = ws.store.events_head()
    api = wandb.Api()
    counts["history"] = {r.id: len(r.history(pandas=False)) for r in api.runs("wbent/wbproj")}
    counts["files"] = {r.id: sorted(f.name for f in r.files()) for r in api.runs("wbent/wbproj")}
    return counts


def test_an_offline_run_is_imported_with_what_wandb_recorded(any_ws_env: Path, offline_runs: Path) -> None:
    folders = _folders(offline_runs)
    reports = sync_wandb_runs([offline_runs])
    assert len(reports) == 2 and all(r.created for r in reports)
    recorded = _recorded(folders["offline-run"])
    run_id = recorded["run"].run_id
    report = next(r for r in reports if r.path.endswith(run_id))
    assert (report.path, report.history_rows) == (f"wbent/wbproj/{run_id}", 6)
    assert report.artifacts == [f"wbent/wbproj/run-{run_id}-predictions:v0", "wbent/wbproj/dataset:v0", "wbent/wbproj/refs:v0"]

    run = wandb.Api().run(f"wbent/wbproj/{run_id}")
    assert (run.name, run.state, run.group, run.job_type, run.notes) == ("offline-run", "finished", "exp-1", "train", "made offline")
    assert sorted(run.tags) == ["baseline", "small"]
    assert run.config == {"lr": 0.1, "arch": {"depth": 3}, "epochs": 4}
    start = recorded["run"].start_time
    assert run.created_at.startswith(start.ToDatetime().strftime("%Y-%m-%dT%H:%M:%S"))

    rows = run.history(pandas=False)
    assert [r["_step"] for r in rows] == [0, 1, 2, 3, 4, 5]
    assert [r["loss"] for r in rows[:4]] == [1.0, 0.5, 1 / 3, 0.25]
    assert rows[2]["val"] == {"loss": 2 / 3}
    # Each row's timestamp is the one W&B recorded, not the import's.
    w_and_b_times = [json.loads(next(i.value_json for i in h.item if list(i.nested_key or [i.key]) == ["_timestamp"]))
                     for h in recorded["history"]]  # fmt: skip
    assert [r["_timestamp"] for r in rows] == w_and_b_times
    image = rows[4]["sample"]
    assert (image["_type"], image["width"], image["height"], image["caption"]) == ("image-file", 5, 6, "noise")
    assert rows[4]["weights"]["_type"] == "histogram" and sum(rows[4]["weights"]["values"]) == 6
    # The image's bytes are those W&B wrote in the run folder, stored under the digest the row names.
    out = any_ws_env / "out"
    run.file(image["path"]).download(root=str(out)).close()
    assert (out / image["path"]).read_bytes() == (folders["offline-run"] / "files" / image["path"]).read_bytes()

    assert run.summary["best_acc"] == 0.3 and run.summary["loss"] == 0.25
    assert run.summary["sample"]["digest"] == image["digest"]
    names = {f.name for f in run.files()}
    assert {"notes.md", "output.log", "requirements.txt", image["path"]} <= names
    run.file("output.log").download(root=str(out)).close()
    assert "printed by the run" in (out / "output.log").read_text()

    # A logged table: its run_table artifact, named as the history value names it (W&B's client ids
    # replaced by this workspace's names), and its media file.
    table = rows[5]["predictions"]
    assert table["_type"] == "table-file" and table["artifact_path"].startswith("wandb-artifact://_id/")
    latest = table["_latest_artifact_path"][len("wandb-artifact://") :].rsplit("/", 1)[0]
    assert wandb.Api().artifact(latest).get("predictions").get_column("pred") == [0.9, 0.4]
    assert rows[5]["page"]["_type"] == "html-file" and "digest" in rows[5]["page"]
    refs = wandb.Api().artifact("wbent/wbproj/refs:latest")
    w_and_b_refs = next(a for a in recorded["artifacts"] if a["name"] == "refs")
    assert refs.digest == w_and_b_refs["digest"]
    assert refs.get("scores").get_column("id") == [1, 2]
    (ref,) = [e for e in refs.manifest if e.ref]
    assert ref.ref.startswith("file://") and ref.ref.endswith("/ref.txt")

    # The artifact: W&B's digests, entry by entry and for the version, and the bytes W&B staged.
    w_and_b = next(a for a in recorded["artifacts"] if a["name"] == "dataset")
    art = wandb.Api().artifact("wbent/wbproj/dataset:best")
    assert art.digest == w_and_b["digest"]
    assert {e.path: e.digest for e in art.manifest} == {e["path"]: e["digest"] for e in w_and_b["manifest"]["contents"]}
    assert (art.type, art.description, art.metadata) == ("dataset", "two files", {"rows": 2})
    assert sorted(art.aliases) == ["best", "latest"]
    assert art.logged_by().id == run_id
    root = Path(art.download(str(any_ws_env / "art")))
    assert (root / "a.txt").read_text() == "hello\n" and (root / "sub/b.bin").read_bytes() == bytes(range(256)) * 20

    samples = run.history(stream="system", pandas=False)
    assert len(samples) == report.system_metrics >= 1 and all(s["_wandb"] for s in samples)
    assert any(k.startswith("system.") for k in samples[0])

    failed = wandb.Api().run(f"wbent/wbproj/{_recorded(folders['failing'])['run'].run_id}")
    assert (failed.state, failed.summary["loss"]) == ("failed", 9.0)


def test_importing_twice_creates_nothing_new(any_ws_env: Path, offline_runs: Path) -> None:
    first = sync_wandb_runs([offline_runs])
    before = _counts()
    again = sync_wandb_runs([*offline_runs.glob("offline-run-*"), offline_runs])  # each folder named twice, too
    assert len(again) == 2
    assert [(r.created, r.history_rows, r.files, r.artifacts) for r in again] == [(False, 0, 0, [])] * 2
    assert _counts() == before
    assert sorted(r.path for r in again) == sorted(r.path for r in first)


def test_entity_project_and_id_overrides(ws_env: Path, offline_runs: Path) -> None:
    folder = _folders(offline_runs)["failing"]
    (report,) = sync_wandb_runs([folder], entity="other", project="moved", run_id="fixed-id")
    assert report.path == "other/moved/fixed-id"
    assert wandb.Api().run("other/moved/fixed-id").state == "failed"
    with pytest.raises(SourceError, match="--id names one run, but 2 run folders"):
        sync_wandb_runs([offline_runs], run_id="x")


def test_a_changed_staged_file_is_refused_naming_the_entry(ws_env: Path, offline_runs: Path) -> None:
    folder = _folders(offline_runs)["offline-run"]
    w_and_b = next(a for a in _recorded(folder)["artifacts"] if a["name"] == "dataset")
    entry = next(e for e in w_and_b["manifest"]["contents"] if e["path"] == "a.txt")
    staged = Path(entry["local_path"])
    original = staged.read_bytes()
    staged.chmod(0o644)
    try:
        staged.write_bytes(b"changed\n")
        with pytest.raises(SourceError, match="entry 'a.txt'.*not the sZRqySSS0jR8YjW00mERhA== W&B recorded"):
            sync_wandb_runs([folder])
        assert not wandb.Api().artifact_exists("wbent/wbproj/dataset:v0")
        staged.unlink()
        with pytest.raises(SourceError, match="entry 'a.txt'.*is gone.*staging"):
            sync_wandb_runs([folder])
    finally:
        staged.write_bytes(original)
    # The file restored, the import completes what the failed ones left: the artifacts after the run_table one
    # (logged before the failure), then the history, which comes after the artifacts it names.
    (report,) = sync_wandb_runs([folder])
    assert (report.created, report.artifacts) == (False, ["wbent/wbproj/dataset:v0", "wbent/wbproj/refs:v0"])
    assert report.history_rows == 6


def test_a_run_whose_process_died_is_skipped_or_crashed_and_the_others_imported(ws_env: Path, offline_runs: Path) -> None:
    (dead,) = (offline_runs.parent / "crashed" / "wandb").glob("offline-run-*")
    reports = sync_wandb_runs([dead, *offline_runs.glob("offline-run-*")])
    assert len(reports) == 3 and all(r.created for r in reports if r.source != str(dead.resolve()))
    (mine,) = [r for r in reports if r.source == str(dead.resolve())]
    if mine.path:  # wandb wrote the run record before the process died: a run without an exit record
        assert wandb.Api().run(mine.path).state == "crashed"
    else:  # the usual case: the log holds only its header
        assert "holds no run record" in mine.skipped[0]


def test_a_log_cut_short_imports_what_came_before_as_a_crashed_run(ws_env: Path, offline_runs: Path, tmp_path: Path) -> None:
    import shutil

    cut = tmp_path / "cut"
    shutil.copytree(_folders(offline_runs)["offline-run"], cut, symlinks=True)
    log = next(cut.glob("run-*.wandb"))
    log.write_bytes(log.read_bytes()[: log.stat().st_size // 3])  # mid-record, as a killed writer leaves it
    (report,) = sync_wandb_runs([cut])
    run = wandb.Api().run(report.path)
    assert run.state == "crashed" and 0 < report.history_rows < 6
    assert [r["_step"] for r in run.history(pandas=False)] == list(range(report.history_rows))


def test_paths_that_are_not_run_folders_are_refused(ws_env: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        sync_wandb_runs([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="holds no W&B run folder"):
        sync_wandb_runs([tmp_path / "empty"])
