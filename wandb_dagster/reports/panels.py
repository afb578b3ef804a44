"""The panels of a :class:`~wandb_dagster.reports.PanelGrid`, as W&B's Report API has them.

``LinePlot`` draws history keys against a step or time axis (in the browser, with uPlot); the others are
drawn on the server from the runs' config and summary: ``BarPlot``, ``ScalarChart``, ``ScatterPlot``,
``ParallelCoordinatesPlot``, ``RunComparer`` (a table) and ``MediaBrowser`` (logged images).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from wandb_dagster.reports._model import choice, model, number_range, optional_bool
from wandb_dagster.reports.metrics import Config, Metric, MetricType, SummaryMetric, check_metric

GROUP_AGG = ("mean", "min", "max", "median", "sum", "samples")
GROUP_AREA = ("minmax", "stddev", "stderr", "none", "samples")
SMOOTHING = ("exponentialTimeWeighted", "exponential", "gaussian", "average", "none")
FONT_SIZES = ("small", "medium", "large", "auto")
# W&B's names of the x axes -> the history key.
X_AXES = {
    "Step": "_step",
    "_step": "_step",
    "Wall Time": "_timestamp",
    "WallTime": "_timestamp",
    "_timestamp": "_timestamp",
    "Relative Time (Process)": "_runtime",
    "RelativeTime(Process)": "_runtime",
    "_runtime": "_runtime",
}


class Panel:
    """Marks report panels (the classes below)."""


def _open_range() -> tuple[float | None, float | None]:
    return (None, None)


def _optional_title(owner: str, obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{owner}({name}={value!r}) is invalid; give a string or None")


def _groupby(owner: str, value: Any) -> None:
    if value is not None and not isinstance(value, (str, Config, Metric)):
        raise ValueError(
            f"{owner}(groupby={value!r}) is invalid; give a key such as 'group', 'config.lr' or Config('lr')"
        )


@model
class LinePlot(Panel):
    """History keys ``y`` against ``x`` (``"Step"``, ``"Wall Time"``, ``"Relative Time (Process)"`` or a
    history key), one line per run (per group with ``groupby``: the mean, with the min-max band).

    ``smoothing`` and ``range`` are short for W&B's ``smoothing_factor`` and ``range_y``.

    >>> LinePlot(title="Train Loss", x="Step", y=["loss"], title_x="Step", title_y="Loss")   # doctest: +SKIP
    """

    title: str | None = None
    x: str | Metric | None = "Step"
    y: list[MetricType] = dataclasses.field(default_factory=list)
    range_x: tuple[float | None, float | None] = dataclasses.field(default_factory=_open_range)
    range_y: tuple[float | None, float | None] = dataclasses.field(default_factory=_open_range)
    log_x: bool | None = None
    log_y: bool | None = None
    title_x: str | None = None
    title_y: str | None = None
    ignore_outliers: bool | None = None
    groupby: str | Config | Metric | None = None
    groupby_aggfunc: str | None = None
    groupby_rangefunc: str | None = None
    smoothing_factor: float | None = None
    smoothing_type: str | None = None
    smoothing_show_original: bool | None = None
    max_runs_to_show: int | None = None
    legend_template: str | None = None
    font_size: str | None = None
    smoothing: float | None = None
    range: tuple[float | None, float | None] | None = None

    def __post_init__(self) -> None:
        _optional_title("LinePlot", self, "title", "title_x", "title_y", "legend_template")
        if self.x is None:
            self.x = "Step"
        if isinstance(self.x, Metric):
            self.x = self.x.name
        if not isinstance(self.x, str) or not self.x:
            raise ValueError(f"LinePlot(x={self.x!r}) is invalid; give 'Step', 'Wall Time' or a history key")
        if isinstance(self.y, (str, Metric)):
            self.y = [self.y]
        if not isinstance(self.y, list):
            raise ValueError(f"LinePlot(y={self.y!r}) is invalid; give a list of history keys, e.g. ['loss']")
        for key in self.y:
            if isinstance(key, (Config, SummaryMetric)):
                raise ValueError(
                    f"LinePlot(y=[{key!r}]) is invalid; a line plot draws history keys: give "
                    "'loss' or Metric('loss'); use BarPlot or ScalarChart for config and summary"
                )
            check_metric("LinePlot", "y", key)
        if self.smoothing is not None:
            if self.smoothing_factor is not None and self.smoothing_factor != self.smoothing:
                raise ValueError("LinePlot: give smoothing or smoothing_factor, not both")
            self.smoothing_factor = self.smoothing
        if self.smoothing_factor is not None:
            ok = isinstance(self.smoothing_factor, (int, float)) and not isinstance(self.smoothing_factor, bool)
            if not ok or not 0 <= self.smoothing_factor <= 1:
                raise ValueError(
                    f"LinePlot(smoothing_factor={self.smoothing_factor!r}) is invalid; give a number from 0 (none) to 1"
                )
        if self.range is not None:
            self.range_y = self.range
        self.range_x = number_range("LinePlot", "range_x", self.range_x)
        self.range_y = number_range("LinePlot", "range_y", self.range_y)
        if self.range is not None:
            self.range = self.range_y
        for name in ("log_x", "log_y", "ignore_outliers", "smoothing_show_original"):
            optional_bool("LinePlot", name, getattr(self, name))
        _groupby("LinePlot", self.groupby)
        _choices(self, "LinePlot")
        if self.smoothing_type is not None:
            choice("LinePlot", "smoothing_type", self.smoothing_type, SMOOTHING)
        if self.max_runs_to_show is not None and (
            not isinstance(self.max_runs_to_show, int) or self.max_runs_to_show < 1
        ):
            raise ValueError(
                f"LinePlot(max_runs_to_show={self.max_runs_to_show!r}) is invalid; give a positive integer"
            )

    @property
    def x_key(self) -> str:
        x = self.x.name if isinstance(self.x, Metric) else self.x or "Step"
        return X_AXES.get(x, x)


def _choices(obj: Any, owner: str) -> None:
    if getattr(obj, "groupby_aggfunc", None) is not None:
        choice(owner, "groupby_aggfunc", obj.groupby_aggfunc, GROUP_AGG)
    if getattr(obj, "groupby_rangefunc", None) is not None:
        choice(owner, "groupby_rangefunc", obj.groupby_rangefunc, GROUP_AREA)
    if getattr(obj, "font_size", None) is not None:
        choice(owner, "font_size", obj.font_size, FONT_SIZES)


@model
class BarPlot(Panel):
    """One bar per run (per group with ``groupby``) for each of ``metrics`` (summary or config values)."""

    title: str | None = None
    metrics: list[MetricType] = dataclasses.field(default_factory=list)
    orientation: str = "h"
    range_x: tuple[float | None, float | None] = dataclasses.field(default_factory=_open_range)
    title_x: str | None = None
    title_y: str | None = None
    groupby: str | Config | Metric | None = None
    groupby_aggfunc: str | None = None
    groupby_rangefunc: str | None = None
    max_runs_to_show: int | None = None
    font_size: str | None = None

    def __post_init__(self) -> None:
        _optional_title("BarPlot", self, "title", "title_x", "title_y")
        if isinstance(self.metrics, (str, Metric, Config, SummaryMetric)):
            self.metrics = [self.metrics]
        if not isinstance(self.metrics, list):
            raise ValueError(f"BarPlot(metrics={self.metrics!r}) is invalid; give a list, e.g. ['accuracy']")
        for m in self.metrics:
            check_metric("BarPlot", "metrics", m)
        choice("BarPlot", "orientation", self.orientation, ("v", "h"))
        self.range_x = number_range("BarPlot", "range_x", self.range_x)
        _groupby("BarPlot", self.groupby)
        _choices(self, "BarPlot")


@model
class ScalarChart(Panel):
    """One number: ``metric`` of the run set's runs (their mean, or ``groupby_aggfunc``, when there are several)."""

    title: str | None = None
    metric: MetricType = ""
    groupby_aggfunc: str | None = None
    groupby_rangefunc: str | None = None
    font_size: str | None = None

    def __post_init__(self) -> None:
        _optional_title("ScalarChart", self, "title")
        check_metric("ScalarChart", "metric", self.metric)
        _choices(self, "ScalarChart")


@model
class ScatterPlot(Panel):
    """One point per run: ``x`` against ``y`` (summary or config values)."""

    title: str | None = None
    x: MetricType | None = None
    y: MetricType | None = None
    z: MetricType | None = None
    range_x: tuple[float | None, float | None] = dataclasses.field(default_factory=_open_range)
    range_y: tuple[float | None, float | None] = dataclasses.field(default_factory=_open_range)
    log_x: bool | None = None
    log_y: bool | None = None
    font_size: str | None = None

    def __post_init__(self) -> None:
        _optional_title("ScatterPlot", self, "title")
        check_metric("ScatterPlot", "x", self.x)
        check_metric("ScatterPlot", "y", self.y)
        check_metric("ScatterPlot", "z", self.z, required=False)
        self.range_x = number_range("ScatterPlot", "range_x", self.range_x)
        self.range_y = number_range("ScatterPlot", "range_y", self.range_y)
        optional_bool("ScatterPlot", "log_x", self.log_x)
        optional_bool("ScatterPlot", "log_y", self.log_y)
        _choices(self, "ScatterPlot")


@model
class ParallelCoordinatesPlotColumn:
    """An axis of a parallel coordinates plot: a config or summary key."""

    metric: MetricType
    display_name: str | None = None
    inverted: bool | None = None
    log: bool | None = None

    def __post_init__(self) -> None:
        check_metric("ParallelCoordinatesPlotColumn", "metric", self.metric)
        _optional_title("ParallelCoordinatesPlotColumn", self, "display_name")
        optional_bool("ParallelCoordinatesPlotColumn", "inverted", self.inverted)
        optional_bool("ParallelCoordinatesPlotColumn", "log", self.log)


@model
class ParallelCoordinatesPlot(Panel):
    """One line per run across ``columns`` (config and summary keys), e.g. hyperparameters and the result."""

    columns: list[ParallelCoordinatesPlotColumn] = dataclasses.field(default_factory=list)
    title: str | None = None
    font_size: str | None = None

    def __post_init__(self) -> None:
        _optional_title("ParallelCoordinatesPlot", self, "title")
        if not isinstance(self.columns, list):
            raise ValueError(f"ParallelCoordinatesPlot(columns={self.columns!r}) is invalid; give a list")
        self.columns = [
            c if isinstance(c, ParallelCoordinatesPlotColumn) else ParallelCoordinatesPlotColumn(c)
            for c in self.columns
        ]
        _choices(self, "ParallelCoordinatesPlot")


@model
class RunComparer(Panel):
    """The runs' config and summary side by side; ``diff_only=True`` keeps the keys whose values differ."""

    diff_only: Any = None

    def __post_init__(self) -> None:
        choice("RunComparer", "diff_only", self.diff_only, (None, True, False, "split"))


@model
class MediaBrowser(Panel):
    """The images the runs logged under ``media_keys`` (the last one of each run, or every step in a gallery)."""

    title: str | None = None
    num_columns: int | None = None
    media_keys: list[str] = dataclasses.field(default_factory=list)
    mode: str | None = None
    gallery_axis: str | None = None
    grid_x_axis: str | None = None
    grid_y_axis: str | None = None

    def __post_init__(self) -> None:
        _optional_title("MediaBrowser", self, "title")
        if isinstance(self.media_keys, str):
            self.media_keys = [self.media_keys]
        if not isinstance(self.media_keys, list) or not all(isinstance(k, str) and k for k in self.media_keys):
            raise ValueError(
                f"MediaBrowser(media_keys={self.media_keys!r}) is invalid; give the keys the images "
                "were logged under, e.g. ['samples']"
            )
        if self.num_columns is not None and (not isinstance(self.num_columns, int) or self.num_columns < 1):
            raise ValueError(f"MediaBrowser(num_columns={self.num_columns!r}) is invalid; give a positive integer")
        choice("MediaBrowser", "mode", self.mode, (None, "gallery", "grid"))
        for name in ("gallery_axis", "grid_x_axis", "grid_y_axis"):
            choice("MediaBrowser", name, getattr(self, name), (None, "step", "index", "run"))
        if self.mode is None and self.gallery_axis is not None and (self.grid_x_axis or self.grid_y_axis):
            raise ValueError(
                "MediaBrowser: give mode='gallery' or mode='grid' when both gallery_axis and grid axes are set"
            )
