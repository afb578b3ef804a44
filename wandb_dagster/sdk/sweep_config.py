"""W&B sweep configurations: validation, and the grid and random search engines.

:func:`validate` checks a configuration as ``wandb.sweep`` receives it (a dict, or a YAML file's contents) and
returns it normalised: every parameter gets its ``distribution``, inferred as W&B's sweep schema does
(``value`` -> constant, ``values`` -> categorical, ``min``/``max`` both ints -> int_uniform, otherwise
uniform) and the defaults W&B fills in (``mu`` 0, ``sigma`` 1, ``q`` 1, ``a``/``b`` 1). An invalid
configuration raises ValueError naming the key (``parameters.lr.min``) and the rule it breaks.

Nested parameters (a parameter with its own ``parameters``) are flattened to dotted names for the search
(as W&B's ``HyperParameterSet`` does) and nested again in the suggested config: ``{"optimizer": {"lr":
0.1}}``.

Search, as W&B's sweeps library:

- grid: the cartesian product (``itertools.product``) of every categorical parameter's ``values``, the
  parameters sorted by name at each level of nesting (W&B sorts them, whatever order the configuration
  gives), the last one varying fastest; int_uniform enumerates ``range(min, max + 1)`` and q_uniform
  ``arange(min, max, q)``; other distributions, and ``probabilities``, are refused for grid search.
  Constants ride along. Points are recognised by their values (W&B's ``yaml_hash``: ``3.0`` is ``3``).
  :func:`grid_points` lists the points; the agent claims the first one no trial (and no prior run) has taken.
- random: each parameter sampled independently from its distribution (:func:`sample`).
- bayes: Optuna's TPE sampler rebuilt from the store's trials (sdk/sweep_bayes.py); it needs ``metric``.
- ``early_terminate`` (hyperband, W&B's rule: sdk/sweep_hyperband.py) is validated here, defaults filled.
"""

from __future__ import annotations

import itertools
import json
import math
import random as _random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

METHODS = ("grid", "random", "bayes")
GOALS = ("minimize", "maximize")
IMPUTE = ("latest", "best", "worst")
# Each distribution's keys: required ones, and optional ones with W&B's defaults.
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "constant": (("value",), {}),
    "categorical": (("values",), {}),
    "int_uniform": (("min", "max"), {}),
    "uniform": (("min", "max"), {}),
    "q_uniform": (("min", "max"), {"q": 1.0}),
    "log_uniform": (("min", "max"), {}),
    "log_uniform_values": (("min", "max"), {}),
    "q_log_uniform": (("min", "max"), {"q": 1.0}),
    "q_log_uniform_values": (("min", "max"), {"q": 1.0}),
    "inv_log_uniform": (("min", "max"), {}),
    "inv_log_uniform_values": (("min", "max"), {}),
    "normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "log_normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_log_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "beta": ((), {"a": 1.0, "b": 1.0}),
    "q_beta": ((), {"a": 1.0, "b": 1.0, "q": 1.0}),
}
_PARAMETER_KEYS = {"distribution", "value", "values", "probabilities", "min", "max", "mu", "sigma", "q", "a", "b"}
_TOP_KEYS = {
    "method", "metric", "parameters", "run_cap", "name", "description", "program", "command", "early_terminate",
    "project", "entity", "controller", "job", "image_uri", "launch", "entity_project", "apiVersion",
}  # fmt: skip
_GRID_DISTRIBUTIONS = ("constant", "categorical", "int_uniform", "q_uniform")


def load(sweep: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    """The configuration ``wandb.sweep`` was given: a dict, or the path of a YAML file holding one."""
    if isinstance(sweep, Mapping):
        return dict(sweep)
    if isinstance(sweep, (str, Path)):
        path = Path(sweep)
        try:
            import yaml
        except ImportError:
            raise ValueError(
                f"sweep configuration {str(path)!r} is YAML and PyYAML is not installed; pip install pyyaml, or "
                "pass the configuration as a dict"
            ) from None
        if not path.is_file():
            raise ValueError(f"sweep configuration file {str(path)!r} does not exist; pass a dict or a YAML file")
        loaded = yaml.safe_load(path.read_text())
        if not isinstance(loaded, dict):
            raise ValueError(f"sweep configuration file {str(path)!r} holds {type(loaded).__name__}, not a mapping")
        return loaded
    raise ValueError(f"sweep must be a dict or the path of a YAML file, not {type(sweep).__name__}")


def validate(config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration, checked and normalised (see the module docstring); ValueError names what is wrong."""
    if not isinstance(config, Mapping):
        raise ValueError(f"a sweep configuration is a mapping, not {type(config).__name__}")
    unknown = sorted(set(config) - _TOP_KEYS)
    if unknown:
        raise ValueError(f"sweep configuration has unknown key(s) {unknown}; valid keys: {sorted(_TOP_KEYS)}")
    out = dict(config)
    method = config.get("method")
    if method not in METHODS:
        raise ValueError(f"method: {method!r} is not one of {list(METHODS)} (it is required)")
    if method == "bayes" and "metric" not in config:
        raise ValueError(
            "metric: bayes search requires a metric to optimize, e.g. {'name': 'loss', 'goal': 'minimize'}"
        )
    if "metric" in config:
        out["metric"] = _metric(config["metric"])
    if "run_cap" in config:
        cap = config["run_cap"]
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
            raise ValueError(f"run_cap: {cap!r} must be a positive integer")
    for key in ("name", "description"):
        if key in config and not isinstance(config[key], str):
            raise ValueError(f"{key}: {config[key]!r} must be a string")
    if "early_terminate" in config:
        if "metric" not in config:
            raise ValueError("early_terminate: hyperband stops runs by the metric; add 'metric' with its name and goal")
        out["early_terminate"] = _early_terminate(config["early_terminate"])
    for key in ("program", "description"):
        if key in config and not isinstance(config[key], str):
            raise ValueError(f"{key}: {config[key]!r} must be a string")
    if "command" in config and (
        not isinstance(config["command"], list) or not all(isinstance(c, (str, int, float)) for c in config["command"])
    ):
        raise ValueError(
            f"command: {config['command']!r} must be a list of strings such as "
            "['${env}', '${interpreter}', '${program}', '${args}']"
        )
    parameters = config.get("parameters")
    if not isinstance(parameters, Mapping) or not parameters:
        raise ValueError("parameters: required, a non-empty mapping of parameter names to their specifications")
    out["parameters"] = _parameters(parameters, "parameters")
    if method == "grid":
        for name, spec in flatten(out["parameters"]).items():
            if spec["distribution"] not in _GRID_DISTRIBUTIONS:
                raise ValueError(
                    f"parameters.{name}: distribution {spec['distribution']!r} cannot be searched by grid; grid "
                    f"takes {list(_GRID_DISTRIBUTIONS)} (use values, or method 'random')"
                )
            if "probabilities" in spec:  # W&B's grid search refuses them too
                raise ValueError(
                    f"parameters.{name}.probabilities: grid search tries every value once; leave probabilities out "
                    "or use method 'random'"
                )
    return out


_HYPERBAND_KEYS = {"type", "min_iter", "max_iter", "s", "eta", "strict"}


def _early_terminate(et: Any) -> dict[str, Any]:
    # W&B's schema definition hyperband_stopping: type, and max_iter with s, or min_iter; eta > 1 (default 3).
    if not isinstance(et, Mapping):
        raise ValueError(f"early_terminate: {et!r} must be a mapping such as {{'type': 'hyperband', 'min_iter': 3}}")
    if et.get("type") != "hyperband":
        raise ValueError(f"early_terminate.type: {et.get('type')!r} is not 'hyperband' (the one type W&B has)")
    unknown = sorted(set(et) - _HYPERBAND_KEYS)
    if unknown:
        raise ValueError(f"early_terminate has unknown key(s) {unknown}; valid keys: {sorted(_HYPERBAND_KEYS)}")
    out = {"eta": 3, "strict": True, **et}
    if not ("min_iter" in et or ("max_iter" in et and "s" in et)):
        raise ValueError("early_terminate: hyperband needs 'min_iter', or 'max_iter' with 's'")
    for key in ("min_iter", "max_iter"):
        if key in out and (not _is_int(out[key]) or (key == "min_iter" and out[key] < 1)):
            at_least = " >= 1" if key == "min_iter" else ""
            raise ValueError(f"early_terminate.{key}: {out[key]!r} must be an integer{at_least}")
    if "s" in out and not _is_number(out["s"]):
        raise ValueError(f"early_terminate.s: {out['s']!r} must be a number")
    if not _is_number(out["eta"]) or out["eta"] <= 1:
        raise ValueError(f"early_terminate.eta: {out['eta']!r} must be a number above 1")
    if not isinstance(out["strict"], bool):
        raise ValueError(f"early_terminate.strict: {out['strict']!r} must be true or false")
    from wandb_dagster.sdk import sweep_hyperband

    if not sweep_hyperband.bands(out):
        raise ValueError(
            f"early_terminate: max_iter {out.get('max_iter')!r}, s {out.get('s')!r} and eta {out['eta']!r} give no "
            "band; increase max_iter or s, or decrease eta"
        )
    return out


def _metric(metric: Any) -> dict[str, Any]:
    if not isinstance(metric, Mapping):
        raise ValueError(f"metric: {metric!r} must be a mapping with 'name' (and 'goal', 'target')")
    unknown = sorted(set(metric) - {"name", "goal", "target", "impute", "impute_while_running"})
    if unknown:
        raise ValueError(
            f"metric has unknown key(s) {unknown}; valid keys: name, goal, target, impute, impute_while_running"
        )
    if not isinstance(metric.get("name"), str) or not metric["name"]:
        raise ValueError(f"metric.name: {metric.get('name')!r} must be a non-empty string (it is required)")
    out = dict(metric)
    out.setdefault("goal", "minimize")  # W&B's default goal
    if out["goal"] not in GOALS:
        raise ValueError(f"metric.goal: {out['goal']!r} is not one of {list(GOALS)}")
    if "target" in out and not _is_number(out["target"]):
        raise ValueError(f"metric.target: {out['target']!r} must be a number")
    # How bayes scores runs that failed, crashed or were stopped (W&B's schema, default "worst").
    out.setdefault("impute", "worst")
    if out["impute"] not in IMPUTE:
        raise ValueError(f"metric.impute: {out['impute']!r} is not one of {list(IMPUTE)}")
    if "impute_while_running" in out and out["impute_while_running"] not in (*IMPUTE, "false"):
        raise ValueError(
            f"metric.impute_while_running: {out['impute_while_running']!r} is not one of {[*IMPUTE, 'false']}"
        )
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parameters(parameters: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in parameters.items():
        key = f"{where}.{name}"
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"{key}: parameter names are non-empty strings without '.'")
        if not isinstance(spec, Mapping):
            raise ValueError(f"{key}: {spec!r} must be a mapping such as {{'values': [...]}} or {{'min': 0, 'max': 1}}")
        if "parameters" in spec:
            extra = sorted(set(spec) - {"parameters"})
            if extra:
                raise ValueError(f"{key}: a nested parameter has only 'parameters', not {extra}")
            nested = spec["parameters"]
            if not isinstance(nested, Mapping) or not nested:
                raise ValueError(f"{key}.parameters: must be a non-empty mapping of parameters")
            out[name] = {"parameters": _parameters(nested, f"{key}.parameters")}
        else:
            out[name] = _parameter(spec, key)
    return out


def _infer(spec: Mapping[str, Any], key: str) -> str:
    # W&B's sweep schema infers the distribution from the keys given (wandb/sweeps config/schema.json).
    if "value" in spec:
        return "constant"
    if "values" in spec:
        return "categorical"
    if "min" in spec and "max" in spec:
        return "int_uniform" if _is_int(spec["min"]) and _is_int(spec["max"]) else "uniform"
    if "mu" in spec or "sigma" in spec or "a" in spec or "b" in spec or "q" in spec:
        # W&B's schema infers nothing else: normal, beta and the q_ distributions need 'distribution'.
        raise ValueError(
            f"{key}: cannot tell its distribution from {sorted(spec)}; W&B infers only constant (value), categorical "
            "(values), int_uniform and uniform (min and max): add 'distribution', e.g. 'normal'"
        )
    raise ValueError(
        f"{key}: cannot tell its distribution; give 'value', 'values', 'min' and 'max', or 'distribution'"
    )


def _parameter(spec: Mapping[str, Any], key: str) -> dict[str, Any]:
    unknown = sorted(set(spec) - _PARAMETER_KEYS)
    if unknown:
        raise ValueError(f"{key}: unknown key(s) {unknown}; valid keys: {sorted(_PARAMETER_KEYS)} or 'parameters'")
    distribution = spec.get("distribution") or _infer(spec, key)
    if distribution == "categorical_w_probabilities":  # the name W&B's schema fills in for values + probabilities
        if "probabilities" not in spec:
            raise ValueError(f"{key}: distribution 'categorical_w_probabilities' requires ['probabilities']")
        distribution = "categorical"
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"{key}.distribution: {distribution!r} is not one of {sorted(DISTRIBUTIONS)}")
    required, defaults = DISTRIBUTIONS[distribution]
    allowed = {"distribution", *required, *defaults} | ({"probabilities"} if distribution == "categorical" else set())
    extra = sorted(set(spec) - allowed)
    if extra:
        takes = sorted(allowed - {"distribution"})
        raise ValueError(f"{key}: {extra} do not apply to distribution {distribution!r}, which takes {takes}")
    missing = [k for k in required if k not in spec]
    if missing:
        raise ValueError(f"{key}: distribution {distribution!r} requires {missing}")
    out = {**defaults, **spec, "distribution": distribution}
    for name in ("min", "max", "mu", "sigma", "q", "a", "b"):
        if name in out and not _is_number(out[name]):
            raise ValueError(f"{key}.{name}: {out[name]!r} must be a finite number")
    if distribution == "int_uniform":
        for name in ("min", "max"):
            if not _is_int(out[name]):
                raise ValueError(f"{key}.{name}: {out[name]!r} must be an integer for int_uniform")
    if "min" in out and out["min"] >= out["max"]:  # W&B's validate_min_max, int_uniform included
        raise ValueError(f"{key}: min {out['min']!r} must be below max {out['max']!r}")
    if distribution.endswith("_values") and out["min"] <= 0:
        raise ValueError(f"{key}.min: {out['min']!r} must be positive for {distribution} (its logarithm is taken)")
    for name in ("q", "sigma", "a", "b"):
        if name in out and out[name] <= 0:
            raise ValueError(f"{key}.{name}: {out[name]!r} must be positive")
    if distribution == "categorical":
        values = out["values"]
        if not isinstance(values, list) or not values:
            raise ValueError(f"{key}.values: {values!r} must be a non-empty list")
        if "probabilities" in out:
            probabilities = out["probabilities"]
            if (
                not isinstance(probabilities, list)
                or len(probabilities) != len(values)
                or not all(_is_number(p) and p >= 0 for p in probabilities)
            ):
                raise ValueError(
                    f"{key}.probabilities: {probabilities!r} must be a list of {len(values)} non-negative numbers, "
                    "one per value"
                )
            if abs(sum(probabilities) - 1.0) > 1e-6:
                raise ValueError(f"{key}.probabilities: {probabilities!r} must sum to 1, not {sum(probabilities)!r}")
    return out


# --------------------------------------------------------------------------------------- search


def flatten(parameters: Mapping[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Validated parameters as {dotted name: spec}, nested ones included, in W&B's order: sorted by name at
    each level of nesting (W&B's ``HyperParameterSet.from_config`` walks ``sorted(d.items())``), whatever
    order the configuration gives them in. That order is the grid's."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in sorted(parameters.items()):
        if "parameters" in spec:
            out.update(flatten(spec["parameters"], f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = spec
    return out


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{dotted name: value} as the nested config a trial's run gets."""
    out: dict[str, Any] = {}
    for name, value in flat.items():
        *parents, leaf = name.split(".")
        node = out
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return out


def _grid_values(spec: Mapping[str, Any]) -> list[Any]:
    distribution = spec["distribution"]
    if distribution == "categorical":
        return list(spec["values"])
    if distribution == "int_uniform":
        return list(range(spec["min"], spec["max"] + 1))
    # q_uniform, as numpy.arange(min, max, q): min + i*q below max.
    count = math.ceil((spec["max"] - spec["min"]) / spec["q"])
    return [spec["min"] + i * spec["q"] for i in range(count)]


def value_key(value: Any) -> str:
    """A value's identity for grid search, as W&B's ``yaml_hash``: equal values (a float that is an integer
    equals that integer, ``3.0`` is ``3``; dict keys in any order) have the same key."""

    def canonical(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, Mapping):
            return {str(k): canonical(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [canonical(x) for x in v]
        return v

    return json.dumps(canonical(value), sort_keys=True, default=repr)


def _lookup(config: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def grid_points(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every point of a validated grid configuration, in W&B's order, as nested configs.

    The order is ``itertools.product`` of the varying parameters in :func:`flatten`'s order (names sorted,
    the last varying fastest). A point whose values equal an earlier one's (``values: [1, 1.0, 2]``) is
    left out, as W&B's grid search, which recognises points by their values, runs it once."""
    flat = flatten(config["parameters"])
    constants = {name: spec["value"] for name, spec in flat.items() if spec["distribution"] == "constant"}
    varying = {name: _grid_values(spec) for name, spec in flat.items() if spec["distribution"] != "constant"}
    points, seen = [], set()
    for combination in itertools.product(*varying.values()):
        key = tuple(value_key(v) for v in combination)
        if key in seen:
            continue
        seen.add(key)
        point = {**constants, **dict(zip(varying, combination, strict=True))}
        points.append(nest({name: point[name] for name in flat}))
    return points


def grid_indices_covered(config: Mapping[str, Any], run_configs: Sequence[Mapping[str, Any]]) -> set[int]:
    """The grid points that runs with these configs already tried (``wandb.sweep(prior_runs=...)``): W&B's
    grid search compares every varying parameter's value, so a prior run with the same values takes the
    point."""
    flat = flatten(config["parameters"])
    varying = [name for name, spec in flat.items() if spec["distribution"] != "constant"]
    wanted = set()
    for run_config in run_configs:
        found = [_lookup(run_config, name) for name in varying]
        if all(present for present, _ in found):
            wanted.add(tuple(value_key(value) for _, value in found))
    covered = set()
    for index, point in enumerate(grid_points(config)):
        if tuple(value_key(_lookup(point, name)[1]) for name in varying) in wanted:
            covered.add(index)
    return covered


def _quantize(value: float, q: float) -> float:
    # W&B rounds to the nearest multiple of q; an integer q gives integers.
    rounded = round(value / q) * q
    return int(rounded) if _is_int(q) else rounded


def sample_one(spec: Mapping[str, Any], rng: _random.Random) -> Any:
    """One value of a validated parameter, as W&B's random search draws it."""
    d = spec["distribution"]
    if d == "constant":
        return spec["value"]
    if d == "categorical":
        weights = spec.get("probabilities")
        return rng.choices(spec["values"], weights=weights)[0]
    if d == "int_uniform":
        return rng.randint(spec["min"], spec["max"])
    lo, hi = float(spec.get("min", 0.0)), float(spec.get("max", 1.0))  # used only by the bounded ones
    if d in ("uniform", "q_uniform"):
        value = rng.uniform(lo, hi)
    elif d in ("log_uniform", "q_log_uniform"):  # min and max are the logarithms' bounds
        value = math.exp(rng.uniform(lo, hi))
    elif d in ("log_uniform_values", "q_log_uniform_values"):  # min and max are the values' bounds
        value = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    elif d == "inv_log_uniform":
        value = math.exp(-rng.uniform(lo, hi))
    elif d == "inv_log_uniform_values":
        value = 1.0 / math.exp(rng.uniform(math.log(1.0 / hi), math.log(1.0 / lo)))
    elif d in ("normal", "q_normal"):
        value = rng.gauss(spec["mu"], spec["sigma"])
    elif d in ("log_normal", "q_log_normal"):
        value = math.exp(rng.gauss(spec["mu"], spec["sigma"]))
    else:  # beta, q_beta
        value = rng.betavariate(spec["a"], spec["b"])
    return _quantize(value, spec["q"]) if d.startswith("q_") else value


def sample(config: Mapping[str, Any], rng: _random.Random | None = None) -> dict[str, Any]:
    """A random-search suggestion for a validated configuration, as a nested config."""
    rng = rng or _random.Random()
    return nest({name: sample_one(spec, rng) for name, spec in flatten(config["parameters"]).items()})
