"""The metric types panels and run sets name, as W&B's Report API has them: ``Metric`` (a logged history
key or a run attribute), ``Config`` (a ``run.config`` key) and ``SummaryMetric`` (a ``run.summary`` key).

A plain string works where W&B takes one: in a line plot it is a history key; elsewhere ``"config.lr"`` and
``"summary.acc"`` name a config or summary key, and a bare name is looked up in the summary, then the config.
"""

from __future__ import annotations

from typing import Any

from wandb_dagster.reports._model import model


@model
class Metric:
    """A history key (``loss``) or a run attribute (``State``, ``CreatedTimestamp``, ``Runtime``...)."""

    name: str

    def __post_init__(self) -> None:
        _name(self)


@model
class Config:
    """A key of ``run.config`` (dots name nested keys: ``Config("optimizer.lr")``)."""

    name: str

    def __post_init__(self) -> None:
        _name(self)


@model
class SummaryMetric:
    """A key of ``run.summary``."""

    name: str

    def __post_init__(self) -> None:
        _name(self)


def _name(obj: Any) -> None:
    if not isinstance(obj.name, str) or not obj.name:
        raise ValueError(
            f"{type(obj).__name__}({obj.name!r}) is invalid; give the key's name, e.g. {type(obj).__name__}('lr')"
        )


MetricType = str | Metric | Config | SummaryMetric


def check_metric(owner: str, name: str, value: Any, *, required: bool = True) -> None:
    if value is None and not required:
        return
    if isinstance(value, (Metric, Config, SummaryMetric)):
        return
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"{owner}({name}={value!r}) is invalid; name a metric: a string such as 'loss', or "
            "Config('lr'), SummaryMetric('acc'), Metric('loss')"
        )


def label(value: Any) -> str:
    """How a metric is shown in a chart or a table header."""
    return value if isinstance(value, str) else value.name


def run_value(run: Any, metric: Any) -> Any:
    """The value of ``metric`` for an Api run (config and summary only; None when it has none)."""
    if isinstance(metric, Config):
        return _dig(run.config, metric.name)
    if isinstance(metric, (SummaryMetric, Metric)):
        return _dig(run.summary_metrics, metric.name)
    for prefix, source in (
        ("config.", run.config),
        ("summary.", run.summary_metrics),
        ("summary_metrics.", run.summary_metrics),
    ):
        if metric.startswith(prefix):
            return _dig(source, metric[len(prefix) :])
    found = _dig(run.summary_metrics, metric)
    return found if found is not None else _dig(run.config, metric)


def _dig(source: Any, key: str) -> Any:
    if isinstance(source, dict) and key in source:
        value = source[key]
    else:
        value = source
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
    # W&B's config may hold {"value": x, "desc": ...} (config-defaults.yaml); the value is what is compared.
    if isinstance(value, dict) and "value" in value and set(value) <= {"value", "desc"}:
        return value["value"]
    return value
