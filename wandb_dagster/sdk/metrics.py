"""``run.define_metric``: custom x axes and the summary a metric gets, as W&B's SDK (wandb-core) computes.

    >>> run.define_metric("train/step")                                        # doctest: +SKIP
    >>> run.define_metric("train/*", step_metric="train/step", summary="min,max")   # doctest: +SKIP
    >>> run.log({"train/loss": 0.5, "train/step": 1})                         # doctest: +SKIP
    >>> run.summary["train/loss"]                                              # doctest: +SKIP
    {'min': 0.5, 'max': 0.5}

Rules (wandb-core's runmetric and runsummary packages):

- ``summary`` is a comma-separated list of ``min max mean last first best copy none``. Without one (or with
  only ``copy``) the summary holds the last value; with ``min``/``max``/``mean``/``last``/``first`` it holds a
  dict of those; ``none`` keeps the metric out of the summary.
- A name ending in ``*`` is a glob: the first time a logged key starts with its prefix, the key gets the
  glob's definition (an explicit definition of the key wins). Only a trailing ``*`` is allowed.
- ``step_metric`` names the metric's x axis. With ``step_sync`` (the default when ``step_metric`` is given),
  a row that logs the metric without its step metric gets the step metric's last logged value.
- Setting ``run.summary[key]`` directly makes the key's summary a plain value from then on.
- ``overwrite=False`` (the default) merges with earlier definitions of the same name.
- **Ours**: ``best`` (with ``goal``) records ``{"best": ...}``, the minimum or maximum as the goal says, as
  W&B's documentation and older SDKs do; wandb-core ignores it. Both ``best`` and ``goal`` warn that W&B
  deprecated them, as W&B's SDK does.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

_SUMMARY_OPS = ("min", "max", "mean", "best", "last", "copy", "none", "first")
_GOALS = {"min": "minimize", "max": "maximize"}


@dataclasses.dataclass
class Metric:
    """What ``define_metric`` returned: the definition as it stands after this call."""

    name: str
    step_metric: str | None = None
    step_sync: bool | None = None
    hidden: bool | None = None
    summary: tuple[str, ...] | None = None
    _goal: str | None = None  # "min" / "max", as W&B keeps it

    @property
    def goal(self) -> str | None:
        """``"minimize"``, ``"maximize"`` or None."""
        return _GOALS[self._goal] if self._goal else None

    def merged(self, earlier: Metric | None) -> Metric:
        """This definition with what it leaves unset taken from ``earlier`` (wandb-core's ``With``)."""
        if earlier is None:
            return self
        return Metric(
            name=self.name,
            step_metric=self.step_metric or earlier.step_metric,
            step_sync=bool(self.step_sync or earlier.step_sync) or None,
            hidden=bool(self.hidden or earlier.hidden) or None,
            summary=_merged_ops(earlier.summary, self.summary),
            _goal=self._goal or earlier._goal,
        )


def _merged_ops(earlier: tuple[str, ...] | None, later: tuple[str, ...] | None) -> tuple[str, ...] | None:
    # wandb-core ORs the summary types of successive definitions; "none" is whatever the latest one says.
    if later is None:
        return earlier
    kept = [op for op in (earlier or ()) if op != "none"]
    return tuple(dict.fromkeys([*kept, *later]))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclasses.dataclass
class _Tracker:
    """The running aggregates of one metric (wandb-core's ``metricSummary``)."""

    count: int = 0
    latest: Any = None
    first: Any = None
    minimum: Any = None
    maximum: Any = None
    total: float = 0.0
    seen: bool = False
    explicit: bool = False

    def add(self, value: Any) -> None:
        if not self.seen:
            self.first = value
        self.latest, self.seen = value, True
        if _number(value):
            self.minimum = value if self.minimum is None else min(self.minimum, value)
            self.maximum = value if self.maximum is None else max(self.maximum, value)
            self.total += value
            self.count += 1

    def value(self, metric: Metric | None) -> tuple[bool, Any]:
        """(whether the metric has a summary, the summary value)."""
        ops = set(metric.summary or ()) if metric is not None and not self.explicit else set()
        if "none" in ops:
            return False, None
        if not ops - {"copy"} or (ops - {"copy"} == {"best"} and metric is not None and not metric._goal):
            return True, self.latest
        out: dict[str, Any] = {}
        if "last" in ops:
            out["last"] = self.latest
        if "first" in ops:
            out["first"] = self.first
        numeric = self.count > 0
        if "max" in ops and numeric:
            out["max"] = self.maximum
        if "min" in ops and numeric:
            out["min"] = self.minimum
        if "mean" in ops and numeric:
            out["mean"] = self.total / self.count
        if "best" in ops and numeric and metric is not None and metric._goal:
            out["best"] = self.minimum if metric._goal == "min" else self.maximum
        return True, out


class MetricDefinitions:
    """The metric definitions of one run, and the aggregates its summary needs."""

    def __init__(self) -> None:
        self._defined: dict[str, Metric] = {}
        self._globs: dict[str, Metric] = {}
        self._latest_step: dict[str, Any] = {}
        self._trackers: dict[str, _Tracker] = {}

    def define(
        self,
        name: str,
        step_metric: Any = None,
        step_sync: bool | None = None,
        hidden: bool | None = None,
        summary: str | None = None,
        goal: str | None = None,
        overwrite: bool | None = None,
    ) -> Metric:
        """Check and record one ``define_metric`` call (arguments and errors as in W&B's SDK)."""
        if not name:
            raise ValueError("define_metric() requires a non-empty name, e.g. define_metric('val/loss').")
        if isinstance(step_metric, Metric):
            step_metric = step_metric.name
        for arg, value, kind in (
            ("name", name, str), ("step_metric", step_metric, str), ("step_sync", step_sync, bool),
            ("hidden", hidden, bool), ("summary", summary, str), ("goal", goal, str),
            ("overwrite", overwrite, bool),
        ):  # fmt: skip
            if value is not None and not isinstance(value, kind):
                raise ValueError(
                    f"define_metric() argument {arg}={value!r} has type {type(value).__name__}; expected "
                    f"{kind.__name__}."
                )
        if "*" in (name[:-1] if name.endswith("*") else name):
            raise ValueError(
                f"define_metric() name {name!r} is invalid: only a trailing '*' is allowed (e.g. 'val/*')."
            )
        ops: tuple[str, ...] | None = None
        if summary:
            ops = tuple(op.strip().lower() for op in summary.split(","))
            bad = [op for op in ops if op not in _SUMMARY_OPS]
            if bad:
                raise ValueError(
                    f"define_metric() summary={summary!r} has unknown operation(s) {bad}; use a comma-separated "
                    f"list of {list(_SUMMARY_OPS)}."
                )
            if "copy" in ops:
                warnings.warn("define_metric(summary='copy') is deprecated and will be removed.",
                              DeprecationWarning, stacklevel=3)  # fmt: skip
        goal_key = None
        if goal is not None:
            goal_key = goal[:3].lower()
            if goal_key not in _GOALS:
                raise ValueError(f"define_metric() goal={goal!r} is invalid; use 'minimize' or 'maximize'.")
        if (ops and "best" in ops) or goal is not None:
            warnings.warn(
                "define_metric(summary='best', goal=...) is deprecated and will be removed. Use "
                "define_metric(summary='min') or define_metric(summary='max') instead.",
                DeprecationWarning,
                stacklevel=3,
            )
        if step_metric and step_sync is None:
            step_sync = True  # W&B's default when a step metric is given
        metric = Metric(name, step_metric or None, step_sync, hidden, ops, goal_key)
        table = self._globs if name.endswith("*") else self._defined
        metric = metric if overwrite else metric.merged(table.get(name))
        table[name] = metric
        if metric.step_metric:
            self._latest_step.setdefault(metric.step_metric, None)
        return dataclasses.replace(metric)

    def _metric(self, key: str) -> Metric | None:
        found = self._defined.get(key)
        if found is None and not key.startswith("_"):
            for glob, metric in self._globs.items():
                if key.startswith(glob[:-1]):
                    # The key gets the glob's definition once, as wandb-core does.
                    found = self._defined[key] = dataclasses.replace(metric, name=key)
                    break
        return found

    def process(self, row: dict[str, Any], pending: dict[str, Any]) -> dict[str, Any]:
        """``row`` (what one ``log`` call gives) with step metrics filled in; ``pending`` is what the
        current step already holds. Updates the aggregates."""
        out = dict(row)
        for key in list(row):
            metric = self._metric(key)
            if metric is None or not metric.step_metric or not metric.step_sync:
                continue
            step_key = metric.step_metric
            if step_key in out or step_key in pending or step_key.startswith("_"):
                continue
            if self._latest_step.get(step_key) is not None:
                out[step_key] = self._latest_step[step_key]
        for step_key in self._latest_step:
            if step_key in out and _number(out[step_key]):
                self._latest_step[step_key] = out[step_key]
        for key, value in out.items():
            self._trackers.setdefault(key, _Tracker()).add(value)
        return out

    def summary_values(self, keys: Any) -> tuple[dict[str, Any], list[str]]:
        """(the summary value of each of ``keys`` that has one, the keys that must have none)."""
        values, hidden = {}, []
        for key in keys:
            has, value = self._trackers[key].value(self._metric(key))
            if has:
                values[key] = value
            else:
                hidden.append(key)
        return values, hidden

    def set_explicitly(self, key: str) -> None:
        """``run.summary[key] = ...``: the key's summary is a plain value from now on (wandb-core)."""
        self._trackers.setdefault(key, _Tracker()).explicit = True
