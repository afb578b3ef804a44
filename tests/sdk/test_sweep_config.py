"""W&B sweep configurations: validation (the key and the rule named), inference, grid order, sampling."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from wandb_dagster.sdk import sweep_config as sc

# Configurations from W&B's documentation ("Define a sweep configuration", "Sweep configuration options").
WANDB_DOCS_RANDOM = {
    "method": "random",
    "name": "sweep",
    "metric": {"goal": "minimize", "name": "validation_loss"},
    "parameters": {
        "batch_size": {"values": [16, 32, 64]},
        "epochs": {"values": [5, 10, 15]},
        "lr": {"max": 0.1, "min": 0.0001},
    },
}
WANDB_DOCS_NESTED = {
    "method": "random",
    "metric": {"goal": "minimize", "name": "loss"},
    "parameters": {
        "optimizer": {
            "parameters": {
                "learning_rate": {"values": [0.01, 0.001]},
                "momentum": {"value": 0.9},
            }
        },
        "epochs": {"value": 5},
    },
}
WANDB_DOCS_DISTRIBUTIONS = {
    "method": "random",
    "parameters": {
        "learning_rate": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
        "batch_size": {"distribution": "q_log_uniform_values", "q": 8, "min": 32, "max": 256},
        "dropout": {"values": [0.3, 0.4, 0.5], "probabilities": [0.5, 0.25, 0.25]},
        "weight_decay": {"distribution": "normal", "mu": 0.0, "sigma": 0.01},
        "momentum": {"distribution": "beta", "a": 2, "b": 5},
        "width": {"distribution": "q_uniform", "min": 16, "max": 1024, "q": 16},
        "layers": {"distribution": "int_uniform", "min": 1, "max": 4},
        "alpha": {"distribution": "q_normal", "mu": 10, "sigma": 3, "q": 2},
        "scale": {"distribution": "log_normal", "mu": 0, "sigma": 1},
        "scale_q": {"distribution": "q_log_normal", "mu": 2, "sigma": 1, "q": 1},
        "frac": {"distribution": "q_beta", "a": 1, "b": 1, "q": 0.1},
        "constant": {"distribution": "constant", "value": "x"},
        "choice": {"distribution": "categorical", "values": ["a", "b"]},
        "plain": {"distribution": "uniform", "min": 0, "max": 1},
        "log_exponents": {"distribution": "q_log_uniform", "min": math.log(32), "max": math.log(256), "q": 1},
    },
}


def test_distributions_are_inferred_as_wandb_does() -> None:
    params = sc.validate(WANDB_DOCS_RANDOM)["parameters"]
    assert params["batch_size"]["distribution"] == "categorical"
    assert params["lr"]["distribution"] == "uniform"
    int_range = sc.validate({"method": "random", "parameters": {"n": {"min": 1, "max": 5}, "c": {"value": 3}}})
    assert int_range["parameters"]["n"]["distribution"] == "int_uniform"
    assert int_range["parameters"]["c"]["distribution"] == "constant"
    # One float bound makes it a float range.
    mixed = sc.validate({"method": "random", "parameters": {"n": {"min": 1, "max": 5.0}}})
    assert mixed["parameters"]["n"]["distribution"] == "uniform"
    # W&B's schema infers nothing from mu/sigma: a normal parameter names its distribution.
    assert sc.validate({"method": "random", "parameters": {"w": {"distribution": "normal", "mu": 1}}})[
        "parameters"
    ]["w"] == {"distribution": "normal", "mu": 1, "sigma": 1.0}
    with pytest.raises(ValueError, match="parameters.w: cannot tell its distribution .* add 'distribution'"):
        sc.validate({"method": "random", "parameters": {"w": {"mu": 1}}})
    assert sc.validate(WANDB_DOCS_RANDOM)["metric"] == {"goal": "minimize", "name": "validation_loss", "impute": "worst"}
    assert sc.validate({"method": "grid", "metric": {"name": "acc"}, "parameters": {"x": {"value": 1}}})[
        "metric"
    ]["goal"] == "minimize"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"parameters": {"x": {"value": 1}}}, r"method: None is not one of \['grid', 'random', 'bayes'\]"),
        ({"method": "hyper", "parameters": {"x": {"value": 1}}}, "method: 'hyper' is not one of"),
        ({"method": "bayes", "parameters": {"x": {"value": 1}}}, "metric: bayes search requires a metric"),
        ({"method": "grid"}, "parameters: required"),
        ({"method": "grid", "parameters": {"x": {"value": 1}}, "colour": 1}, r"unknown key\(s\) \['colour'\]"),
        ({"method": "grid", "metric": {"goal": "up", "name": "l"}, "parameters": {"x": {"value": 1}}},
         "metric.goal: 'up' is not one of"),
        ({"method": "grid", "metric": {"goal": "minimize"}, "parameters": {"x": {"value": 1}}}, "metric.name"),
        ({"method": "grid", "run_cap": 0, "parameters": {"x": {"value": 1}}}, "run_cap: 0 must be a positive integer"),
        ({"method": "random", "parameters": {"lr": {"min": 0.1}}}, "parameters.lr: cannot tell its distribution"),
        ({"method": "random", "parameters": {"lr": {"min": 0.5, "max": 0.1}}}, "parameters.lr: min 0.5 must be below"),
        ({"method": "random", "parameters": {"lr": {"distribution": "gamma", "min": 0, "max": 1}}},
         "parameters.lr.distribution: 'gamma' is not one of"),
        ({"method": "random", "parameters": {"lr": {"distribution": "log_uniform_values", "min": 0, "max": 1}}},
         "parameters.lr.min: 0 must be positive"),
        ({"method": "random", "parameters": {"n": {"distribution": "int_uniform", "min": 0.5, "max": 3}}},
         "parameters.n.min: 0.5 must be an integer"),
        ({"method": "random", "parameters": {"d": {"values": [1, 2], "probabilities": [0.5, 0.6]}}},
         "parameters.d.probabilities: .* must sum to 1"),
        ({"method": "random", "parameters": {"d": {"values": [1, 2], "probabilities": [1.0]}}},
         "parameters.d.probabilities: .* list of 2"),
        ({"method": "random", "parameters": {"d": {"values": []}}}, "parameters.d.values: .* non-empty list"),
        ({"method": "random", "parameters": {"d": {"value": 1, "min": 0}}}, r"\['min'\] do not apply"),
        ({"method": "random", "parameters": {"o": {"parameters": {"lr": {"max": 1}}}}},
         "parameters.o.parameters.lr: cannot tell"),
        ({"method": "grid", "parameters": {"lr": {"min": 0.0, "max": 1.0}}},
         "parameters.lr: distribution 'uniform' cannot be searched by grid"),
        ({"method": "random", "parameters": {"s": {"distribution": "normal", "sigma": -1}}},
         "parameters.s.sigma: -1 must be positive"),
        # W&B's validate_min_max refuses min == max for every distribution, int_uniform included.
        ({"method": "random", "parameters": {"n": {"min": 3, "max": 3}}}, "parameters.n: min 3 must be below max 3"),
        # W&B's grid search refuses categorical parameters with probabilities.
        ({"method": "grid", "parameters": {"d": {"values": [1, 2], "probabilities": [0.5, 0.5]}}},
         "parameters.d.probabilities: grid search tries every value once"),
        ({"method": "random", "metric": {"name": "l", "impute": "mean"}, "parameters": {"x": {"value": 1}}},
         "metric.impute: 'mean' is not one of"),
    ],
)
def test_an_invalid_configuration_names_the_key_and_the_rule(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sc.validate(config)


def test_the_documented_configurations_are_valid() -> None:
    for config in (WANDB_DOCS_RANDOM, WANDB_DOCS_NESTED, WANDB_DOCS_DISTRIBUTIONS):
        sc.validate(config)


def test_grid_order_is_the_product_with_the_last_parameter_fastest() -> None:
    config = sc.validate({
        "method": "grid",
        "parameters": {
            "a": {"values": [1, 2]}, "k": {"value": "const"}, "n": {"min": 0, "max": 2},
            "opt": {"parameters": {"q": {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.5}}},
        },
    })  # fmt: skip
    points = sc.grid_points(config)
    assert len(points) == 2 * 3 * 2
    assert points[:3] == [
        {"a": 1, "k": "const", "n": 0, "opt": {"q": 0}},
        {"a": 1, "k": "const", "n": 0, "opt": {"q": 0.5}},
        {"a": 1, "k": "const", "n": 1, "opt": {"q": 0}},
    ]
    assert points[-1] == {"a": 2, "k": "const", "n": 2, "opt": {"q": 0.5}}


def test_random_sampling_follows_each_distribution() -> None:
    config = sc.validate(WANDB_DOCS_DISTRIBUTIONS)
    rng = random.Random(7)
    samples = [sc.sample(config, rng) for _ in range(2000)]
    lr = [s["learning_rate"] for s in samples]
    assert all(1e-5 <= v <= 1e-1 for v in lr)
    # log_uniform_values: uniform in the logarithm, so about half the samples fall below the geometric mean.
    below = sum(v < math.sqrt(1e-5 * 1e-1) for v in lr) / len(lr)
    assert 0.45 < below < 0.55
    assert all(s["batch_size"] % 8 == 0 and isinstance(s["batch_size"], int) for s in samples)
    dropout = Counter(s["dropout"] for s in samples)
    assert 0.45 < dropout[0.3] / 2000 < 0.55 and set(dropout) == {0.3, 0.4, 0.5}
    assert all(s["width"] % 16 == 0 and 16 <= s["width"] <= 1024 for s in samples)
    assert {s["layers"] for s in samples} == {1, 2, 3, 4}
    assert all(0 <= s["momentum"] <= 1 for s in samples)
    assert abs(sum(s["momentum"] for s in samples) / 2000 - 2 / 7) < 0.02  # beta(2, 5)'s mean
    assert abs(sum(s["weight_decay"] for s in samples) / 2000) < 0.002
    assert all(s["alpha"] % 2 == 0 for s in samples)
    assert all(s["scale"] > 0 for s in samples)
    assert all(32 <= s["log_exponents"] <= 256 and isinstance(s["log_exponents"], int) for s in samples)
    assert all(s["constant"] == "x" for s in samples)
    nested = sc.sample(sc.validate(WANDB_DOCS_NESTED), rng)
    assert nested["optimizer"]["momentum"] == 0.9 and nested["optimizer"]["learning_rate"] in (0.01, 0.001)
    assert nested["epochs"] == 5


def test_a_yaml_file_is_read(tmp_path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text("method: grid\nparameters:\n  lr:\n    values: [0.1, 0.01]\n")
    assert sc.load(str(path)) == {"method": "grid", "parameters": {"lr": {"values": [0.1, 0.01]}}}
    with pytest.raises(ValueError, match="does not exist"):
        sc.load(str(tmp_path / "missing.yaml"))


def test_grid_order_sorts_parameter_names_at_every_level_as_wandb() -> None:
    # W&B's HyperParameterSet.from_config walks sorted(parameters.items()), recursively: the configuration's
    # own order does not matter, and the last name in sorted order varies fastest.
    config = sc.validate({
        "method": "grid",
        "parameters": {
            "v2": {"values": [4, 5]},
            "opt": {"parameters": {"z": {"values": ["a", "b"]}, "beta": {"values": [0.9, 0.99]}}},
            "v1": {"values": [1, 2, 3]},
        },
    })  # fmt: skip
    assert list(sc.flatten(config["parameters"])) == ["opt.beta", "opt.z", "v1", "v2"]
    points = sc.grid_points(config)
    assert len(points) == 24
    assert [(p["opt"]["beta"], p["opt"]["z"], p["v1"], p["v2"]) for p in points[:5]] == [
        (0.9, "a", 1, 4), (0.9, "a", 1, 5), (0.9, "a", 2, 4), (0.9, "a", 2, 5), (0.9, "a", 3, 4),
    ]  # fmt: skip
    # W&B's own test (sweeps tests/test_grid_search.py): v1 [1, 2, 3] x v2 [4, 5] in this order.
    two = sc.validate({"method": "grid", "parameters": {"v2": {"values": [4, 5]}, "v1": {"values": [1, 2, 3]}}})
    assert [(p["v1"], p["v2"]) for p in sc.grid_points(two)] == [(1, 4), (1, 5), (2, 4), (2, 5), (3, 4), (3, 5)]
    # ...and list values are values like any other.
    lists = sc.validate({"method": "grid", "parameters": {"v1": {"values": ["", [9, 5]]}, "v2": {"values": [256, 512]}}})
    assert [(p["v1"], p["v2"]) for p in sc.grid_points(lists)] == [("", 256), ("", 512), ([9, 5], 256), ([9, 5], 512)]


def test_grid_points_are_recognised_by_value_as_wandb_yaml_hash() -> None:
    # yaml_hash turns an integral float into an int: 3.0 and 3 are one point, tried once.
    config = sc.validate({"method": "grid", "parameters": {"x": {"values": [3, 3.0, 4]}}})
    assert sc.grid_points(config) == [{"x": 3}, {"x": 4}]
    assert sc.value_key({"b": 1.0, "a": [2.0]}) == sc.value_key({"a": [2], "b": 1})
    # W&B's test_grid_search_starting_from_in_progress: runs that already hold (2, 4) and (1, 5) take them.
    two = sc.validate({"method": "grid", "parameters": {"v1": {"values": [1, 2, 3]}, "v2": {"values": [4, 5]}}})
    covered = sc.grid_indices_covered(two, [{"v1": 2, "v2": 4}, {"v1": 1.0, "v2": 5, "other": 1}, {"v1": 9}])
    assert sorted(covered) == [1, 2]


def test_grid_q_uniform_is_numpy_arange_and_int_uniform_is_inclusive() -> None:
    # W&B: q_uniform -> np.arange(min, max, q).tolist() (max excluded), int_uniform -> range(min, max + 1).
    config = sc.validate({
        "method": "grid",
        "parameters": {
            "a": {"distribution": "q_uniform", "min": 0, "max": 10, "q": 4},
            "b": {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.25},
            "c": {"min": 1, "max": 3},
        },
    })  # fmt: skip
    points = sc.grid_points(config)
    assert sorted({p["a"] for p in points}) == [0, 4, 8]
    assert all(isinstance(p["a"], int) for p in points)
    assert sorted({p["b"] for p in points}) == [0.0, 0.25, 0.5, 0.75]
    assert sorted({p["c"] for p in points}) == [1, 2, 3]


@pytest.mark.parametrize(
    ("spec", "check"),
    [
        # W&B's ppf: np.round(x / q) * q, and .astype(int) when q is an int.
        ({"distribution": "q_uniform", "min": 0, "max": 10, "q": 3}, lambda v: isinstance(v, int) and v in (0, 3, 6, 9)),
        ({"distribution": "q_uniform", "min": 0, "max": 10, "q": 3.0}, lambda v: isinstance(v, float) and v % 3 == 0),
        # round-half-even like numpy: q_uniform 0..1 with q 1 gives only 0 and 1.
        ({"distribution": "q_uniform", "min": 0, "max": 1}, lambda v: v in (0.0, 1.0)),
        ({"distribution": "q_log_uniform_values", "min": 1, "max": 1000, "q": 10},
         lambda v: isinstance(v, int) and v % 10 == 0 and 0 <= v <= 1000),
        ({"distribution": "q_normal", "mu": 0, "sigma": 5, "q": 2}, lambda v: isinstance(v, int) and v % 2 == 0),
        ({"distribution": "q_log_normal", "mu": 1, "sigma": 0.5, "q": 0.5}, lambda v: isinstance(v, float) and v % 0.5 == 0),
        ({"distribution": "q_beta", "a": 2, "b": 2, "q": 0.1}, lambda v: 0 <= v <= 1),
        # log_uniform takes exponents: values between e^0 and e^2.
        ({"distribution": "log_uniform", "min": 0, "max": 2}, lambda v: 1 <= v <= math.exp(2)),
        # inv_log_uniform_values: 1 / exp(U(log(1/max), log(1/min))), so between min and max.
        ({"distribution": "inv_log_uniform_values", "min": 0.01, "max": 1}, lambda v: 0.01 <= v <= 1),
        ({"distribution": "inv_log_uniform", "min": 0, "max": 2}, lambda v: math.exp(-2) <= v <= 1),
        ({"min": 2, "max": 5}, lambda v: isinstance(v, int) and 2 <= v <= 5),  # inferred int_uniform
        ({"min": 2, "max": 5.0}, lambda v: isinstance(v, float) and 2 <= v <= 5),  # inferred uniform
        ({"values": ["a", "b"], "probabilities": [0.0, 1.0]}, lambda v: v == "b"),
        ({"values": ["a", "b"], "probabilities": [1.0, 0.0], "distribution": "categorical_w_probabilities"},
         lambda v: v == "a"),
    ],
)
def test_random_sampling_rounds_and_types_values_as_wandb(spec: dict, check) -> None:
    config = sc.validate({"method": "random", "parameters": {"p": spec}})
    rng = random.Random(3)
    values = [sc.sample(config, rng)["p"] for _ in range(300)]
    assert all(check(v) for v in values), values[:10]


def test_log_uniform_values_doc_example_is_uniform_in_the_logarithm() -> None:
    # W&B docs (sweep-config-keys, "distribution"): log_uniform_values between min and max.
    config = sc.validate({"method": "random", "parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1}}})
    rng = random.Random(11)
    decades = Counter(math.floor(math.log10(sc.sample(config, rng)["lr"])) for _ in range(3000))
    assert set(decades) == {-4, -3, -2}
    assert all(abs(count / 3000 - 1 / 3) < 0.04 for count in decades.values())


def test_metric_target_ends_the_search_once_a_trial_reaches_it(ws_env) -> None:
    # W&B docs (sweep-config-keys, metric.target): no new runs once a run reaches the target value.
    import wandb_dagster as wandb

    sweep_id = wandb.sweep(
        {"method": "grid", "metric": {"name": "loss", "goal": "minimize", "target": 0.5},
         "parameters": {"x": {"values": [3, 2, 0, 1]}}},
        project="target",
    )  # fmt: skip
    ran: list[int] = []

    def train() -> None:
        with wandb.init() as run:
            ran.append(run.config["x"])
            run.log({"loss": float(run.config["x"])})

    wandb.agent(sweep_id, function=train, project="target")
    assert ran == [3, 2, 0]  # grid order is by value as given; the trial with loss 0 reached the target
    assert wandb.Api().sweep(f"target/{sweep_id}").state == "FINISHED"


def test_command_macros_as_wandb_create_sweep_command_args(tmp_path, monkeypatch) -> None:
    # wandb/sdk/launch/sweeps/utils.py create_sweep_command_args: str() of each value, booleans dropped or
    # bare in args_no_boolean_flags, hydra's + and ++ forms, a nested parameter as one argument.
    import json
    import sys

    from wandb_dagster.sdk import sweep_command

    params = {"lr": 0.1, "fast": True, "slow": False, "opt": {"beta": 0.9}, "n": None}
    m = sweep_command.macros(params)
    assert m["args"] == ["--lr=0.1", "--fast=True", "--slow=False", "--opt={'beta': 0.9}", "--n=None"]
    assert m["args_no_hyphens"] == ["lr=0.1", "fast=True", "slow=False", "opt={'beta': 0.9}", "n=None"]
    assert m["args_no_equals"] == ["--lr", "0.1", "--fast", "True", "--slow", "False", "--opt", "{'beta': 0.9}", "--n", "None"]
    assert m["args_no_boolean_flags"] == ["--lr=0.1", "--fast", "--opt={'beta': 0.9}", "--n=None"]
    assert m["args_append_hydra"][0] == "+lr=0.1" and m["args_override_hydra"][0] == "++lr=0.1"
    assert json.loads(m["args_json"][0]) == params
    # The default command, W&B's ${env} ${interpreter} ${program} ${args}; the param file W&B writes.
    argv, files = sweep_command.build({"program": "train.py"}, {"lr": 0.1}, sweep_id="s1", run_id="r1", base_dir=str(tmp_path))
    assert argv == ["/usr/bin/env", sys.executable, "train.py", "--lr=0.1"]
    assert files["param_path"] == str(tmp_path / "wandb" / "sweep-s1" / "config-r1.yaml")
    assert "wandb_version: 1" in (tmp_path / "wandb" / "sweep-s1" / "config-r1.yaml").read_text()
    # W&B docs ("How do I use custom CLI commands with sweeps?"): literal elements stay as they are.
    monkeypatch.setenv("DATA", "/data")
    argv, _ = sweep_command.build(
        {"program": "train.py", "command": ["${env}", "python3", "${program}", "-b", "your-training-config", "${args}", "--root=${envvar:DATA}"]},
        {"batch_size": 8, "lr": 0.0001}, sweep_id="s1", run_id="r2", base_dir=str(tmp_path),
    )  # fmt: skip
    assert argv == ["/usr/bin/env", "python3", "train.py", "-b", "your-training-config", "--batch_size=8", "--lr=0.0001", "--root=/data"]
