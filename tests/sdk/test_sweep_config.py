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
    assert sc.validate({"method": "random", "parameters": {"w": {"mu": 1}}})["parameters"]["w"] == {
        "distribution": "normal", "mu": 1, "sigma": 1.0,
    }
    assert sc.validate(WANDB_DOCS_RANDOM)["metric"] == {"goal": "minimize", "name": "validation_loss"}
    assert sc.validate({"method": "grid", "metric": {"name": "acc"}, "parameters": {"x": {"value": 1}}})[
        "metric"
    ]["goal"] == "minimize"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"parameters": {"x": {"value": 1}}}, r"method: None is not one of \['grid', 'random', 'bayes'\]"),
        ({"method": "hyper", "parameters": {"x": {"value": 1}}}, "method: 'hyper' is not one of"),
        ({"method": "bayes", "parameters": {"x": {"value": 1}}}, "method: 'bayes' is not supported yet"),
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
