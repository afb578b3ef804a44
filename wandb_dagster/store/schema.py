"""The metadata schema as SQLAlchemy Core tables (one :data:`metadata`), shared by SQLite and PostgreSQL.

This module describes the schema at the newest migration; ``migrations/versions`` builds it step by step
and a test checks, with Alembic's ``compare_metadata``, that both agree on both backends. When you change
a table here, add a migration and bump :data:`SCHEMA_REVISION`.

Conventions:

- Surrogate integer keys (``id``) everywhere; the ids users see (run ids, version public ids) are
  separate unique columns. Columns referencing ``runs.id`` are called ``*run_pk`` because ``runs.run_id``
  is the user-facing id.
- Text columns have no length: limits are validated once, in the SDK, so both backends accept the same
  values.
- JSON columns are ``sqlalchemy.JSON`` (``json`` on PostgreSQL, text on SQLite): key order is preserved and
  values round-trip identically on both. Exception: ``versions.metadata`` is ``jsonb`` on PostgreSQL
  (:data:`JSONB_ON_POSTGRES`, migration 0004) because the query API filters on it and ``json`` is re-parsed
  by every JSON function call; it round-trips equal as a dict, but PostgreSQL returns its object keys in
  jsonb's order (shorter keys first), and nothing derived from it (digest, manifest) depends on key order.
- Timestamps are :class:`UTCDateTime`: aware UTC datetimes in and out on both backends.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# JSON that PostgreSQL stores parsed (jsonb), for columns the query API filters on; see the module docstring.
JSONB_ON_POSTGRES = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# The Alembic revision that produces this schema. Store.open compares it with alembic_version to skip
# importing Alembic when the database is current; a test keeps it equal to the migration scripts' head.
SCHEMA_REVISION = "0014"

# Deterministic constraint names, so that migrations can refer to them and SQLite's reflected schema
# compares equal to this one.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no timezone support, so values are normalised to UTC and
    stored naive (fixed-width ISO text, which also sorts correctly) and read back as UTC. Naive datetimes are
    refused rather than guessed at: a local time silently stored as UTC is a bug nobody notices.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {value!r} ({type(value).__name__})")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} has no timezone; pass an aware one, "
                "e.g. datetime.now(timezone.utc)"
            )
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def _created_at() -> sa.Column[datetime]:
    return sa.Column("created_at", UTCDateTime(), nullable=False)


def _updated_at() -> sa.Column[datetime]:
    return sa.Column("updated_at", UTCDateTime(), nullable=False)


# Workspace-wide settings as key/value rows: "storage_root" (where blobs live; every client that can reach
# the database reads it from here), "created_at" (ISO 8601).
workspace = sa.Table(
    "workspace",
    metadata,
    sa.Column("key", sa.String(), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
)

entities = sa.Table(
    "entities",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("name", sa.String(), nullable=False),
    _created_at(),
    sa.UniqueConstraint("name"),
)

# Organizations (migration 0008; docs/behaviour.md section 6). Registries belong to an organization: they are
# the projects of its own entity (`entity_id`, W&B's "org entity"). The workspace's default organization is
# named by workspace key "default_organization".
organizations = sa.Table(
    "organizations",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("name", sa.String(), nullable=False),
    sa.Column("entity_id", sa.Integer(), sa.ForeignKey("entities.id"), nullable=False),
    _created_at(),
    sa.UniqueConstraint("name"),
    sa.UniqueConstraint("entity_id"),
)

# The organization an entity (user or team) belongs to. An entity without a row here (one a run created
# by naming it) belongs to the workspace's default organization.
organization_members = sa.Table(
    "organization_members",
    metadata,
    sa.Column("entity_id", sa.Integer(), sa.ForeignKey("entities.id"), primary_key=True),
    sa.Column("organization_id", sa.Integer(), sa.ForeignKey("organizations.id"), nullable=False),
)

# The directory of users and teams (api/directory.py): names and memberships, not access control. A user's
# username is the name of its personal entity.
users = sa.Table(
    "users",
    metadata,
    sa.Column("entity_id", sa.Integer(), sa.ForeignKey("entities.id"), primary_key=True),
    sa.Column("email", sa.String()),
    sa.Column("admin", sa.Boolean(), nullable=False),
    _created_at(),
    sa.UniqueConstraint("email"),
)

teams = sa.Table(
    "teams",
    metadata,
    sa.Column("entity_id", sa.Integer(), sa.ForeignKey("entities.id"), primary_key=True),
    _created_at(),
)

team_members = sa.Table(
    "team_members",
    metadata,
    sa.Column("team_entity_id", sa.Integer(), sa.ForeignKey("teams.entity_id"), primary_key=True),
    sa.Column("user_entity_id", sa.Integer(), sa.ForeignKey("users.entity_id"), primary_key=True),
    sa.Column("admin", sa.Boolean(), nullable=False),
    _created_at(),
    sa.Index(None, "user_entity_id"),
)

# Registries are projects named "wandb-registry-<name>", hence description and timestamps.
projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("entity_id", sa.Integer(), sa.ForeignKey("entities.id"), nullable=False),
    sa.Column("name", sa.String(), nullable=False),
    sa.Column("description", sa.Text()),
    _created_at(),
    _updated_at(),
    sa.UniqueConstraint("entity_id", "name"),
)

# What Api().create_registry / Registry.save set beyond the project: visibility (recorded, not enforced:
# there is no access control) and the accepted artifact types (NULL: every type). A registry without a
# row has the defaults ("organization", every type).
registry_settings = sa.Table(
    "registry_settings",
    metadata,
    sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("visibility", sa.String(), nullable=False),
    sa.Column("artifact_types", sa.JSON()),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("run_id", sa.String(), nullable=False),
    sa.Column("display_name", sa.String()),
    sa.Column("state", sa.String(), nullable=False),
    sa.Column("config", sa.JSON(), nullable=False),
    sa.Column("summary", sa.JSON(), nullable=False),
    sa.Column("tags", sa.JSON(), nullable=False),
    # "group" is an SQL keyword; the record calls it `group`.
    sa.Column("group_name", sa.String()),
    sa.Column("job_type", sa.String()),
    sa.Column("notes", sa.Text()),
    sa.Column("host", sa.String()),
    sa.Column("username", sa.String()),
    _created_at(),
    sa.Column("heartbeat_at", UTCDateTime()),
    sa.Column("finished_at", UTCDateTime()),
    # The sweep this run is a trial of (W&B's run.sweep_id); migration 0011.
    sa.Column("sweep_pk", sa.Integer(), sa.ForeignKey("sweeps.id")),
    sa.UniqueConstraint("project_id", "run_id"),
    sa.Index(None, "sweep_pk"),
)

# One row per logged step; the primary key keeps steps unique and ordered per run.
run_history = sa.Table(
    "run_history",
    metadata,
    sa.Column("run_pk", sa.Integer(), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("step", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("row", sa.JSON(), nullable=False),
)

# A run's files (``run.save``, the console's ``output.log``): one row per (run, name), the newest content. The
# bytes are the blob named by ``digest`` (MD5 hex), made durable before the row is written (docs/architecture.md
# invariant 1); a garbage collector counts these digests as referenced (store/blob_refs.py; the index is its
# lookup, migration 0010).
run_files = sa.Table(
    "run_files",
    metadata,
    sa.Column("run_pk", sa.Integer(), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("name", sa.String(), primary_key=True),
    sa.Column("digest", sa.String(), nullable=False),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index(None, "digest"),
)

# A run's system metrics (W&B's "events" stream: system/cpu, system/memory...), one row per sample, apart
# from the history so that they never take a step of run.log.
run_system_metrics = sa.Table(
    "run_system_metrics",
    metadata,
    sa.Column("run_pk", sa.Integer(), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("row", sa.JSON(), nullable=False),
)

# A named sequence of versions ("sequence": where artifacts are logged) or of links to versions
# ("portfolio": a registry collection). next_index is the index the next member gets: reading and
# incrementing it under the row lock is what makes indices gapless without counting members.
collections = sa.Table(
    "collections",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", sa.String(), nullable=False),
    sa.Column("type", sa.String(), nullable=False),
    sa.Column("kind", sa.String(), nullable=False),
    sa.Column("description", sa.Text()),
    _created_at(),
    _updated_at(),
    sa.Column("next_index", sa.Integer(), nullable=False),
    sa.UniqueConstraint("project_id", "name"),
    sa.CheckConstraint("kind IN ('sequence', 'portfolio')", name="kind"),
)

collection_tags = sa.Table(
    "collection_tags",
    metadata,
    sa.Column("collection_id", sa.Integer(), sa.ForeignKey("collections.id"), primary_key=True),
    sa.Column("tag", sa.String(), primary_key=True),
    sa.Index(None, "tag", "collection_id"),  # registry queries by tag (migration 0003)
)

# Content: one row per logged version. Deleting a version keeps the row (state DELETED) so lineage and
# ids stay resolvable; its memberships and aliases go. `manifest` is last on purpose: SQLite stores a
# large value in overflow pages that queries not selecting it never read.
versions = sa.Table(
    "versions",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("public_id", sa.String(), nullable=False),
    sa.Column("source_collection_id", sa.Integer(), sa.ForeignKey("collections.id"), nullable=False),
    sa.Column("digest", sa.String(), nullable=False),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("file_count", sa.Integer(), nullable=False),
    sa.Column("metadata", JSONB_ON_POSTGRES, nullable=False),
    sa.Column("description", sa.Text()),
    sa.Column("state", sa.String(), nullable=False),
    sa.Column("created_by_run_pk", sa.Integer(), sa.ForeignKey("runs.id")),
    _created_at(),
    _updated_at(),
    sa.Column("manifest", sa.Text(), nullable=False),
    sa.UniqueConstraint("public_id"),
    sa.CheckConstraint("state IN ('COMMITTED', 'DELETED')", name="state"),
    # commit_version's "is this digest already a member?" lookup.
    sa.Index(None, "source_collection_id", "digest"),
)

# A version's place in a collection: "v{version_index}". Both uniques are invariants (gapless indices,
# a version at most once per collection) as well as the indexes for index and version lookups.
memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("collection_id", sa.Integer(), sa.ForeignKey("collections.id"), nullable=False),
    sa.Column("version_id", sa.Integer(), sa.ForeignKey("versions.id"), nullable=False),
    sa.Column("version_index", sa.Integer(), nullable=False),
    _created_at(),
    sa.UniqueConstraint("collection_id", "version_index"),
    sa.UniqueConstraint("collection_id", "version_id"),
    # All memberships of a version (delete_version, registry links).
    sa.Index(None, "version_id"),
)

# The primary key is invariant 3: an alias names at most one membership per collection.
aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("collection_id", sa.Integer(), sa.ForeignKey("collections.id"), primary_key=True),
    sa.Column("alias", sa.String(), primary_key=True),
    sa.Column("membership_id", sa.Integer(), sa.ForeignKey("memberships.id"), nullable=False),
    sa.Index(None, "membership_id"),
    # Registry queries by alias across collections (migration 0003). membership_id is in it so that a
    # lookup by (membership, alias) never prefers scanning one alias's entries.
    sa.Index(None, "alias", "membership_id"),
)

version_tags = sa.Table(
    "version_tags",
    metadata,
    sa.Column("version_id", sa.Integer(), sa.ForeignKey("versions.id"), primary_key=True),
    sa.Column("tag", sa.String(), primary_key=True),
    sa.Index(None, "tag", "version_id"),  # registry queries by tag (migration 0003)
)

# Lineage. A version can have several producers: logging identical content again records the new run too.
run_artifacts = sa.Table(
    "run_artifacts",
    metadata,
    sa.Column("run_pk", sa.Integer(), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("version_id", sa.Integer(), sa.ForeignKey("versions.id"), primary_key=True),
    sa.Column("direction", sa.String(), primary_key=True),
    sa.CheckConstraint("direction IN ('input', 'output')", name="direction"),
    sa.Index(None, "version_id"),
)

# A part of a distributed artifact (``run.upsert_artifact(..., distributed_id=...)``): what one upsert
# added, waiting for ``run.finish_artifact`` to merge every part of (project, collection, distributed_id)
# into one version and delete the parts in the same transaction. The blobs a part names are durable before
# its row is written (invariant 1). Keyed by the collection's name, not its row: the collection is created
# when the version is, as for any log. ``run_pk`` is the upserting run (a producer of the version); deleting
# the run clears it and keeps the part.
artifact_parts = sa.Table(
    "artifact_parts",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("collection", sa.String(), nullable=False),
    sa.Column("type", sa.String(), nullable=False),
    sa.Column("distributed_id", sa.String(), nullable=False),
    sa.Column("run_pk", sa.Integer(), sa.ForeignKey("runs.id")),
    sa.Column("metadata", sa.JSON(), nullable=False),
    sa.Column("description", sa.Text()),
    sa.Column("aliases", sa.JSON(), nullable=False),
    _created_at(),
    sa.Column("manifest", sa.Text(), nullable=False),
    sa.Index(None, "project_id", "collection", "distributed_id"),
)

# A hyperparameter sweep (``wandb.sweep``; store/sweeps.py): its W&B configuration as given (validated by the
# SDK, which alone understands it), with the method and name copied out for queries. ``sweep_id`` is the id
# users see, unique per project as W&B's. state: W&B's sweep states (RUNNING, PAUSED, FINISHED, CANCELED).
sweeps = sa.Table(
    "sweeps",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("sweep_id", sa.String(), nullable=False),
    sa.Column("name", sa.String()),
    sa.Column("method", sa.String(), nullable=False),
    sa.Column("state", sa.String(), nullable=False),
    sa.Column("config", sa.JSON(), nullable=False),
    _created_at(),
    _updated_at(),
    sa.UniqueConstraint("project_id", "sweep_id"),
)

# One claimed suggestion of a sweep: ``number`` counts the sweep's trials from 0,
# ``grid_index`` is the grid point's place in W&B's grid order (NULL for random search). Both uniques are
# the invariants that several agents rely on: a number, and a grid point, are claimed at most once. The
# trial's run is created by the agent afterwards with ``run_id``, in the sweep's project.
sweep_trials = sa.Table(
    "sweep_trials",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("sweep_pk", sa.Integer(), sa.ForeignKey("sweeps.id"), nullable=False),
    sa.Column("number", sa.Integer(), nullable=False),
    sa.Column("grid_index", sa.Integer()),
    sa.Column("params", sa.JSON(), nullable=False),
    sa.Column("run_id", sa.String(), nullable=False),
    # running | stopping | finished | crashed. An agent beats heartbeat_at while its trial runs; a running
    # trial whose heartbeat is older than the timeout is crashed by the next claim, which frees its grid
    # point (grid_index NULL) and stops counting it towards run_cap. stopping: hyperband early termination
    # decided to stop it (recorded under the sweep's lock, so every agent sees one decision); its agent stops
    # the run, which ends killed, and the trial then finished.
    sa.Column("state", sa.String(), nullable=False),
    sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
    _created_at(),
    # The sweep metric's extremum over the run's history and summary (W&B's metric_extremum), recorded when
    # the trial ends: what bayes search learns from (migration 0014). NULL: not ended, or no such value.
    sa.Column("value", sa.Float()),
    sa.UniqueConstraint("sweep_pk", "number"),
    sa.UniqueConstraint("sweep_pk", "grid_index"),
)

# A report (``wandb_dagster.reports``, W&B's Report API; store/reports.py). ``report_id`` is the id users see
# (in the report's URL), W&B's form: base64 of ``View:<id>`` without padding, unique in the workspace.
# ``spec`` holds the blocks as the reports package serialises them; the store does not read it. width:
# W&B's report widths (readable, fixed, fluid), validated by the reports package.
reports = sa.Table(
    "reports",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("report_id", sa.String(), nullable=False),
    sa.Column("title", sa.String(), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("width", sa.String(), nullable=False),
    sa.Column("spec", sa.JSON(), nullable=False),
    sa.Column("username", sa.String()),
    _created_at(),
    _updated_at(),
    sa.UniqueConstraint("report_id"),
    sa.Index(None, "project_id"),
)

# W&B Launch (store/launch.py, migration 0013). A run queue of an entity: W&B's resource type, the
# prioritization mode (NULL or "V0"), the default resource config with its ``{{var}}`` template variables and
# their schemas, as given (the api level validates them; the store does not understand them).
run_queues = sa.Table(
    "run_queues",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("entity_id", sa.Integer(), sa.ForeignKey("entities.id"), nullable=False),
    sa.Column("name", sa.String(), nullable=False),
    sa.Column("resource_type", sa.String(), nullable=False),
    sa.Column("prioritization_mode", sa.String()),
    sa.Column("config", sa.JSON(), nullable=False),
    sa.Column("template_variables", sa.JSON(), nullable=False),
    sa.Column("external_links", sa.JSON(), nullable=False),
    _created_at(),
    _updated_at(),
    sa.UniqueConstraint("entity_id", "name"),
)

# One queued run (W&B's run queue item). ``item_id`` is the id users see and the Dagster run_key: random,
# so a workspace made again never hands a Dagster instance an id it has already launched. state: pending |
# leased | running | finished | failed | cancelled. A lease (lease_owner, lease_expires_at) is taken in
# the transaction that counts the queue's active items (store/launch.py ``lease``); one whose launch never
# happened expires and the item is pending again. ``job`` is the job version (entity/project/name:vN);
# ``launch`` what the agent needs to start it (code location, Dagster job name, resolved run config);
# ``error`` why it failed.
run_queue_items = sa.Table(
    "run_queue_items",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("item_id", sa.String(), nullable=False),
    sa.Column("queue_pk", sa.Integer(), sa.ForeignKey("run_queues.id"), nullable=False),
    sa.Column("entity", sa.String(), nullable=False),
    sa.Column("project", sa.String(), nullable=False),
    sa.Column("job", sa.String(), nullable=False),
    sa.Column("launch", sa.JSON(), nullable=False),
    sa.Column("template_values", sa.JSON(), nullable=False),
    sa.Column("priority", sa.Integer(), nullable=False),
    sa.Column("state", sa.String(), nullable=False),
    sa.Column("lease_owner", sa.String()),
    sa.Column("lease_expires_at", UTCDateTime()),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("dagster_run_id", sa.String()),
    sa.Column("run_path", sa.String()),
    sa.Column("error", sa.Text()),
    _created_at(),
    _updated_at(),
    sa.UniqueConstraint("item_id"),
    sa.Index(None, "queue_pk", "state", "priority", "id"),
)

# The values of events.type: event types as W&B automations name them, and the run-state change.
CREATE_ARTIFACT = "CREATE_ARTIFACT"
LINK_ARTIFACT = "LINK_ARTIFACT"
UNLINK_ARTIFACT = "UNLINK_ARTIFACT"
ADD_ARTIFACT_ALIAS = "ADD_ARTIFACT_ALIAS"
REMOVE_ARTIFACT_ALIAS = "REMOVE_ARTIFACT_ALIAS"
ADD_ARTIFACT_TAG = "ADD_ARTIFACT_TAG"
REMOVE_ARTIFACT_TAG = "REMOVE_ARTIFACT_TAG"
DELETE_ARTIFACT = "DELETE_ARTIFACT"
RUN_STATE_CHANGE = "RUN_STATE_CHANGE"
# A finished trial of a sweep beat every other run of the sweep on the sweep's metric ("a sweep found a
# better model"); payload: sweep, metric, goal, value, previous_value, previous_run_id.
SWEEP_BEST_RUN = "SWEEP_BEST_RUN"
EVENT_TYPES = (
    CREATE_ARTIFACT,
    LINK_ARTIFACT,
    UNLINK_ARTIFACT,
    ADD_ARTIFACT_ALIAS,
    REMOVE_ARTIFACT_ALIAS,
    ADD_ARTIFACT_TAG,
    REMOVE_ARTIFACT_TAG,
    DELETE_ARTIFACT,
    RUN_STATE_CHANGE,
    SWEEP_BEST_RUN,
)

# The event feed (docs/architecture.md invariant 5; written by store/events.py, read by api/events.py).
# Append-only: a row is added in the same transaction as the change it reports and never updated or deleted. `id` is NOT
# drawn from a sequence: it is assigned at the very end of the writing transaction, under a lock held
# until COMMIT (PostgreSQL: an advisory lock; SQLite: the database write lock), so id order is commit
# order and a reader that has seen id N can never later find a smaller one. Names are copied in rather
# than referenced, so an event still says what it was about after the version or link is gone, and a
# feed read touches this table only.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=False),
    sa.Column("type", sa.String(), nullable=False),
    _created_at(),
    sa.Column("entity", sa.String(), nullable=False),
    sa.Column("project", sa.String(), nullable=False),
    sa.Column("collection", sa.String()),
    sa.Column("collection_type", sa.String()),
    sa.Column("version_index", sa.Integer()),
    sa.Column("artifact_id", sa.String()),
    sa.Column("alias", sa.String()),
    sa.Column("tag", sa.String()),
    sa.Column("run_id", sa.String()),
    sa.Column("payload", sa.JSON(), nullable=False),
)

# Garbage collection (docs/architecture.md, "Garbage collection"; written by store/blob_refs.py, migration
# 0010). The blobs each version names, recorded in its commit transaction: gc's "is this blob in use?" is an
# index lookup, not a parse of every manifest.
version_blobs = sa.Table(
    "version_blobs",
    metadata,
    sa.Column("hex", sa.String(), primary_key=True),
    sa.Column("version_id", sa.Integer(), sa.ForeignKey("versions.id"), primary_key=True),
    # SQLite looks up child rows on every write of a parent version: without it, each commit scans the table.
    sa.Index(None, "version_id"),
)

# The blobs each distributed-artifact part names (recorded with the part; the finish that merges the part
# swaps them for the version's version_blobs rows in its transaction).
part_blobs = sa.Table(
    "part_blobs",
    metadata,
    sa.Column("hex", sa.String(), primary_key=True),
    sa.Column("part_id", sa.Integer(), sa.ForeignKey("artifact_parts.id"), primary_key=True),
    sa.Index(None, "part_id"),
)

# The media blobs (MD5 hex) a run's history rows and summary name (wandb.Image, Table...), recorded in the
# transaction that writes the row or summary naming them, kept until the run is deleted (history rows are never
# rewritten; a media value replaced in the summary keeps its blob until then too).
run_blobs = sa.Table(
    "run_blobs",
    metadata,
    sa.Column("run_pk", sa.Integer(), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("hex", sa.String(), primary_key=True),
    sa.Index(None, "hex"),
)

# Retention (store/retention.py): a version's TTL and the expiry it makes from the version's creation.
version_ttl = sa.Table(
    "version_ttl",
    metadata,
    sa.Column("version_id", sa.Integer(), sa.ForeignKey("versions.id"), primary_key=True),
    sa.Column("ttl_seconds", sa.BigInteger(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Index(None, "expires_at"),
)

# A writer's intent to name a blob in a version it has not committed yet (one token per draft).
blob_claims = sa.Table(
    "blob_claims",
    metadata,
    sa.Column("token", sa.String(), primary_key=True),
    sa.Column("hex", sa.String(), primary_key=True),
    sa.Column("claimed_at", UTCDateTime(), nullable=False),
    sa.Index(None, "hex"),
)

# gc's marks: unreferenced and unclaimed since marked_at; deleted_at once gc deleted the blob.
blob_marks = sa.Table(
    "blob_marks",
    metadata,
    sa.Column("hex", sa.String(), primary_key=True),
    sa.Column("marked_at", UTCDateTime(), nullable=False),
    sa.Column("deleted_at", UTCDateTime()),
)
