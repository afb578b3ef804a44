"""Import TensorBoard event files as a run's history: ``Api().sync_tensorboard(root_dir)`` and
``wandb-dagster sync --tensorboard DIR``, as W&B's.

    >>> from wandb_dagster.sdk.imports import sync_tensorboard
    >>> report = sync_tensorboard("runs/exp1", project="bikes")     # doctest: +SKIP
    >>> report.path                                                   # doctest: +SKIP
    'me/bikes/3f9k2x1q'

Event files are read with TensorBoard's own reader (``tensorboard.backend.event_processing``'s plugin
event accumulator, which also turns the legacy ``simple_value``/``histo``/``image`` summaries that PyTorch's
and TensorFlow 1's writers produce into the tensor form TensorBoard shows), from the optional ``tensorboard``
package (the ``wandb-import`` extra), imported only here.

As W&B's sync: every folder under ``root_dir`` that holds event files is a log folder, and its path below
``root_dir`` prefixes its tags (``train/loss``, ``val/loss``; none for ``root_dir`` itself). Each TensorBoard
step becomes one history row holding every tag logged at that step, in step order: ``_step`` counts the rows
from 0, ``global_step`` is TensorBoard's step, ``_timestamp`` the events' wall time. Scalars are numbers,
histograms ``wandb.Histogram`` values, images ``wandb.Image`` values (a batch of images: W&B's
``images/separated``); other plugins' data (text, PR curves, graphs) are left out and reported. The event
files are kept as the run's files, under their paths below ``root_dir``.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from wandb_dagster.sdk.data_types.base import file_key
from wandb_dagster.sdk.data_types.histogram import Histogram
from wandb_dagster.sdk.data_types.image import Image
from wandb_dagster.sdk.imports._writer import ImportedRun, ImportReport, SourceError, write_run
from wandb_dagster.sdk.workspace import Workspace


def _accumulator() -> tuple[Any, Any]:
    try:
        from tensorboard.backend.event_processing import plugin_event_accumulator
        from tensorboard.util import tensor_util
    except ImportError:
        raise ImportError(
            "importing TensorBoard event files needs the tensorboard package: "
            "pip install 'wandb-dagster[wandb-import]' (or pip install tensorboard)"
        ) from None
    return plugin_event_accumulator, tensor_util


def log_dirs(root_dir: Path) -> list[Path]:
    """The folders under ``root_dir`` (itself included) holding TensorBoard event files, sorted."""
    found = {p.parent for p in root_dir.rglob("*tfevents*") if p.is_file()}
    return sorted(found)


def read_event_files(root_dir: str | os.PathLike[str], *, entity: str, project: str, run_id: str) -> ImportedRun:
    """The run that ``root_dir``'s event files describe (see the module docstring)."""
    accumulator, tensor_util = _accumulator()
    root = Path(root_dir).absolute()
    if not root.is_dir():
        raise SourceError(f"{str(root_dir)!r} is not a folder; pass the folder TensorBoard wrote its logs in")
    dirs = log_dirs(root)
    if not dirs:
        raise SourceError(
            f"{str(root_dir)!r} holds no TensorBoard event files (events.out.tfevents.*); pass the log folder "
            "given to the SummaryWriter"
        )
    steps: dict[int, dict[str, Any]] = defaultdict(dict)
    wall: dict[int, float] = {}
    images: dict[tuple[int, str], list[bytes]] = {}
    skipped: set[str] = set()
    first = float("inf")  # the earliest event: the run's start, from which _runtime counts
    for folder in dirs:
        namespace = folder.relative_to(root).as_posix()
        prefix = "" if namespace == "." else namespace + "/"
        # size_guidance 0: keep every event (the default samples a few per tag, for TensorBoard's charts).
        acc = accumulator.EventAccumulator(str(folder), size_guidance={accumulator.TENSORS: 0})
        acc.Reload()
        for tag in acc.Tags().get("tensors", []):
            plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
            key = prefix + tag
            if plugin not in ("scalars", "histograms", "images"):
                skipped.add(f"tag {key!r}: TensorBoard {plugin or 'tensor'} data (only scalars, histograms "
                            "and images are imported)")  # fmt: skip
                continue
            for event in acc.Tensors(tag):
                array = tensor_util.make_ndarray(event.tensor_proto)
                step = int(event.step)
                wall[step] = max(wall.get(step, 0.0), float(event.wall_time))
                first = min(first, float(event.wall_time))
                if plugin == "scalars":
                    steps[step][key] = _number(array)
                elif plugin == "histograms":
                    steps[step][key] = _histogram(array)
                else:
                    # [width, height, png, png...]: the encoded images of one summary.
                    images[(step, key)] = [bytes(b) for b in array[2:]]
                    steps[step][key] = None
    media: dict[str, bytes] = {}
    for (step, key), pngs in images.items():
        steps[step][key] = _images(key, step, pngs, media)
    history: list[dict[str, Any]] = []
    start = first if wall else None
    summary: dict[str, Any] = {}
    for index, step in enumerate(sorted(steps)):
        runtime = wall[step] - (start or 0.0)
        row = dict(steps[step], global_step=step, _step=index, _timestamp=wall[step], _runtime=runtime)
        history.append(row)
        summary.update(row)  # the summary holds each key's last value, as a run's does
    files = [(p, p.relative_to(root).as_posix()) for d in dirs for p in sorted(d.glob("*tfevents*")) if p.is_file()]
    return ImportedRun(
        entity=entity, project=project, run_id=run_id, display_name=root.name, summary=summary, state="finished",
        created_at=None if start is None else datetime.fromtimestamp(start, tz=timezone.utc),
        finished_at=None if not wall else datetime.fromtimestamp(max(wall.values()), tz=timezone.utc),
        history=history, media=media.__getitem__, files=files, source=str(root), skipped=sorted(skipped),
    )  # fmt: skip


def _number(array: Any) -> Any:
    """A scalar summary's value. A float32 (what TensorBoard stores) becomes the shortest decimal that reads
    back as that float32 (``0.1``, not ``0.10000000149011612``), as TensorBoard itself shows it."""
    value = array.reshape(())[()]
    if array.dtype.kind == "f" and array.dtype.itemsize < 8:
        return float(str(value))
    return value.item()


def _histogram(array: Any) -> dict[str, Any]:
    """TensorBoard's [[left, right, count], ...] buckets as ``wandb.Histogram``'s JSON (counts, edges)."""
    if array.size == 0:
        return Histogram(np_histogram=([], [0.0])).to_json()
    edges = [float(x) for x in array[:, 0]] + [float(array[-1, 1])]
    counts = [int(c) if float(c).is_integer() else float(c) for c in array[:, 2]]
    return Histogram(np_histogram=(counts, edges)).to_json()


def _images(key: str, step: int, pngs: list[bytes], media: dict[str, bytes]) -> dict[str, Any]:
    """W&B's history form of the images logged under ``key`` at ``step``: one ``image-file``, or an
    ``images/separated`` for a batch; ``media`` gets each file's bytes by its path."""
    forms = []
    for data in pngs:
        fmt = "png" if data.startswith(b"\x89PNG") else "jpeg" if data.startswith(b"\xff\xd8") else "gif"
        image = Image._from_bytes(data, fmt, None, (None, None))
        sha = hashlib.sha256(data).hexdigest()
        path = f"{Image._media_dir}/{file_key(key)}_{step}_{sha[:20]}.{fmt}"
        media[path] = data
        forms.append({"_type": "image-file", "path": path, "sha256": sha, "size": len(data), "format": fmt,
                      "width": image.width, "height": image.height})  # fmt: skip
    if len(forms) == 1:
        return forms[0]
    return {
        "_type": "images/separated", "width": forms[0]["width"], "height": forms[0]["height"],
        "format": forms[0]["format"], "count": len(forms), "filenames": [f["path"] for f in forms],
    }  # fmt: skip


def sync_tensorboard(
    root_dir: str | os.PathLike[str],
    run_id: str | None = None,
    project: str | None = None,
    entity: str | None = None,
    *,
    workspace: Workspace | None = None,
) -> ImportReport:
    """Import the event files under ``root_dir`` as run ``run_id`` (a new id when None, as W&B) of
    ``entity/project`` (default: the environment's, as ``wandb.init``). Importing into the same run again
    adds only the steps it does not have."""
    from wandb_dagster.sdk.init_args import new_run_id
    from wandb_dagster.settings import Settings

    ws = workspace or Workspace.default()
    settings = Settings.resolve(entity=entity, project=project)
    data = read_event_files(root_dir, entity=settings.entity, project=settings.project, run_id=run_id or new_run_id())
    return write_run(ws, data)
