"""``early_terminate: {type: hyperband}``: which running trials to stop, exactly as W&B decides.

W&B's rule (wandb/sweeps ``hyperband_stopping.hyperband_stop_runs``), which is a thresholding of each run
against every run of the sweep at fixed milestones ("bands"), not Optuna's bracketed Hyperband:

- bands: with ``max_iter`` and ``s``, ``int(max_iter / eta**i)`` for i = 1..s while at least 1, sorted
  (max_iter 27, s 2, eta 3: [3, 9]); with ``min_iter``, ``int(min_iter * eta**i)`` for i = 0..99
  (min_iter 3, eta 3: [3, 9, 27, 81, ...]). ``eta`` defaults to 3.
- a run's "iteration" is the number of times it logged the metric (finite values only); a maximised
  metric is negated.
- the threshold at a band b is, over every run of the sweep (any state) that logged the metric at least b
  times, the value at rank ``int((1 / eta) * n)`` of their sorted b-th values.
- a running trial that has passed at least one band is stopped when its value exceeds the threshold of the
  last band it passed: with ``strict`` (the default) its value at that band, otherwise the best value it
  ever logged.

This is the one decision every agent acts on: an agent evaluates it from the store's histories and records
the trials to stop under the sweep's lock (store ``stop_sweep_trials``). Optuna's ``HyperbandPruner``
assigns trials to brackets by hashing and promotes the top ``n // eta - 1``; it would stop other runs
than W&B does, so it is not used here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def bands(early_terminate: Mapping[str, Any]) -> list[int]:
    """The milestones (iteration counts) of a validated hyperband configuration, as W&B computes them."""
    eta = early_terminate.get("eta", 3)
    if "max_iter" in early_terminate and "s" in early_terminate:
        band: float = early_terminate["max_iter"]
        out = []
        for _ in range(int(early_terminate["s"])):
            band /= eta
            if band < 1:
                break
            out.append(int(band))
        return sorted(out)
    band = early_terminate["min_iter"]
    out = []
    for _ in range(100):
        out.append(int(band))
        band *= eta
    return out


def to_stop(
    config: Mapping[str, Any], histories: list[tuple[str, str, list[float]]], running: set[str]
) -> set[str]:
    """The run ids among ``running`` that W&B's hyperband would stop now, given every run's metric history
    ((run id, state, finite values in step order), store ``sweep_metric_histories``)."""
    et = config["early_terminate"]
    eta = et.get("eta", 3)
    strict = et.get("strict", True)
    milestones = bands(et)
    sign = -1.0 if config["metric"]["goal"] == "maximize" else 1.0
    signed = {run_id: [sign * v for v in values] for run_id, _, values in histories if values}
    thresholds = []
    for band in milestones:
        at_band = sorted(values[band - 1] for values in signed.values() if len(values) >= band)
        # W&B's own arithmetic, int((1 / eta) * n), so that float rounding picks the same rank.
        thresholds.append(at_band[int((1.0 / eta) * len(at_band))] if at_band else float("inf"))
    stop = set()
    for run_id in running:
        history = signed.get(run_id, [])
        pairs = zip(milestones, thresholds, strict=True)
        passed = [(band, threshold) for band, threshold in pairs if band <= len(history)]
        if not passed:
            continue
        band, threshold = passed[-1]
        value = history[band - 1] if strict else min(history)
        if value > threshold:
            stop.add(run_id)
    return stop
