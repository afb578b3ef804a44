"""``Api().sync_tensorboard`` (seed 001): TensorBoard event files written in the test by TensorBoard's own
writers (``tensorboard.summary.Writer`` for scalars, the package's ``EventFileWriter`` for histograms and
images in the legacy form PyTorch's SummaryWriter writes and in TensorBoard's tensor form), imported as a
run's history; SQLite and PostgreSQL."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

import wandb_dagster as wandb
from wandb_dagster.sdk.imports import SourceError


def _png(shape: tuple[int, int], value: int) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(np.full((*shape, 3), value, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _write_logs(root: Path) -> dict[str, object]:
    """``root/train`` (scalars) and ``root/val`` (scalars, histograms, images), steps 0, 10, 20."""
    import tensorboard.summary as tb_summary
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2
    from tensorboard.plugins.histogram import summary_v2 as histogram_v2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = tb_summary.Writer(str(root / "train"))
    for i, step in enumerate((0, 10, 20)):
        writer.add_scalar("loss", 1.0 / (i + 1), step, wall_time=1_700_000_000 + i)
    writer.close()
    pngs = [_png((4, 5), 10 * i) for i in range(3)]
    events = EventFileWriter(str(root / "val"))
    for i, step in enumerate((0, 10, 20)):
        summary = histogram_v2.histogram_pb("weights", np.arange(10.0) + i, buckets=5)
        summary.value.add(tag="acc", simple_value=0.5 + i / 10)
        summary.value.add(tag="legacy_histogram", histo=summary_pb2.HistogramProto(
            min=0, max=2, num=3, sum=3, sum_squares=5, bucket_limit=[1.0, 2.0], bucket=[1.0, 2.0]))  # fmt: skip
        summary.value.add(tag="sample", image=summary_pb2.Summary.Image(
            height=4, width=5, colorspace=3, encoded_image_string=pngs[i]))  # fmt: skip
        summary.value.add(tag="note", metadata=summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text")),
            tensor=tensor_pb2.TensorProto(dtype=7, string_val=[b"hi"]))  # fmt: skip
        events.add_event(event_pb2.Event(wall_time=1_700_000_000.5 + i, step=step, summary=summary))
    events.close()
    return {"pngs": pngs}


def test_sync_tensorboard_makes_the_history_with_scalars_histograms_and_images(any_ws_env: Path) -> None:
    logs = any_ws_env / "logs"
    written = _write_logs(logs)
    api = wandb.Api()
    run = api.sync_tensorboard(str(logs), run_id="tb-run", project="tb")
    assert (run.path, run.state, run.name) == (["tester", "tb", "tb-run"], "finished", "logs")
    assert run.created_at.startswith("2023-11-14T22:13:20")
    rows = run.history(pandas=False)
    assert [(r["_step"], r["global_step"]) for r in rows] == [(0, 0), (1, 10), (2, 20)]
    assert [r["train/loss"] for r in rows] == [1.0, 0.5, 0.33333334]  # float32, as TensorBoard shows it
    assert [r["val/acc"] for r in rows] == [0.5, 0.6, 0.7]
    assert [r["_timestamp"] for r in rows] == [1_700_000_000.5, 1_700_000_001.5, 1_700_000_002.5]
    assert rows[2]["_runtime"] == 2.5

    hist = rows[1]["val/weights"]
    assert hist["_type"] == "histogram" and sum(hist["values"]) == 10 and len(hist["bins"]) == 6
    assert hist["bins"][0] == 1.0 and hist["bins"][-1] == 10.0
    assert rows[0]["val/legacy_histogram"] == {"_type": "histogram", "values": [1, 2], "bins": [0.0, 1.0, 2.0]}

    image = rows[2]["val/sample"]
    assert (image["_type"], image["format"], image["width"], image["height"]) == ("image-file", "png", 5, 4)
    assert image["path"].startswith("media/images/val/sample_20_")
    out = any_ws_env / "out"
    run.file(image["path"]).download(root=str(out)).close()
    assert (out / image["path"]).read_bytes() == written["pngs"][2]  # type: ignore[index]
    assert "val/note" not in rows[0]  # text summaries are not imported

    assert run.summary["train/loss"] == 0.33333334 and run.summary["val/sample"]["digest"] == image["digest"]
    files = {f.name for f in run.files()}
    assert {n for n in files if "tfevents" in n} == {
        f"{d}/{p.name}" for d in ("train", "val") for p in (logs / d).glob("*tfevents*")
    }


def test_syncing_into_the_same_run_again_adds_nothing_and_no_id_makes_a_new_run(any_ws_env: Path) -> None:
    from wandb_dagster.sdk.imports import sync_tensorboard
    from wandb_dagster.sdk.workspace import Workspace

    logs = any_ws_env / "logs"
    _write_logs(logs)
    first = sync_tensorboard(logs, run_id="same", project="tb")
    assert (first.created, first.history_rows, first.files) == (True, 3, 2)
    assert first.skipped == ["tag 'val/note': TensorBoard text data (only scalars, histograms and images are imported)"]
    store = Workspace.default().store
    before = (store.counts(), store.events_head(), sorted(Workspace.default().blobs.iter_hexes()))
    again = sync_tensorboard(logs, run_id="same", project="tb")
    assert (again.created, again.history_rows, again.files) == (False, 0, 0)
    assert (store.counts(), store.events_head(), sorted(Workspace.default().blobs.iter_hexes())) == before

    fresh = wandb.Api().sync_tensorboard(str(logs / "train"), project="tb")
    assert fresh.id != "same" and [r["loss"] for r in fresh.history(pandas=False)] == [1.0, 0.5, 0.33333334]


def test_a_folder_without_event_files_is_refused(ws_env: Path) -> None:
    with pytest.raises(SourceError, match="holds no TensorBoard event files"):
        wandb.Api().sync_tensorboard(str(ws_env))
    with pytest.raises(SourceError, match="is not a folder"):
        wandb.Api().sync_tensorboard(str(ws_env / "missing"))
