"""wandb_dagster: W&B-style experiment tracking, versioned artifacts and a model registry, self-hosted.

Use it as you use ``wandb``::

    >>> import wandb_dagster as wandb
    >>> with wandb.init(project="demo") as run:                    # doctest: +SKIP
    ...     run.log({"loss": 0.1})
    ...     artifact = wandb.Artifact("bike-dataset", type="dataset")
    ...     artifact.add_file("bicycle-data.h5")
    ...     run.log_artifact(artifact)

This package never imports dagster; the Dagster integration lives in ``wandb_dagster.dagster``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wandb_dagster.sdk.artifact import (
    Artifact,
    ArtifactFinalizedError,
    ArtifactNotFoundError,
    ArtifactNotLoggedError,
    ArtifactTTL,
)
from wandb_dagster.sdk.data_types import Histogram, Html, Image, Table, plot_table
from wandb_dagster.sdk.metrics import Metric
from wandb_dagster.sdk.run import Run, current_run, init
from wandb_dagster.sdk.sweeps import agent, sweep
from wandb_dagster.sdk.wandb_setup import Settings, login, setup, teardown

__version__ = "0.1.0"

__all__ = [
    "Api",
    "Artifact",
    "ArtifactFinalizedError",
    "ArtifactNotFoundError",
    "ArtifactNotLoggedError",
    "Histogram",
    "Html",
    "Image",
    "ArtifactTTL",
    "Metric",
    "Run",
    "Settings",
    "Table",
    "agent",
    "define_metric",
    "finish",
    "init",
    "log",
    "log_artifact",
    "log_model",
    "login",
    "plot",
    "plot_table",
    "save",
    "setup",
    "sweep",
    "teardown",
    "use_artifact",
    "use_model",
]


def _active(what: str) -> Run:
    run = current_run()
    if run is None:
        raise RuntimeError(f"You must call wandb.init() before wandb.{what}().")
    return run


def log(data: dict[str, Any], step: int | None = None, commit: bool | None = None) -> None:
    """``wandb.log``: log to the active run."""
    _active("log").log(data, step=step, commit=commit)


def define_metric(
    name: str,
    step_metric: Any = None,
    step_sync: bool | None = None,
    hidden: bool | None = None,
    summary: str | None = None,
    goal: str | None = None,
    overwrite: bool | None = None,
) -> Any:
    """``wandb.define_metric``: :meth:`Run.define_metric` of the active run."""
    return _active("define_metric").define_metric(
        name, step_metric=step_metric, step_sync=step_sync, hidden=hidden, summary=summary, goal=goal,
        overwrite=overwrite,
    )  # fmt: skip


def finish(exit_code: int | None = None, quiet: bool | None = None) -> None:
    """``wandb.finish``: finish the active run, if any."""
    run = current_run()
    if run is not None:
        run.finish(exit_code=exit_code)


def log_artifact(
    artifact_or_path: Any, name: str | None = None, type: str | None = None, aliases: Any = None, tags: Any = None
) -> Artifact:
    return _active("log_artifact").log_artifact(artifact_or_path, name=name, type=type, aliases=aliases, tags=tags)


def use_artifact(
    artifact_or_name: Any, type: str | None = None, aliases: Any = None, use_as: str | None = None
) -> Artifact:
    return _active("use_artifact").use_artifact(artifact_or_name, type=type, aliases=aliases)


def log_model(path: Any, name: str | None = None, aliases: Any = None) -> Artifact:
    return _active("log_model").log_model(path, name=name, aliases=aliases)


def use_model(name: str) -> str:
    return _active("use_model").use_model(name)


def save(glob_str: Any, base_path: Any = None, policy: str = "live", glob: bool = True) -> list[str]:
    """``wandb.save``: :meth:`Run.save` of the active run."""
    return _active("save").save(glob_str, base_path=base_path, policy=policy, glob=glob)


class _PreInit:
    """``wandb.config`` / ``wandb.summary`` before ``init``: any use says what to do."""

    _name: str

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"You must call wandb.init() before using wandb.{self._name}.")

    __getattr__ = __setattr__ = __getitem__ = __setitem__ = __contains__ = __iter__ = __len__ = _fail


if TYPE_CHECKING:
    from wandb_dagster import plot
    from wandb_dagster.api import Api


def __getattr__(name: str) -> Any:
    # The query API and plot presets are imported on first use: the query API needs the store's SQL layer,
    # which plain init + log imports only when the run opens its workspace (issue 17, import time).
    if name == "Api":
        from wandb_dagster.api import Api

        globals()["Api"] = Api
        return Api
    if name == "plot":
        import importlib

        module = importlib.import_module("wandb_dagster.plot")
        globals()["plot"] = module
        return module
    # wandb.run / wandb.config / wandb.summary follow the active run, so they cannot be plain attributes.
    if name == "run":
        return current_run()
    if name in ("config", "summary"):
        run = current_run()
        return _PreInit(name) if run is None else getattr(run, name)
    raise AttributeError(f"module 'wandb_dagster' has no attribute {name!r}")
