"""W&B Launch on Dagster: jobs, run queues and queued runs (the api level; the agent is a Dagster sensor,
``wandb_dagster.dagster.wandb_launch_agent``). See the README, "Launch".

>>> from wandb_dagster.launch import launch_add                                        # doctest: +SKIP
>>> queued = launch_add(job="bikes/job-train:latest", queue_name="training",  # doctest: +SKIP
...                     template_variables={"epochs": 5})
"""

from wandb_dagster.launch.jobs import Job, job_name, job_spec, list_jobs, publish_job
from wandb_dagster.launch.queues import (
    ACCEPTED_RESOURCE_TYPES,
    PRIORITIES,
    RESOURCE_TYPES,
    LaunchError,
    QueuedRun,
    RunQueue,
    launch_add,
)
from wandb_dagster.launch.templates import TemplateVariableError

__all__ = [
    "ACCEPTED_RESOURCE_TYPES",
    "PRIORITIES",
    "RESOURCE_TYPES",
    "Job",
    "LaunchError",
    "QueuedRun",
    "RunQueue",
    "TemplateVariableError",
    "job_name",
    "job_spec",
    "launch_add",
    "list_jobs",
    "publish_job",
]
