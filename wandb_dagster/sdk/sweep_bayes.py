"""``method: bayes``: suggestions from Optuna's TPE sampler, driven in ask-and-tell mode from the store.

The store is the single source of truth. Each suggestion builds a fresh in-memory Optuna study from the
sweep's trials as the claim transaction reads them (under the sweep's lock: store/sweeps.py ``claim``),
asks it for the next point, and hands the point back to the claim, which records it in that same
transaction. Optuna's own storage (RDB, journal) is never used, so there is no second database to keep in
step, and every agent in every process learns from exactly the trials the workspace holds.

How W&B's bayes search scores runs (wandb/sweeps ``bayes_search._construct_gp_data``), and so here:

- a trial whose run finished: the extremum of the metric over its history and summary (the trial's
  ``value``, recorded when it ended; ``min`` to minimize);
- a trial whose run failed, crashed or was stopped (``killed``), or finished without the metric: imputed
  as ``metric.impute`` says (W&B's default ``worst``: the worst value among the sweep's scored trials;
  ``best``/``latest``: the trial's own value when it has one). **Ours**: when there is nothing to impute
  from, the trial is left out (W&B imputes 0.0);
- a running trial: a running Optuna trial, which TPE's ``constant_liar`` treats as a pessimistic guess so
  that agents asking at once get different points (W&B's GP also counts running points).

Each W&B distribution maps onto an Optuna distribution whose uniform prior is the W&B distribution itself
or, for the unbounded ones, its quantile (:data:`MAPPING` says which); quantised distributions round the
suggestion to a multiple of ``q`` as W&B's ``ppf`` does (an integer ``q`` gives integers).

Optuna is imported only when a bayes sweep suggests (``pip install 'wandb-dagster[sweeps]'``).
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable, Mapping
from statistics import NormalDist
from typing import Any

from wandb_dagster.sdk import sweep_config

# The trial (store TrialRecord) -> (grid index, params) callable the store's claim runs.
Suggest = Callable[[list[Any]], "tuple[int | None, dict[str, Any]] | None"]

# Quantiles are kept off 0 and 1, where a normal's inverse CDF is infinite.
_EPS = 1e-9
_STANDARD = NormalDist()

# W&B distribution -> how it is searched (documentation: docs/behaviour.md section 10).
MAPPING = {
    "categorical": "CategoricalDistribution over the values' indices (probabilities are not a prior)",
    "int_uniform": "IntDistribution(min, max)",
    "uniform": "FloatDistribution(min, max)",
    "q_uniform": "IntDistribution over the multiples k of q from round(min/q) to round(max/q); value k*q",
    "log_uniform": "FloatDistribution(e^min, e^max, log=True)",
    "log_uniform_values": "FloatDistribution(min, max, log=True)",
    "q_log_uniform": "FloatDistribution(e^min, e^max, log=True), rounded to a multiple of q",
    "q_log_uniform_values": "FloatDistribution(min, max, log=True), rounded to a multiple of q",
    "inv_log_uniform": "FloatDistribution(e^-max, e^-min, log=True)",
    "inv_log_uniform_values": "FloatDistribution(min, max, log=True)",
    "normal": "FloatDistribution over the quantile u in (0, 1); value mu + sigma * Phi^-1(u)",
    "q_normal": "as normal, rounded to a multiple of q",
    "log_normal": "as normal, value exp(mu + sigma * Phi^-1(u))",
    "q_log_normal": "as log_normal, rounded to a multiple of q",
    "beta": "FloatDistribution(0, 1) (a uniform prior, not beta(a, b))",
    "q_beta": "FloatDistribution(0, 1), rounded to a multiple of q",
}


class _Dimension:
    """One searched parameter: its Optuna distribution, and the maps between Optuna's value and W&B's."""

    def __init__(self, distribution: Any, to_value: Callable[[Any], Any], to_internal: Callable[[Any], Any]):
        self.distribution = distribution
        self.to_value = to_value
        self.to_internal = to_internal


def _quantize(spec: Mapping[str, Any]) -> Callable[[float], Any]:
    if not spec["distribution"].startswith("q_"):
        return lambda v: v
    q = spec["q"]
    return lambda v: sweep_config._quantize(v, q)


def _dimension(spec: Mapping[str, Any], optuna: Any) -> _Dimension:
    d = spec["distribution"]
    dists = optuna.distributions
    if d == "categorical":
        values = list(spec["values"])
        keys = [sweep_config.value_key(v) for v in values]
        return _Dimension(
            dists.CategoricalDistribution(list(range(len(values)))),
            lambda i: values[i],
            lambda v: keys.index(sweep_config.value_key(v)),
        )
    if d == "int_uniform":
        return _Dimension(dists.IntDistribution(spec["min"], spec["max"]), int, lambda v: int(round(v)))
    if d == "uniform":
        lo, hi = float(spec["min"]), float(spec["max"])
        return _Dimension(dists.FloatDistribution(lo, hi), float, lambda v: min(hi, max(lo, float(v))))
    if d == "q_uniform":
        q = spec["q"]
        lo_k, hi_k = round(spec["min"] / q), round(spec["max"] / q)
        if lo_k == hi_k:
            hi_k += 1  # a range narrower than q still has two multiples to choose from
        return _Dimension(
            dists.IntDistribution(lo_k, hi_k),
            lambda k: sweep_config._quantize(k * q, q),
            lambda v: min(hi_k, max(lo_k, round(v / q))),
        )
    if d in ("log_uniform", "q_log_uniform", "inv_log_uniform"):
        lo, hi = (math.exp(spec["min"]), math.exp(spec["max"]))
        if d == "inv_log_uniform":
            lo, hi = math.exp(-spec["max"]), math.exp(-spec["min"])
    elif d in ("log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values"):
        lo, hi = float(spec["min"]), float(spec["max"])
    else:
        lo = hi = 0.0
    if hi > lo > 0:
        q_log = _quantize(spec)
        return _Dimension(
            dists.FloatDistribution(lo, hi, log=True), q_log, lambda v: min(hi, max(lo, float(v)))
        )
    if d in ("normal", "q_normal", "log_normal", "q_log_normal"):
        mu, sigma, logged, quantize = spec["mu"], spec["sigma"], "log" in d, _quantize(spec)

        def value(u: float) -> Any:
            x = mu + sigma * _STANDARD.inv_cdf(u)
            return quantize(math.exp(x) if logged else x)

        def internal(v: Any) -> float:
            x = math.log(v) if logged else float(v)
            return min(1 - _EPS, max(_EPS, _STANDARD.cdf((x - mu) / sigma)))

        return _Dimension(dists.FloatDistribution(_EPS, 1 - _EPS), value, internal)
    if d in ("beta", "q_beta"):
        return _Dimension(dists.FloatDistribution(0.0, 1.0), _quantize(spec), lambda v: min(1.0, max(0.0, float(v))))
    raise ValueError(f"distribution {d!r} has no bayes mapping")  # validate() lets no other through


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ImportError(
            "method: bayes needs Optuna; pip install 'wandb-dagster[sweeps]' (or pip install optuna), or use "
            "method 'random'"
        ) from None
    return optuna


def suggester(config: Mapping[str, Any], seed: int | None = None) -> Suggest:
    """The ``suggest`` callable a bayes sweep's claims run (store/sweeps.py ``claim``): given the sweep's
    live trials, oldest first, it returns ``(None, params)``, the nested config of the next point.

    ``seed`` makes one agent's suggestions reproducible (the bench uses it); without it each agent
    draws its own.
    """
    optuna = _import_optuna()
    flat = sweep_config.flatten(config["parameters"])
    constants = {name: spec["value"] for name, spec in flat.items() if spec["distribution"] == "constant"}
    space = {name: _dimension(spec, optuna) for name, spec in flat.items() if spec["distribution"] != "constant"}
    distributions = {name: dim.distribution for name, dim in space.items()}
    metric = config["metric"]
    direction = "maximize" if metric["goal"] == "maximize" else "minimize"
    impute = metric.get("impute", "worst")
    TrialState = optuna.trial.TrialState
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            seed=random.randrange(2**31) if seed is None else seed, multivariate=True, constant_liar=True
        )
    # One in-memory study per suggester (never Optuna's storages that persist). Ended trials never change, so
    # each is added to it once, the first time a claim reads it ended; the trials a claim reads running are
    # added for that one suggestion and then retired (FAIL, which TPE ignores). What the sampler sees at each
    # suggestion is therefore exactly the trials the store holds at that claim.
    state: dict[str, Any] = {"study": None, "ended": {}, "retired": 0}

    def internal_params(params: Mapping[str, Any]) -> dict[str, Any] | None:
        out = {}
        for name, dim in space.items():
            found, value = sweep_config._lookup(params, name)
            if not found:
                return None
            try:
                out[name] = dim.to_internal(value)
            except (ValueError, TypeError, OverflowError):
                return None  # a value outside the search space (edited config): nothing to learn from
        return out

    def frozen(trial: Any, trial_state: Any, value: float | None) -> Any:
        params = internal_params(trial.params)
        if params is None:
            return None
        return optuna.trial.create_trial(
            state=trial_state, value=value, params=params, distributions={n: distributions[n] for n in params}
        )

    def ended_form(trial: Any) -> Any:
        # W&B's scoring (module docstring). An ended trial without a score of its own is PRUNED without
        # intermediate values: TPE ranks such trials below every complete one, which is W&B's "worst".
        finished = trial.state == "finished" and trial.run_state == "finished"
        if trial.value is not None and (finished or impute in ("best", "latest")):
            return frozen(trial, TrialState.COMPLETE, trial.value)
        return frozen(trial, TrialState.PRUNED, None)

    def fresh_study(ended: list[Any]) -> Any:
        storage = state["storage"] = optuna.storages.InMemoryStorage()
        study = optuna.create_study(storage=storage, direction=direction, sampler=sampler)
        state["study_id"] = storage.get_study_id_from_name(study.study_name)
        study.add_trials(ended)
        return study

    def suggest(trials: list[Any]) -> tuple[int | None, dict[str, Any]] | None:
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # create_study logs at INFO
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return _suggest(trials)
        finally:
            optuna.logging.set_verbosity(verbosity)

    def _suggest(trials: list[Any]) -> tuple[int | None, dict[str, Any]] | None:
        ended: dict[int, Any] = state["ended"]
        new = {t.pk: ended_form(t) for t in trials if t.state not in ("running", "stopping") and t.pk not in ended}
        ended.update(new)
        study = state["study"]
        if study is None or state["retired"] > 2 * len(ended) + 100:
            # Retired trials only cost filtering time; start over from the ended ones once they dominate.
            study = state["study"] = fresh_study([f for f in ended.values() if f is not None])
            state["retired"] = 0
        else:
            study.add_trials([f for f in new.values() if f is not None])
        active = [t for t in trials if t.state in ("running", "stopping")]
        running = [f for f in (frozen(t, TrialState.RUNNING, None) for t in active) if f is not None]
        study.add_trials(running)
        numbers = [t.number for t in study.get_trials(deepcopy=False)[-len(running):]] if running else []
        asked = study.ask(distributions)
        values = {name: space[name].to_value(asked.params[name]) for name in space}
        study.tell(asked, state=TrialState.FAIL)
        storage, study_id = state["storage"], state["study_id"]
        for number in numbers:
            storage.set_trial_state_values(
                storage.get_trial_id_from_study_id_trial_number(study_id, number), TrialState.FAIL
            )
        state["retired"] += len(numbers) + 1
        return None, sweep_config.nest({name: {**constants, **values}[name] for name in flat})

    return suggest
