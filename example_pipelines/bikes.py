"""A small, real ML pipeline on generated data: bike rentals from weather and time of day.

raw_data -> features (a dataset artifact) -> model (ridge regression; metrics logged to the step's run;
every trained model linked to ``wandb-registry-model/bike-rentals``) -> evaluation (``production`` moves to
the new model when it beats the current production model on the same held-out data).

Jobs: ``refresh_data`` (raw_data, features), ``train_model`` (model, evaluation, scheduled nightly and
started by a sensor on new ``features`` versions), ``deploy_model`` (started by a sensor when the
``production`` alias moves; loads the model by alias), ``sweep_ridge`` (a W&B sweep over the ridge's
``alpha``: one Dagster step per trial, two at a time; the best model is linked to the registry and goes
through the evaluation's promotion). W&B Launch: ``retrain_from_queue``, a launch agent sensor, launches each
retraining enqueued in the run queue ``retraining`` (``Api().job("job-train_model").call(...)``) once.
NumPy only; nothing is downloaded.
"""


from typing import Any

import dagster as dg
import numpy as np

from wandb_dagster import Artifact
from wandb_dagster.dagster import (
    SWEEP_IO_MANAGER_KEY,
    SweepBest,
    WandbArtifactIOManager,
    WandbResource,
    collection_name,
    load_artifact_object,
    trial_concurrency_limits,
    wandb_alias_sensor,
    wandb_artifact_sensor,
    wandb_failure_hook,
    wandb_launch_agent,
    wandb_sweep_graph,
)

PROJECT = "bikes-dagster"
REGISTRY_COLLECTION = "wandb-registry-model/bike-rentals"
RETRAINING_QUEUE = "retraining"  # the W&B Launch run queue the launch agent below serves
PREFIX = ["bikes"]


class RawDataConfig(dg.Config):
    seed: int = 0
    rows: int = 150


class TrainConfig(dg.Config):
    alpha: float = 1.0


@dg.asset(key_prefix=PREFIX, metadata={"wandb": {"type": "raw-data", "tags": ["synthetic"]}})
def raw_data(config: RawDataConfig) -> dict[str, Any]:
    """Hourly rentals with weather: generated with a fixed seed, so equal config gives equal bytes."""
    rng = np.random.default_rng(config.seed)
    n = config.rows
    temperature = rng.uniform(-5, 35, n)
    humidity = rng.uniform(20, 100, n)
    hour = rng.integers(0, 24, n)
    weekday = rng.integers(0, 7, n)
    rush = np.isin(hour, (7, 8, 17, 18)) & (weekday < 5)
    rentals = (
        40 + 6 * temperature - 0.1 * (temperature - 22) ** 2 - 0.3 * humidity + 60 * rush
        + 20 * np.sin(np.pi * hour / 24) + rng.normal(0, 12, n)
    )
    return {"temperature": temperature, "humidity": humidity, "hour": hour, "weekday": weekday,
            "rentals": np.maximum(rentals, 0), "seed": config.seed}


def _design(raw: dict[str, Any]) -> tuple[np.ndarray, list[str]]:
    t = (raw["temperature"] - 15) / 12
    h = (raw["humidity"] - 60) / 25
    hours = np.eye(24)[raw["hour"]]
    days = np.eye(7)[raw["weekday"]]
    names = ["temperature", "humidity", "temperature^2", "temperature*humidity"]
    names += [f"hour={i}" for i in range(24)] + [f"weekday={i}" for i in range(7)]
    # hour x workday interactions: what makes rush hours learnable, and what a small sample overfits
    workday = (raw["weekday"] < 5).astype(float)[:, None]
    names += [f"hour={i}&workday" for i in range(24)]
    x = np.column_stack([t, h, t**2, t * h, hours, days, hours * workday])
    return x, names


@dg.asset(
    key_prefix=PREFIX,
    metadata={"wandb": {"type": "dataset", "description": "Bike rentals design matrix, 80/20 split"}},
)
def features(raw_data: dict[str, Any]) -> dict[str, Any]:
    x, names = _design(raw_data)
    y = raw_data["rentals"]
    order = np.random.default_rng(1234).permutation(len(y))  # fixed split: same data, same bytes
    cut = int(0.8 * len(y))
    train, test = order[:cut], order[cut:]
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test],
            "feature_names": names, "seed": raw_data["seed"]}


def _rmse(model: dict[str, Any], x: np.ndarray, y: np.ndarray) -> float:
    pred = x @ model["weights"] + model["bias"]
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def _fit(x: np.ndarray, y: np.ndarray, alpha: float) -> dict[str, Any]:
    mean = y.mean()
    weights = np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ (y - mean))
    return {"weights": weights, "bias": float(mean), "alpha": alpha}


@dg.asset(
    key_prefix=PREFIX,
    metadata={
        "wandb": {"type": "model", "link_to": [{"target": REGISTRY_COLLECTION}], "metadata": {"framework": "numpy"}}
    },
)
def model(config: TrainConfig, features: dict[str, Any], wandb: WandbResource) -> dict[str, Any]:
    """Ridge regression, closed form. The learning curve and the training error go to the step's run."""
    run = wandb.run()
    x, y = features["x_train"], features["y_train"]
    for fraction in (0.25, 0.5, 0.75, 1.0):
        n = max(int(fraction * len(y)), 2)
        partial = _fit(x[:n], y[:n], config.alpha)
        test_rmse = _rmse(partial, features["x_test"], features["y_test"])
        run.log({"train_rows": n, "train_rmse": _rmse(partial, x[:n], y[:n]), "test_rmse": test_rmse})
    fitted = _fit(x, y, config.alpha)
    fitted["feature_names"] = features["feature_names"]
    run.summary["train_rows"] = len(y)
    return fitted


@dg.asset(
    key_prefix=PREFIX,
    ins={"model": dg.AssetIn(key=PREFIX + ["model"], metadata={"wandb": {"load_as": "artifact"}})},
    metadata={"wandb": {"type": "evaluation", "serializer": "json"}},
)
def evaluation(
    context: dg.AssetExecutionContext, model: Artifact, features: dict[str, Any], wandb: WandbResource
) -> dict[str, Any]:
    """Test error of the new model and of the current production model, on the same held-out rows; moves
    ``production`` to the new model when it is better."""
    return _promote_if_better(context, model, features, wandb)


def _promote_if_better(context: Any, model: Artifact, features: dict[str, Any], wandb: WandbResource) -> dict[str, Any]:
    """The promotion path of the trained model and of the sweep's best: compare with production on the same
    held-out rows and move ``production`` when the candidate is better."""
    candidate = load_artifact_object(model)
    rmse = _rmse(candidate, features["x_test"], features["y_test"])
    current = wandb.holder(REGISTRY_COLLECTION, "production")
    production_rmse = None
    if current is not None:
        production_rmse = _rmse(load_artifact_object(current), features["x_test"], features["y_test"])
    better = current is None or (current.id != model.id and production_rmse is not None and rmse < production_rmse)
    run = wandb.run()
    run.log({"test_rmse": rmse, **({"production_rmse": production_rmse} if production_rmse is not None else {})})
    result = {"model": model.qualified_name, "rmse": round(rmse, 4), "promoted": better,
              "production_rmse": None if production_rmse is None else round(production_rmse, 4),
              "previous_production": None}
    if better:
        promotion = wandb.promote(model, REGISTRY_COLLECTION, alias="production")
        result["previous_production"] = promotion.previous.qualified_name if promotion.previous else None
        context.log.info(f"production -> {promotion.current.qualified_name} (was {result['previous_production']})")
    return result


# A sweep over the ridge's regularization: each alpha is a trial (a Dagster step and a run of the sweep), chosen
# on a validation split of the training rows; the best model is linked to the registry and then goes through
# the same promotion as the trained model (compared with production on the held-out rows).
RIDGE_SWEEP = {
    "method": "grid",
    "metric": {"name": "val_rmse", "goal": "minimize"},
    "parameters": {"alpha": {"values": [0.1, 1.0, 10.0, 100.0]}},
}


def _features_in(run: Any) -> dict[str, Any]:
    """The latest features, used by ``run`` (lineage: the trial's run used this dataset version)."""
    return load_artifact_object(run.use_artifact(f"{collection_name(features.key)}:latest"))


def train_ridge_trial(run: Any) -> dict[str, Any]:
    """One trial: fit on 80% of the training rows, score on the other 20% (val_rmse, the sweep's metric), then
    refit on every training row, as the ``model`` asset does, so the best trial's model is comparable."""
    data = _features_in(run)
    x, y = data["x_train"], data["y_train"]
    cut = int(0.8 * len(y))
    alpha = float(run.config["alpha"])
    partial = _fit(x[:cut], y[:cut], alpha)
    run.log({"val_rmse": _rmse(partial, x[cut:], y[cut:]), "train_rmse": _rmse(partial, x[:cut], y[:cut])})
    fitted = _fit(x, y, alpha)
    fitted["feature_names"] = data["feature_names"]
    return fitted


ridge_sweep = wandb_sweep_graph(
    "ridge_sweep", RIDGE_SWEEP, train_ridge_trial, model_name="ridge-sweep-model", link_to=REGISTRY_COLLECTION
)


@dg.op(out=dg.Out(io_manager_key=SWEEP_IO_MANAGER_KEY))
def promote_sweep_best(context: dg.OpExecutionContext, best: SweepBest, wandb: WandbResource) -> dict[str, Any]:
    """The sweep's best model through the same promotion as the trained model."""
    run = wandb.run()
    result = _promote_if_better(context, run.use_artifact(best.artifact), _features_in(run), wandb)
    return {**result, "sweep": best.sweep, "best_params": best.params, "val_rmse": round(best.value, 4),
            "trials": best.trials}


@dg.job(
    executor_def=dg.multiprocess_executor.configured(
        {"tag_concurrency_limits": trial_concurrency_limits("ridge_sweep", 2)}  # two trials at a time
    ),
    hooks={wandb_failure_hook},
)
def sweep_ridge() -> None:
    promote_sweep_best(ridge_sweep())


class DeployConfig(dg.Config):
    expected: str = ""  # the version the sensor saw move; the deploy loads by alias and checks it


@dg.op
def deploy(context: dg.OpExecutionContext, config: DeployConfig, wandb: WandbResource) -> dict[str, Any]:
    """Load the production model by alias and 'serve' it (record what is served in the run summary)."""
    run = wandb.run()
    served = run.use_artifact(f"{REGISTRY_COLLECTION}:production")
    params = load_artifact_object(served)
    if config.expected and served.id != wandb.artifact(config.expected).id:
        context.log.warning(
            f"production moved again since {config.expected}; deploying the newer {served.qualified_name}"
        )
    run.summary["deployed"] = served.qualified_name
    return {
        "deployed": served.qualified_name,
        "source": served.source_qualified_name,
        "n_weights": len(params["weights"]),
    }


@dg.job(hooks={wandb_failure_hook})
def deploy_model() -> None:
    deploy()


# The failure hook marks a failed step's tracking run "failed" (Dagster tells resources nothing about outcomes).
refresh_data = dg.define_asset_job("refresh_data", selection=[raw_data, features], hooks={wandb_failure_hook})
train_model = dg.define_asset_job("train_model", selection=[model, evaluation], hooks={wandb_failure_hook})
nightly_retraining = dg.ScheduleDefinition(name="nightly_retraining", job=train_model, cron_schedule="0 3 * * *")

retrain_on_new_features = wandb_artifact_sensor(
    name="retrain_on_new_features",
    collection=collection_name(features.key),
    job=train_model,
    version_filter={"metadata.dagster.kind": "object"},
)
deploy_on_production = wandb_alias_sensor(
    name="deploy_on_production",
    collection=REGISTRY_COLLECTION,
    alias="production",
    job=deploy_model,
    run_config_fn=lambda event: {"ops": {"deploy": {"config": {"expected": event.artifact_name}}}},
)

# W&B Launch: ML engineers enqueue retrainings (Api().job("job-train_model").call(queue="retraining")); this
# agent launches each once, one at a time.
retrain_from_queue = wandb_launch_agent(
    name="retrain_from_queue", queue=RETRAINING_QUEUE, jobs=[train_model], max_concurrent=1
)


def make_definitions(wandb: WandbResource | None = None) -> dg.Definitions:
    wandb = wandb or WandbResource(project=PROJECT)
    return dg.Definitions(
        assets=[raw_data, features, model, evaluation],
        jobs=[refresh_data, train_model, deploy_model, sweep_ridge],
        schedules=[nightly_retraining],
        sensors=[retrain_on_new_features, deploy_on_production, retrain_from_queue],
        resources={
            "wandb": wandb,
            "io_manager": WandbArtifactIOManager(wandb=wandb),
            # The sweep's trials pass their models to its best step through files, not W&B versions.
            SWEEP_IO_MANAGER_KEY: dg.FilesystemIOManager(),
        },
    )
