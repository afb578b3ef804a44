"""The data a report shows, read through ``Api``: the runs of each run set, the history series of line plots
(downsampled), and the config and summary values of the other panels.

Series stay small whatever the run's length: a series of more than :data:`MAX_POINTS` points is cut into that
many buckets, each drawn at its mean and keeping its minimum and maximum (as W&B's charts do), so a spike
survives as the band around the line. Against ``_step`` (the usual x axis) a run's series comes from the
database already bucketed (``api/history.py``, as the run page's); other x axes and grouped lines are
bucketed here.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any, TypeGuard

from wandb_dagster.reports.metrics import label, run_value
from wandb_dagster.reports.panels import LinePlot
from wandb_dagster.reports.runset import Runset, group_value

MAX_POINTS = 1500
MAX_RUNS = 500  # runs read per run set
DEFAULT_LINE_RUNS = 10  # W&B's line plots show 10 runs unless max_runs_to_show says otherwise


def is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def runset_runs(api: Any, runset: Runset, entity: str, project: str) -> list[Any]:
    """The Api runs of ``runset`` (its own entity/project, else the report's), in its order."""
    runs = api.runs(
        f"{runset.entity or entity}/{runset.project or project}",
        filters=runset.api_filters(),
        order=runset.api_order(),
        per_page=min(MAX_RUNS, 200),
    )
    out = []
    for run in runs:
        out.append(run)
        if len(out) >= MAX_RUNS:
            break
    return out


def downsample(
    xs: Sequence[float],
    ys: Sequence[float],
    mins: Sequence[float] | None = None,
    maxs: Sequence[float] | None = None,
    limit: int = MAX_POINTS,
) -> dict[str, Any]:
    """``{x, y, min, max}`` with at most ``limit`` points: buckets of consecutive points, each at its first x,
    its mean y, and the smallest and largest y (or given min/max) in it. ``min``/``max`` are None when the
    series was short enough and had none."""
    n = len(xs)
    if n <= limit:
        return {
            "x": list(xs),
            "y": list(ys),
            "min": None if mins is None else list(mins),
            "max": None if maxs is None else list(maxs),
        }
    size = math.ceil(n / limit)
    out: dict[str, list[float]] = {"x": [], "y": [], "min": [], "max": []}
    for start in range(0, n, size):
        chunk = slice(start, min(start + size, n))
        bucket = ys[chunk]
        out["x"].append(xs[start])
        out["y"].append(sum(bucket) / len(bucket))
        out["min"].append(min(mins[chunk] if mins is not None else bucket))
        out["max"].append(max(maxs[chunk] if maxs is not None else bucket))
    return dict(out)


class History:
    """History rows read once per run for the whole report; with ``x_range`` (lo, hi), :meth:`points` keeps
    only the points whose x is in it (a zoomed view, downsampled again at the finer resolution)."""

    def __init__(self, x_range: tuple[float | None, float | None] | None = None) -> None:
        self._rows: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self.x_range = x_range

    def rows(self, run: Any) -> list[dict[str, Any]]:
        key = (run.entity, run.project, run.id)
        if key not in self._rows:
            self._rows[key] = list(run.scan_history())
        return self._rows[key]

    def points(self, run: Any, x_key: str, y_key: str) -> tuple[list[float], list[float]]:
        xs, ys = [], []
        for row in self.rows(run):
            x, y = row.get(x_key), row.get(y_key)
            if is_number(x) and is_number(y) and self._in_range(x):
                xs.append(float(x))
                ys.append(float(y))
        if x_key != "_step" and any(b < a for a, b in zip(xs, xs[1:], strict=False)):
            order = sorted(range(len(xs)), key=xs.__getitem__)
            xs, ys = [xs[i] for i in order], [ys[i] for i in order]
        return xs, ys


    def step_series(self, run: Any, key: str) -> dict[str, Any] | None:
        """``key`` of ``run`` against ``_step`` (within ``x_range``), downsampled in the database to at most
        :data:`MAX_POINTS` buckets with their extremes (api/history.py), so a long run's rows are not all read
        here. None when the run has no number under ``key`` there."""
        from wandb_dagster.api.history import sampled_history

        lo, hi = self.x_range or (None, None)
        min_step = None if lo is None else math.ceil(lo)
        max_step = None if hi is None else math.floor(hi)
        if min_step is not None and max_step is not None and min_step > max_step:
            return None
        view = sampled_history(run, [key], min_step=min_step, max_step=max_step, points=MAX_POINTS)
        series = view["keys"].get(key)
        if not series or not series["x"]:
            return None
        if series["min"] is not None and series["min"] == series["y"] == series["max"]:
            series = {**series, "min": None, "max": None}  # every point as logged: no band to draw
        return {"x": series["x"], "y": series["y"], "min": series["min"], "max": series["max"]}

    def _in_range(self, x: float) -> bool:
        if self.x_range is None:
            return True
        lo, hi = self.x_range
        return (lo is None or x >= lo) and (hi is None or x <= hi)


def run_label(run: Any) -> str:
    return run.display_name or run.id


def _aggregate(values: list[float], how: str | None) -> float:
    how = how or "mean"
    if how == "min":
        return min(values)
    if how == "max":
        return max(values)
    if how == "median":
        return float(statistics.median(values))
    if how == "sum":
        return float(sum(values))
    return sum(values) / len(values)


def groups(runs: list[Any], keys: list[str]) -> list[tuple[str, list[Any]]]:
    """Runs grouped by the values of ``keys``, in first-seen order, labelled ``key: value``."""
    found: dict[tuple[str, ...], list[Any]] = {}
    for run in runs:
        found.setdefault(tuple(str(group_value(run, k)) for k in keys), []).append(run)
    return [
        (", ".join(f"{k}: {v}" for k, v in zip(keys, values, strict=False)), members)
        for values, members in found.items()
    ]


def line_spec(panel: LinePlot, runsets: list[tuple[Runset, list[Any]]], history: History) -> dict[str, Any]:
    """The spec of ``WDCharts.line`` for ``panel`` over the runs of ``runsets`` (see static/charts.js)."""
    x_key = panel.x_key
    y_keys = [label(k) for k in panel.y]
    limit = panel.max_runs_to_show or DEFAULT_LINE_RUNS
    series: list[dict[str, Any]] = []
    several_sets = len(runsets) > 1
    for runset, runs in runsets:
        prefix = f"{runset.name}: " if several_sets else ""
        keys = list(runset.groupby) + ([label(panel.groupby)] if panel.groupby is not None else [])
        for y_key in y_keys:
            suffix = f" {y_key}" if len(y_keys) > 1 else ""
            if keys:
                for name, members in groups(runs, keys)[:limit]:
                    grouped = _group_series(panel, members[:MAX_RUNS], x_key, y_key, history)
                    if grouped is not None:
                        series.append({"name": prefix + name + suffix, **grouped})
                continue
            for run in runs[:limit]:
                if x_key == "_step":
                    found = history.step_series(run, y_key)
                else:
                    xs, ys = history.points(run, x_key, y_key)
                    found = downsample(xs, ys) if xs else None
                if found is not None:
                    series.append({"name": prefix + run_label(run) + suffix, "run": run.id, **found})
    lo, hi = panel.range_y
    return {
        "title": panel.title if panel.title is not None else ", ".join(y_keys),
        "x_label": panel.title_x if panel.title_x is not None else label(panel.x),
        "y_label": panel.title_y if panel.title_y is not None else ", ".join(y_keys),
        "log_x": bool(panel.log_x),
        "log_y": bool(panel.log_y),
        "range": None if lo is None and hi is None else [lo, hi],
        "smoothing": float(panel.smoothing_factor or 0.0),
        "series": series,
    }


def _group_series(panel: LinePlot, runs: list[Any], x_key: str, y_key: str, history: History) -> dict[str, Any] | None:
    at: dict[float, list[float]] = {}
    for run in runs:
        for x, y in zip(*history.points(run, x_key, y_key), strict=False):
            at.setdefault(x, []).append(y)
    if not at:
        return None
    xs = sorted(at)
    ys = [_aggregate(at[x], panel.groupby_aggfunc) for x in xs]
    area = panel.groupby_rangefunc or "minmax"
    if area == "none":
        return downsample(xs, ys)
    if area == "minmax":
        lows, highs = [min(at[x]) for x in xs], [max(at[x]) for x in xs]
    else:
        spread = [statistics.pstdev(at[x]) / (math.sqrt(len(at[x])) if area == "stderr" else 1.0) for x in xs]
        lows, highs = (
            [y - s for y, s in zip(ys, spread, strict=False)],
            [y + s for y, s in zip(ys, spread, strict=False)],
        )
    return downsample(xs, ys, lows, highs)


def values(runs: list[Any], metric: Any) -> list[tuple[Any, Any]]:
    """``(run, value)`` of ``metric`` for each run that has one."""
    out = []
    for run in runs:
        value = run_value(run, metric)
        if value is not None:
            out.append((run, value))
    return out


def aggregate(values: list[float], how: str | None) -> float:
    return _aggregate(values, how)
