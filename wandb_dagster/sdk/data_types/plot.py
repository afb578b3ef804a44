"""``wandb.plot``: W&B's preset custom charts. Each returns a :class:`CustomChart` wrapping a Table; log it
with ``run.log({"key": chart})`` (see :mod:`.custom_chart` for what is recorded).

    >>> import wandb_dagster as wandb
    >>> table = wandb.Table(columns=["step", "loss"], data=[[0, 1.0], [1, 0.5]])
    >>> chart = wandb.plot.line(table, "step", "loss", title="Loss")
    >>> chart.spec.spec_name, chart.spec.fields
    ('wandb/line/v0', {'x': 'step', 'y': 'loss', 'stroke': None})
    >>> wandb.plot.confusion_matrix(y_true=[0, 1, 1], preds=[0, 1, 0], class_names=["no", "yes"]).table.data
    [['no', 'no', 1.0], ['no', 'yes', 0.0], ['yes', 'no', 1.0], ['yes', 'yes', 1.0]]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from wandb_dagster.sdk.data_types.custom_chart import CustomChart, plot_table
from wandb_dagster.sdk.data_types.table import Table

__all__ = ["bar", "confusion_matrix", "histogram", "line", "line_series", "plot_table", "scatter"]


def line(
    table: Table, x: str, y: str, stroke: str | None = None, title: str = "", split_table: bool = False
) -> CustomChart:
    """A line chart of column ``y`` against ``x`` (one line per value of ``stroke``)."""
    return plot_table("wandb/line/v0", table, {"x": x, "y": y, "stroke": stroke}, {"title": title}, split_table)


def scatter(table: Table, x: str, y: str, title: str = "", split_table: bool = False) -> CustomChart:
    """A scatter plot of column ``y`` against ``x``."""
    return plot_table("wandb/scatter/v0", table, {"x": x, "y": y}, {"title": title}, split_table)


def bar(table: Table, label: str, value: str, title: str = "", split_table: bool = False) -> CustomChart:
    """A bar chart: one bar per ``label``, of height ``value``."""
    return plot_table("wandb/bar/v0", table, {"label": label, "value": value}, {"title": title}, split_table)


def histogram(table: Table, value: str, title: str = "", split_table: bool = False) -> CustomChart:
    """A histogram of column ``value``."""
    return plot_table("wandb/histogram/v0", table, {"value": value}, {"title": title}, split_table)


def line_series(
    xs: Any,
    ys: Iterable[Iterable[Any]],
    keys: Iterable[str] | None = None,
    title: str = "",
    xname: str = "x",
    split_table: bool = False,
) -> CustomChart:
    """Several lines on one chart: ``ys`` holds one series each, over the shared ``xs`` or one x series
    each; ``keys`` names the lines (``line_0``, ``line_1``... by default)."""
    y_series = [list(y) for y in ys]
    x_list = list(xs)
    if x_list and (isinstance(x_list[0], (str, bytes)) or not isinstance(x_list[0], Iterable)):
        x_series = [x_list] * len(y_series)
    else:
        x_series = [list(x) for x in x_list]
    if len(x_series) != len(y_series):
        raise ValueError(f"line_series(): {len(x_series)} x series for {len(y_series)} y series; give one each.")
    names = [f"line_{i}" for i in range(len(y_series))] if keys is None else list(keys)
    if len(names) != len(y_series):
        raise ValueError(f"line_series(): {len(names)} keys for {len(y_series)} y series; give one each.")
    # Pairs up to the shorter of each x and y series, as W&B's zip does.
    pairs = zip(x_series, y_series, strict=True)
    data = [[x, names[i], y] for i, (xx, yy) in enumerate(pairs) for x, y in zip(xx, yy, strict=False)]
    table = Table(columns=["step", "lineKey", "lineVal"], data=data)
    fields = {"step": "step", "lineKey": "lineKey", "lineVal": "lineVal"}
    return plot_table("wandb/lineseries/v0", table, fields, {"title": title, "xname": xname}, split_table)


def confusion_matrix(
    probs: Sequence[Sequence[float]] | None = None,
    y_true: Sequence[Any] | None = None,
    preds: Sequence[Any] | None = None,
    class_names: Sequence[str] | None = None,
    title: str = "Confusion Matrix Curve",
    split_table: bool = False,
) -> CustomChart:
    """A confusion matrix of ``y_true`` against ``preds`` (or the argmax of each row of ``probs``): a table
    ``Actual, Predicted, nPredictions`` with one row per pair of classes, as W&B builds it."""
    if probs is not None and preds is not None:
        raise ValueError("confusion_matrix(): give probs or preds, not both.")
    if probs is not None:
        preds = [max(range(len(row)), key=lambda i, row=list(row): row[i]) for row in probs]  # type: ignore[misc]
    if preds is None or y_true is None:
        raise ValueError("confusion_matrix(): give y_true and preds (or probs).")
    preds, y_true = _plain(preds), _plain(y_true)
    if len(preds) != len(y_true):
        raise ValueError(f"confusion_matrix(): {len(preds)} predictions for {len(y_true)} true labels.")
    if class_names is not None:
        class_idx: Iterable[Any] = range(len(class_names))
        for what, labels in (("predicted classes", preds), ("true labels", y_true)):
            if len(set(labels)) > len(class_names):
                raise ValueError(
                    f"confusion_matrix(): {len(set(labels))} distinct {what} for {len(class_names)} class names."
                )
        names = list(class_names)
    else:
        class_idx = set(preds) | set(y_true)
        names = [f"Class_{i + 1}" for i in range(len(class_idx))]
    index = {value: i for i, value in enumerate(sorted(class_idx))}
    n = len(names)
    counts = [[0.0] * n for _ in range(n)]
    for actual, predicted in zip(y_true, preds, strict=True):
        counts[index[actual]][index[predicted]] += 1
    data = [[names[i], names[j], counts[i][j]] for i in range(n) for j in range(n)]
    table = Table(columns=["Actual", "Predicted", "nPredictions"], data=data)
    fields = {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"}
    return plot_table("wandb/confusion_matrix/v1", table, fields, {"title": title}, split_table)


def _plain(values: Any) -> list[Any]:
    return values.tolist() if hasattr(values, "tolist") else list(values)
