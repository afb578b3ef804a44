"""Dagster integration: resources, an IO manager that versions every asset output, and sensors on the
event feed, and sweeps whose trials are Dagster steps. This is the only package of wandb_dagster that imports dagster.

    >>> import dagster as dg
    >>> from wandb_dagster.dagster import WandbArtifactIOManager, WandbResource
    >>> wandb = WandbResource(project="bikes")
    >>> resources = {"wandb": wandb, "io_manager": WandbArtifactIOManager(wandb=wandb)}

See the README ("Dagster") for the options, the sensors and the trust model.
"""

from wandb_dagster.dagster.checks import wandb_blob_check, wandb_threshold_check
from wandb_dagster.dagster.io_manager import (
    Reference,
    WandbArtifactIOManager,
    WandbIOManagerError,
    load_artifact_object,
)
from wandb_dagster.dagster.launch import publish_jobs, wandb_launch_agent
from wandb_dagster.dagster.names import collection_name
from wandb_dagster.dagster.observations import wandb_observable_source_asset
from wandb_dagster.dagster.options import InputOptions, LinkTarget, OutputOptions
from wandb_dagster.dagster.resources import Promotion, WandbResource, WandbWorkspaceError, wandb_failure_hook
from wandb_dagster.dagster.run_sensor import wandb_run_sensor
from wandb_dagster.dagster.sensors import version_matches, wandb_alias_sensor, wandb_artifact_sensor
from wandb_dagster.dagster.sweeps import (
    SWEEP_IO_MANAGER_KEY,
    SweepBest,
    SweepTrial,
    trial_concurrency_limits,
    wandb_sweep_graph,
    wandb_sweep_job,
    wandb_sweep_sensor,
)
from wandb_dagster.dagster.validation import validate_definitions

__all__ = [
    "InputOptions",
    "LinkTarget",
    "OutputOptions",
    "Promotion",
    "Reference",
    "SWEEP_IO_MANAGER_KEY",
    "SweepBest",
    "SweepTrial",
    "WandbArtifactIOManager",
    "WandbIOManagerError",
    "WandbResource",
    "WandbWorkspaceError",
    "collection_name",
    "load_artifact_object",
    "trial_concurrency_limits",
    "publish_jobs",
    "validate_definitions",
    "version_matches",
    "wandb_alias_sensor",
    "wandb_artifact_sensor",
    "wandb_blob_check",
    "wandb_failure_hook",
    "wandb_launch_agent",
    "wandb_observable_source_asset",
    "wandb_run_sensor",
    "wandb_sweep_graph",
    "wandb_sweep_job",
    "wandb_sweep_sensor",
    "wandb_threshold_check",
]
