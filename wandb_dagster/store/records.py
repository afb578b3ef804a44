"""Immutable snapshots of database rows, returned by :class:`~wandb_dagster.store.Store`.

A record is a copy taken inside one transaction; it never changes when the database does. JSON fields
(``config``, ``summary``, ``metadata``) are plain dicts decoded for the caller, who owns them. Timestamps are
timezone-aware UTC ``datetime`` objects on every backend. ``aliases`` and ``tags`` are sorted lists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import Any


@dataclasses.dataclass(frozen=True)
class RunRecord:
    pk: int
    id: str  # the run id users see (e.g. 8 random lowercase alphanumerics), unique per project
    entity: str
    project: str
    display_name: str | None
    state: str
    config: dict[str, Any]
    summary: dict[str, Any]
    tags: list[str]
    group: str | None
    job_type: str | None
    notes: str | None
    host: str | None
    username: str | None
    created_at: datetime
    heartbeat_at: datetime | None
    finished_at: datetime | None
    sweep: str | None = None  # the id of the sweep this run is a trial of (W&B's run.sweep_id)


@dataclasses.dataclass(frozen=True)
class VersionRecord:
    """A version as seen through one of its memberships: ``entity/project/collection:v{index}``.

    ``id``, digest, size, file count, metadata, description, tags and state belong to the version and are
    the same in every collection it is a member of; ``collection``, ``collection_id``, ``index`` and
    ``aliases`` belong to the membership.
    """

    pk: int
    id: str
    entity: str
    project: str
    collection: str
    collection_id: int
    type: str
    index: int
    digest: str
    size: int
    file_count: int
    metadata: dict[str, Any]
    description: str | None
    state: str
    created_at: datetime
    updated_at: datetime
    aliases: list[str]
    tags: list[str]
    source_collection_id: int
    created_by: str | None

    @property
    def version(self) -> str:
        """``"v{index}"``, the name of this version inside ``collection``."""
        return f"v{self.index}"


@dataclasses.dataclass(frozen=True)
class CollectionRecord:
    pk: int
    entity: str
    project: str
    name: str
    type: str
    kind: str  # "sequence" (where versions are logged) | "portfolio" (registry links)
    description: str | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    next_index: int  # the index the next new member gets; equals the number of members ever added

    @classmethod
    def from_row(cls, row: Any, tags: Iterable[str]) -> CollectionRecord:
        """From a row of collections joined with its project (``project``) and entity (``entity``) names."""
        return cls(
            pk=row.id,
            entity=row.entity,
            project=row.project,
            name=row.name,
            type=row.type,
            kind=row.kind,
            description=row.description,
            tags=sorted(tags),
            created_at=row.created_at,
            updated_at=row.updated_at,
            next_index=row.next_index,
        )


@dataclasses.dataclass(frozen=True)
class ProjectRecord:
    """A project; registries are projects named :data:`REGISTRY_PREFIX` + name."""

    pk: int
    entity: str
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime


# Registries are the projects whose names start with this.
REGISTRY_PREFIX = "wandb-registry-"


@dataclasses.dataclass(frozen=True)
class PartRecord:
    """One part of a distributed artifact (``run.upsert_artifact``), waiting for ``finish_artifact``."""

    pk: int
    type: str
    run_pk: int | None  # the upserting run (None: logged without a run, or the run was deleted)
    run_id: str | None
    manifest: str  # manifest JSON of what this upsert added
    metadata: dict[str, Any]
    description: str | None
    aliases: list[str]
    created_at: datetime


@dataclasses.dataclass(frozen=True)
class RunFileRecord:
    """A file of a run (``run.save``, ``output.log``): its name, the blob of its newest content, its size."""

    name: str  # relative path, e.g. "config.yaml", "checkpoints/a.txt", "output.log"
    digest: str  # MD5 hex: the blob's name in the blob store
    size: int
    updated_at: datetime


@dataclasses.dataclass(frozen=True)
class CommitResult:
    version: VersionRecord
    created: bool  # False when the digest was already a member and the existing version was reused


@dataclasses.dataclass(frozen=True)
class OrganizationRecord:
    """An organization: ``name`` (W&B's display name) and ``entity``, the name of its own entity, which
    holds its registries (W&B's "org entity")."""

    pk: int
    name: str
    entity: str
    entity_pk: int
    created_at: datetime


@dataclasses.dataclass(frozen=True)
class UserRecord:
    pk: int  # the personal entity's id
    username: str
    email: str | None
    admin: bool
    created_at: datetime
    teams: list[str]


@dataclasses.dataclass(frozen=True)
class TeamRecord:
    pk: int  # the team entity's id
    name: str
    organization: str
    created_at: datetime


@dataclasses.dataclass(frozen=True)
class MemberRecord:
    pk: int  # the user's entity id
    username: str
    email: str | None
    admin: bool
    created_at: datetime


@dataclasses.dataclass(frozen=True)
class SweepRecord:
    """A sweep (store/sweeps.py). ``config`` is its W&B configuration, as validated by the SDK."""

    pk: int
    id: str  # the sweep id users see, unique per project
    entity: str
    project: str
    name: str | None
    method: str
    state: str  # RUNNING | PAUSED | FINISHED | CANCELED, as W&B's
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    """One claimed suggestion of a sweep: trial ``number`` (from 0), its grid point's index (grid search
    only), the suggested parameter values and the id of the run that tries them."""

    pk: int
    sweep_pk: int
    number: int
    grid_index: int | None
    params: dict[str, Any]
    run_id: str
    created_at: datetime
    state: str = "running"  # running | stopping | finished | crashed
    # The metric's extremum over the run's history and summary, recorded when the trial ended (or None).
    value: float | None = None
    # The state of the trial's run (None before the run exists): finished, failed, crashed, killed, running.
    run_state: str | None = None


@dataclasses.dataclass(frozen=True)
class ReportRecord:
    """A saved report (store/reports.py). ``id`` is the id users see (W&B's ``View:`` id, base64);
    ``spec`` the blocks as the reports package serialised them."""

    pk: int
    id: str
    entity: str
    project: str
    title: str
    description: str
    width: str
    spec: dict[str, Any]
    username: str | None
    created_at: datetime
    updated_at: datetime


@dataclasses.dataclass(frozen=True)
class RunQueueRecord:
    """A W&B Launch run queue of an entity (store/launch.py). ``config`` and ``template_variables`` are as
    given to ``create_run_queue`` (validated at the api level)."""

    pk: int
    entity: str
    name: str
    resource_type: str
    prioritization_mode: str | None
    config: dict[str, Any]
    template_variables: dict[str, Any]
    external_links: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclasses.dataclass(frozen=True)
class LineageEdge:
    """One lineage row (store/lineage.py): run ``run_pk`` used (``"input"``) or logged (``"output"``) version
    ``version_pk``."""

    run_pk: int
    version_pk: int
    direction: str


@dataclasses.dataclass(frozen=True)
class LineageRun:
    """What a lineage graph shows of a run: where it is, its name and state."""

    pk: int
    entity: str
    project: str
    run_id: str
    display_name: str | None
    state: str
    job_type: str | None
    username: str | None = None


@dataclasses.dataclass(frozen=True)
class LineageVersion:
    """What a lineage graph shows of a version: its source collection and index there (None once the
    version is deleted: its row and lineage stay), its public id and state."""

    pk: int
    public_id: str
    entity: str
    project: str
    collection: str
    type: str
    index: int | None
    state: str


@dataclasses.dataclass(frozen=True)
class RunQueueItemRecord:
    """One queued run (W&B's run queue item). ``id`` is the id users see and the Dagster ``run_key``;
    ``state`` pending | leased | running | finished | failed | cancelled."""

    pk: int
    id: str
    queue_pk: int
    queue: str
    entity: str  # where the launched run logs
    project: str
    job: str  # the job version, entity/project/name:vN
    launch: dict[str, Any]  # code_location, dagster_job, run_config
    template_values: dict[str, Any]
    priority: int
    state: str
    lease_owner: str | None
    lease_expires_at: datetime | None
    attempts: int
    dagster_run_id: str | None
    run_path: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
