"""W&B Launch jobs: a versioned artifact of type ``job`` that names a Dagster job.

A job's content is one file, ``wandb-job.json`` (W&B's name for it), holding its *spec*::

    {"_version": "v0", "source_type": "dagster",
     "source": {"code_location": "bikes", "job": "train", "git": {"commit": "3f2a...", "remote": "..."}},
     "input_types": {"run_config_schema": {...}}}

The spec is written with sorted keys and nothing that changes between publications (no timestamps), so
publishing unchanged definitions again logs identical content, which the SDK's commit deduplicates: no
new version (the artifact guarantees of the README). The same spec is in the version's metadata under
``"launch"``, so reading a job needs no download. ``wandb_dagster.dagster.publish_jobs`` builds specs from
a ``Definitions``; :func:`publish_job` logs one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from wandb_dagster.sdk.artifact import Artifact

if TYPE_CHECKING:
    from wandb_dagster.api.api import Api
    from wandb_dagster.launch.queues import QueuedRun
    from wandb_dagster.sdk.workspace import Workspace

JOB_TYPE = "job"
JOB_FILE = "wandb-job.json"
SPEC_KEY = "launch"
# The top-level keys of a Dagster run config; a job's call(config=...) may use only these.
RUN_CONFIG_KEYS = ("ops", "resources", "execution", "loggers")


def job_name(dagster_job: str) -> str:
    """The artifact name of a Dagster job's W&B job: ``job-<name>``, as W&B names the jobs it makes."""
    return f"job-{dagster_job}"


def job_spec(
    *, dagster_job: str, code_location: str | None, run_config_schema: Mapping[str, Any], git: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The spec of a job (see the module docstring)."""
    return {
        "_version": "v0",
        "source_type": "dagster",
        "source": {"code_location": code_location, "job": dagster_job, "git": dict(git) if git else None},
        "input_types": {"run_config_schema": dict(run_config_schema)},
    }


def publish_job(ws: Workspace, *, entity: str, project: str, spec: Mapping[str, Any]) -> Artifact:
    """Log ``spec`` as job ``job-<dagster job>`` in ``entity/project``: a new version only when the spec
    changed (an unchanged one resolves to the version that holds it, which becomes ``latest`` again)."""
    from wandb_dagster.sdk.commit import commit_artifact

    name = job_name(spec["source"]["job"])
    artifact = Artifact(name, type="dagster-job", metadata={SPEC_KEY: dict(spec)})
    # "job" is reserved for users (names.validate_type) because W&B's SDK alone makes jobs: set it as W&B's
    # InternalArtifact does (and as sdk/data_types/table.py sets its run-table types).
    artifact._type = JOB_TYPE
    with artifact.new_file(JOB_FILE, mode="w", encoding="utf-8") as f:
        f.write(json.dumps(spec, sort_keys=True, indent=2))
    return commit_artifact(ws, artifact, entity=entity, project=project, aliases=["latest"], tags=[], run_pk=None)


class Job:
    """A W&B job (``Api().job(name)``): ``name`` (``job-<dagster job>:vN``), ``dagster_job``,
    ``code_location``, ``source`` (with the git commit, when there was one), ``run_config_schema``, and
    :meth:`call`, which enqueues a run of it, as W&B's ``Job.call``.

    >>> job = wandb.Api().job("bikes/job-train:latest")                           # doctest: +SKIP
    >>> queued = job.call(config={"ops": {"train": {"config": {"lr": 0.1}}}}, queue="training")  # doctest: +SKIP
    """

    def __init__(self, api: Api, artifact: Artifact) -> None:
        if artifact.type != JOB_TYPE:
            raise ValueError(
                f"artifact {artifact.qualified_name!r} has type {artifact.type!r}, not a job ({JOB_TYPE!r})"
            )
        spec = artifact.metadata.get(SPEC_KEY)
        if not isinstance(spec, dict) or spec.get("source_type") != "dagster":
            raise ValueError(
                f"job {artifact.qualified_name!r} is not a Dagster job published by wandb_dagster (no "
                f"metadata[{SPEC_KEY!r}]); publish it with wandb_dagster.dagster.publish_jobs(defs)"
            )
        self._api = api
        self.artifact = artifact
        self.spec: dict[str, Any] = spec
        self.name: str = artifact.qualified_name
        self.entity: str = artifact.entity
        self.project: str = artifact.project
        self.dagster_job: str = spec["source"]["job"]
        self.code_location: str | None = spec["source"].get("code_location")
        self.source: dict[str, Any] = spec["source"]
        self.run_config_schema: dict[str, Any] = spec.get("input_types", {}).get("run_config_schema", {})

    def check_run_config(self, run_config: Mapping[str, Any]) -> None:
        """Refuse a run config that cannot fit this Dagster job: a top-level key that is not one of a Dagster
        run config's, or ops the job does not have (Dagster checks the rest when the agent launches it)."""
        if not isinstance(run_config, Mapping):
            raise TypeError(f"config for job {self.name!r} must be a dict (a Dagster run config), not {run_config!r}")
        unknown = sorted(set(run_config) - set(RUN_CONFIG_KEYS))
        if unknown:
            raise ValueError(
                f"config for job {self.name!r} has keys {unknown} that a Dagster run config does not: use "
                f"{list(RUN_CONFIG_KEYS)} (e.g. {{'ops': {{'train': {{'config': {{...}}}}}}}})"
            )
        known_ops = self.run_config_schema.get("ops")
        ops = run_config.get("ops") or {}
        if isinstance(known_ops, Mapping) and isinstance(ops, Mapping):
            missing = sorted(set(ops) - set(known_ops))
            if missing:
                raise ValueError(
                    f"config for job {self.name!r} configures ops {missing} that Dagster job {self.dagster_job!r} "
                    f"does not have; its ops with config are {sorted(known_ops)}"
                )

    def call(
        self,
        config: Mapping[str, Any] | None = None,
        project: str | None = None,
        entity: str | None = None,
        queue: str | None = None,
        resource: str | None = None,
        resource_args: Mapping[str, Any] | None = None,
        template_variables: Mapping[str, Any] | None = None,
        project_queue: str | None = None,
        priority: int | str | None = None,
    ) -> QueuedRun:
        """Enqueue a run of this job in ``queue`` with Dagster run config ``config`` (W&B's ``run_config``
        overrides), as W&B's ``Job.call``; validated first (see :func:`wandb_dagster.launch.launch_add`)."""
        from wandb_dagster.launch.queues import launch_add

        if queue is None:
            raise ValueError(
                f"job {self.name!r}: pass queue= the run queue to enqueue in; a wandb_launch_agent sensor of "
                "that queue launches it in Dagster (there is no local launch without a queue here)"
            )
        return launch_add(
            job=self.name, queue_name=queue, config={"overrides": {"run_config": dict(config or {})}},
            template_variables=template_variables, project=project, entity=entity, resource=resource,
            resource_args=resource_args, project_queue=project_queue, priority=priority, api=self._api,
        )

    def __repr__(self) -> str:
        return f"<Job {self.name} (Dagster job {self.dagster_job!r})>"


def list_jobs(api: Api, entity: str, project: str) -> list[dict[str, Any]]:
    """W&B's ``list_jobs``: one entry per job collection of ``entity/project``, in W&B's shape
    (``{"edges": [{"node": {"id", "state", "aliases": [{"alias"}], "artifactSequence": {"name"}}}]}``)."""
    if entity is None or project is None:
        raise ValueError("Specify an entity and a project when listing jobs: list_jobs('my-team', 'bikes')")
    found = []
    for collection in api.artifact_collections(f"{entity}/{project}", JOB_TYPE):
        edges = [
            {"node": {"id": version.id, "state": version.state, "aliases": [{"alias": a} for a in version.aliases],
                      "artifactSequence": {"name": collection.name}}}
            for version in collection.artifacts()
        ]  # fmt: skip
        found.append({"edges": edges})
    return found
