"""A run's history as charts need it: the keys to chart, each key downsampled to at most ``points`` points
per view (each point a bucket's mean with its minimum and maximum, as W&B's run page draws), the system
metrics the same way, and the media the history holds. The web app and exported reports read these.

    >>> run = wandb.Api().run("tester/bikes/abc123")                                 # doctest: +SKIP
    >>> chart_keys(run)                                                               # doctest: +SKIP
    ['acc', 'loss']
    >>> view = sampled_history(run, ["loss"], min_step=0, max_step=999, points=500)   # doctest: +SKIP
    >>> view["keys"]["loss"]["y"][:3], view["keys"]["loss"]["min"][:3]                # doctest: +SKIP

The downsampling itself runs in the database (``Store.history_buckets``: one statement per view), so a
run of any length costs one scan of the rows in the viewed step range, never a transfer of every row.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from wandb_dagster.sdk.data_types import media_files
from wandb_dagster.storage.hashing import b64_to_hex, check_hex, new_md5

if TYPE_CHECKING:
    from wandb_dagster.api.objects import Run

# Views of finished runs, newest last (sampled_history); keyed by the run's state and times, so a resumed
# run is read again.
_CACHE: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 64
# W&B's run page draws at most about this many points per series and view.
DEFAULT_POINTS = 1500
MAX_POINTS = 10_000


def chart_keys(run: Run) -> list[str]:
    """The history keys holding numbers, as W&B's default workspace charts them (one chart per key);
    W&B's own ``_step``, ``_runtime`` and ``_timestamp`` are left out."""
    return [k for k in run._ws.store.history_keys(run._record.pk) if not k.startswith("_")]


def _series(points: list[tuple[float, float, float, float]], band: bool = True) -> dict[str, list[float] | None]:
    # band=False: min and max are None (a quick view's points are single values: no band to draw).
    return {
        "x": [p[0] for p in points],
        "y": [p[1] for p in points],
        "min": [p[2] for p in points] if band else None,
        "max": [p[3] for p in points] if band else None,
    }


def sampled_history(
    run: Run,
    keys: Sequence[str] | None = None,
    *,
    min_step: int | None = None,
    max_step: int | None = None,
    points: int = DEFAULT_POINTS,
    quick: bool = False,
) -> dict[str, Any]:
    """``keys`` (default: every key holding numbers, as :func:`chart_keys`) of ``run`` between ``min_step``
    and ``max_step`` (inclusive; None: the first / last step), each as ``{"x": steps, "y": means, "min":
    [...], "max": [...]}`` of at most ``points`` buckets of steps; with no more steps than ``points`` in the
    range, every logged value as it is. Returns ``{"run", "min_step", "max_step", "points", "keys": {key:
    series}}``, the steps being those found in the range (None when there is none), and ``"exact"``.

    ``quick=True``: the values of ``points`` evenly spaced rows instead (``min``/``max`` None; a key logged in
    few rows may be missing), read without parsing the other rows: a first drawing of a long run, while the
    exact view is computed. ``"exact"`` says whether it took every row (then it is the exact view).

    A run that is not running any more does not change: its views are kept (a few dozen, per process), so
    a page shown again or zoomed back out costs no query."""
    if not isinstance(points, int) or isinstance(points, bool) or not 1 <= points <= MAX_POINTS:
        raise ValueError(f"points={points!r} is invalid; give an integer from 1 to {MAX_POINTS}")
    if min_step is not None and max_step is not None and min_step > max_step:
        raise ValueError(f"min_step={min_step} is above max_step={max_step}; give min_step <= max_step")
    chosen = None if keys is None else tuple(keys)
    record = run._record
    cache_key = None
    if record.state != "running":
        cache_key = (id(run._ws.store), record.pk, record.state, record.heartbeat_at, record.finished_at,
                     chosen, min_step, max_step, points)  # fmt: skip
        with _CACHE_LOCK:
            if cache_key in _CACHE:  # the exact view, kept: better than a quick one
                _CACHE.move_to_end(cache_key)
                return _CACHE[cache_key]
    if quick:
        found, buckets, exact = run._ws.store.history_sample(
            record.pk, chosen, min_step=min_step, max_step=max_step, rows=points
        )
    else:
        exact = True
        found, buckets = run._ws.store.history_buckets(
            record.pk, chosen, min_step=min_step, max_step=max_step, buckets=points
        )
    names = sorted(buckets) if chosen is None else chosen
    view = {
        "run": run.id,
        "min_step": None if found is None else found[0],
        "max_step": None if found is None else found[1],
        "points": points,
        "exact": exact,
        "keys": {key: _series(buckets.get(key, []), band=exact) for key in names},
    }
    if not exact:
        return view
    if cache_key is not None:
        with _CACHE_LOCK:
            _CACHE[cache_key] = view
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    return view


def system_history(run: Run, points: int = DEFAULT_POINTS) -> dict[str, Any]:
    """The run's system metrics (``system.cpu``, ``system.memory_percent``...), each downsampled as
    :func:`sampled_history` along ``_runtime`` (seconds since the run started)."""
    buckets = run._ws.store.system_metric_buckets(run._record.pk, buckets=points)
    return {"run": run.id, "keys": {key: _series(found) for key, found in sorted(buckets.items())}}


def media_rows(run: Run, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` history rows holding media values, newest first, then the run's summary when it
    holds any (its ``_step`` given as None): what :func:`media_items` and :func:`media_file_list` read."""
    rows = list(run._ws.store.history_media(run._record.pk, limit))
    summary = run.summary_metrics
    if any(isinstance(v, dict) and "_type" in v for v in summary.values()):
        rows.append({**summary, "_step": None})
    return rows


def media_items(run: Run, limit: int = 100, rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The images of :func:`media_rows` (newest step first, the summary's last): ``{"key", "step", "name",
    "hex", "caption", "width", "height"}`` each, an image once per key. Other media (tables, HTML...) are in
    :func:`media_file_list`."""
    found: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for row in media_rows(run, limit) if rows is None else rows:
        step = row.get("_step")
        for key, value in sorted(row.items()):
            for item in _images(value):
                if (key, item["hex"]) not in seen:
                    seen.add((key, item["hex"]))
                    found.append({"key": key, "step": step, **item})
    return found


def media_file_list(run: Run, limit: int = 100, rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every media file :func:`media_rows` name (images, tables, HTML...), as ``run.files()`` lists them:
    ``{"name", "hex", "size"}``, each name once."""
    found: dict[str, dict[str, Any]] = {}
    for row in media_rows(run, limit) if rows is None else rows:
        for value in row.values():
            for name, digest, size in media_files(value):
                try:
                    found.setdefault(str(name), {"name": str(name), "hex": b64_to_hex(digest), "size": size})
                except (TypeError, ValueError):
                    continue  # not W&B's form: listed by nothing rather than failing the page
    return list(found.values())


def _images(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, dict):
        return []
    kind = value.get("_type")
    try:
        if kind == "image-file" and isinstance(value.get("digest"), str):
            return [_image(value["path"], value["digest"], value)]
        if kind == "images/separated":
            names, digests = value.get("filenames") or [], value.get("digests") or []
            captions = value.get("captions") or [None] * len(names)
            return [
                _image(n, d, {**value, "caption": c}) for n, d, c in zip(names, digests, captions, strict=False)
            ]
    except (TypeError, ValueError):
        return []  # a value that is not W&B's form shows no image rather than failing the page
    return []


def _image(name: Any, digest: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": str(name),
        "hex": b64_to_hex(digest),
        "caption": value.get("caption"),
        "width": value.get("width"),
        "height": value.get("height"),
    }


def read_run_blob(run: Run, hexdigest: str, max_bytes: int) -> bytes:
    """The bytes of blob ``hexdigest`` when the run names it (a media value or one of its files), checked
    against the digest. LookupError: the run names no such blob, or it is missing from the storage;
    ValueError: the stored bytes do not match (damaged), or it is larger than ``max_bytes``."""
    hexdigest = check_hex(hexdigest)
    if not run._ws.store.run_names_blob(run._record.pk, hexdigest):
        raise LookupError(f"run {'/'.join(run.path)} names no file with MD5 {hexdigest}")
    try:
        with run._ws.blobs.open(hexdigest) as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise LookupError(f"the blob {hexdigest} of run {'/'.join(run.path)} is missing from the storage") from None
    if len(data) > max_bytes:
        raise ValueError(f"the blob {hexdigest} is larger than {max_bytes} bytes")
    if new_md5(data).hexdigest() != hexdigest:
        raise ValueError(f"the blob {hexdigest} of run {'/'.join(run.path)} is damaged (its MD5 differs)")
    return data


def saved_files(run: Run) -> list[Any]:
    """The files the run saved (``run.save``, the console's ``output.log``): records with ``name``,
    ``digest`` (MD5 hex), ``size`` and ``updated_at``, by name; without scanning the history (as
    ``run.files()`` does for media)."""
    return list(run._ws.store.run_files(run._record.pk))


def blobs_present(run: Run, hexdigests: set[str]) -> set[str]:
    """Those of ``hexdigests`` that the workspace's blob storage holds (one batched check)."""
    return set(run._ws.blobs.exists_many(sorted(hexdigests))) if hexdigests else set()
