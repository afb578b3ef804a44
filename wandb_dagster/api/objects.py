"""The objects the query API returns: Run, Project, ArtifactType, ArtifactCollection, Artifact.

They are snapshots read from the workspace when fetched (W&B's objects are too); ``save()``/``update()``
write changes back. Example::

    >>> run = api.run("my-team/my-project/abc12345")            # doctest: +SKIP
    >>> run.state, run.config["lr"], run.summary["loss"]         # doctest: +SKIP
    >>> coll = api.artifact_collection("model", "my-project/my-model")   # doctest: +SKIP
    >>> coll.description = "Models for X"; coll.tags = ["prod"]; coll.save()   # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from wandb_dagster.api.summary import Summary
from wandb_dagster.sdk.artifact import Artifact as _SdkArtifact
from wandb_dagster.sdk.names import validate_artifact_name, validate_tags
from wandb_dagster.sdk.run import run_url
from wandb_dagster.sdk.values import check_json_size, iso_timestamp, json_value
from wandb_dagster.store.scope import Filter, Scope

if TYPE_CHECKING:
    from wandb_dagster.api.api import Api
    from wandb_dagster.api.files import File
    from wandb_dagster.api.paginator import Paginator
    from wandb_dagster.sdk.workspace import Workspace
    from wandb_dagster.store.records import CollectionRecord, ProjectRecord, RunRecord, VersionRecord


class Artifact(_SdkArtifact):
    """An artifact version as the SDK's :class:`wandb_dagster.Artifact`, plus ``.collection``."""

    @property
    def collection(self) -> ArtifactCollection:
        """The collection this version is seen through (a registry collection for a link)."""
        record = self._require_logged("collection")
        ws = self.workspace
        assert ws is not None  # a logged version always has its workspace
        found = ws.store.collection_by_id(record.collection_id)
        if found is None:
            raise ValueError(f"the collection of {self.qualified_name!r} no longer exists")
        return ArtifactCollection(ws, found)

    @property
    def source_collection(self) -> ArtifactCollection:
        """The collection where the version was logged (the same as ``collection`` unless this is a link)."""
        record = self._require_logged("collection")
        ws = self.workspace
        assert ws is not None
        found = ws.store.collection_by_id(record.source_collection_id)
        assert found is not None
        return ArtifactCollection(ws, found)

    def logged_by(self) -> Run | None:
        """The run that logged this version first (None when no run did, or that run was deleted), as W&B's
        lineage guide uses it: ``artifact.logged_by().config``."""
        record = self._require_logged("logged_by")
        ws = self.workspace
        assert ws is not None
        creator = ws.store.version_creator(record.pk)
        return None if creator is None else Run(ws, creator)

    def used_by(self) -> list[Run]:
        """The runs that used this version as an input (``run.use_artifact``), oldest first."""
        record = self._require_logged("used_by")
        ws = self.workspace
        assert ws is not None
        return [Run(ws, r) for r in ws.store.version_runs(record.pk, "input")]


def artifact_from_record(ws: Workspace, record: VersionRecord) -> Artifact:
    return Artifact.from_record(record, ws)


# ------------------------------------------------------------------------------------------ collections


class ArtifactCollection:
    """A named sequence of versions (where artifacts are logged) or a registry collection of links.

    ``name``, ``description`` and ``tags`` can be changed and persisted with :meth:`save`, as in W&B; a new
    name renames the collection (its versions, aliases, links and history follow). :meth:`delete` deletes
    it with everything in it::

        >>> coll = api.artifact_collection("dataset", "bike-dataset")       # doctest: +SKIP
        >>> coll.name = "bike-dataset-2024"; coll.save()                    # doctest: +SKIP
    """

    def __init__(self, ws: Workspace, record: CollectionRecord) -> None:
        self._ws = ws
        self._record = record
        self.description: str | None = record.description
        self._tags: list[str] = list(record.tags)
        self._name: str = record.name

    # identity
    @property
    def id(self) -> str:
        return str(self._record.pk)

    @property
    def name(self) -> str:
        """The collection's name; set it and call :meth:`save` to rename the collection."""
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = validate_artifact_name(value)

    @property
    def type(self) -> str:
        return self._record.type

    @property
    def entity(self) -> str:
        return self._record.entity

    @property
    def project(self) -> str:
        return self._record.project

    @property
    def created_at(self) -> str:
        """ISO 8601 text, as in W&B (``created_datetime``: the same as a datetime)."""
        return iso_timestamp(self._record.created_at)

    @property
    def updated_at(self) -> str:
        return iso_timestamp(self._record.updated_at)

    @property
    def created_datetime(self) -> datetime:
        return self._record.created_at

    @property
    def updated_datetime(self) -> datetime:
        return self._record.updated_at

    def is_sequence(self) -> bool:
        """True where artifacts are logged; False for a registry collection (links)."""
        return self._record.kind == "sequence"

    @property
    def tags(self) -> list[str]:
        return self._tags

    @tags.setter
    def tags(self, value: Sequence[str]) -> None:
        self._tags = validate_tags(list(value))

    @property
    def aliases(self) -> list[str]:
        """Every alias in use in this collection (sorted), e.g. ``['latest', 'production']``."""
        return self._ws.store.collection_aliases(self._record.pk)

    def artifacts(self, per_page: int = 50, start: str | None = None) -> Paginator[Artifact]:
        """The versions in this collection, oldest first (lazy, ``per_page`` per query; ``start``: a
        ``.cursor`` of an earlier result to continue from)."""
        return versions_paginator(self._ws, Scope(collection_pk=self._record.pk), (), per_page, start)

    def versions(self, per_page: int = 50, start: str | None = None) -> Paginator[Artifact]:
        """The same as :meth:`artifacts`."""
        return self.artifacts(per_page=per_page, start=start)

    def save(self) -> None:
        """Persist ``name`` (a rename), ``description`` and ``tags``, in one transaction."""
        if self.description is not None and not isinstance(self.description, str):
            raise ValueError(f"collection description must be a string or None, got {self.description!r}")
        name = validate_artifact_name(self._name)
        try:
            self._record = self._ws.store.update_collection(
                self._record.pk,
                description=self.description,
                tags=validate_tags(self._tags),
                name=None if name == self._record.name else name,
            )
        except LookupError:
            raise ValueError(f"artifact collection {self.path!r} no longer exists; nothing was saved") from None
        self.description, self._tags = self._record.description, list(self._record.tags)
        self._name = self._record.name

    def delete(self) -> None:
        """Delete the collection and every version in it, as W&B does: each version is deleted as
        ``artifact.delete(delete_aliases=True)`` deletes one (its aliases and registry links go, with their
        events). For a registry collection, its links are removed; the linked versions stay where they were
        logged. The name can then be used for a new collection, which starts at v0."""
        from wandb_dagster.sdk.run import acting_run_pk

        try:
            self._ws.store.delete_collection(self._record.pk, run_pk=acting_run_pk(self._ws))
        except LookupError:
            raise ValueError(f"artifact collection {self.path!r} does not exist (deleted already?)") from None

    @property
    def path(self) -> str:
        """``entity/project/name`` as saved (a new ``name`` counts once :meth:`save` returns)."""
        return f"{self.entity}/{self.project}/{self._record.name}"

    def __repr__(self) -> str:
        return f"<ArtifactCollection {self.path} ({self.type})>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArtifactCollection) and other._record.pk == self._record.pk

    def __hash__(self) -> int:
        return hash(("collection", self._record.pk))


def versions_paginator(
    ws: Workspace, scope: Scope, filters: Sequence[Filter], per_page: int | None, start: str | None = None
) -> Paginator[Artifact]:
    """The versions in ``scope`` matching ``filters``, in (project, collection, index) order (lazy)."""
    from wandb_dagster.api.paginator import Paginator

    query = ws.store.query("versions", scope, filters)
    return Paginator.over(ws.store, query, lambda r: artifact_from_record(ws, r), per_page, start)


def collections_paginator(
    ws: Workspace, scope: Scope, filters: Sequence[Filter], per_page: int | None, start: str | None = None
) -> Paginator[ArtifactCollection]:
    """The collections in ``scope`` matching ``filters``, in creation order (lazy)."""
    from wandb_dagster.api.paginator import Paginator

    query = ws.store.query("collections", scope, filters)
    return Paginator.over(ws.store, query, lambda r: ArtifactCollection(ws, r), per_page, start)


class ArtifactType:
    """The artifact type ``name`` within a project: its collections."""

    def __init__(self, ws: Workspace, entity: str, project: str, name: str) -> None:
        self._ws, self.entity, self.project, self.name = ws, entity, project, name

    @property
    def type(self) -> str:
        return self.name

    def _scope(self, collection: str | None = None) -> Scope:
        return Scope(entity=self.entity, project=self.project, type=self.name, collection=collection)

    def collections(self, per_page: int = 50, start: str | None = None) -> Paginator[ArtifactCollection]:
        return collections_paginator(self._ws, self._scope(), (), per_page, start)

    def collection(self, name: str) -> ArtifactCollection:
        store = self._ws.store
        found, _ = store.page(store.query("collections", self._scope(name)), after=None, limit=1)
        if not found:
            raise ValueError(f"no {self.name!r} collection {name!r} in {self.entity}/{self.project}")
        return ArtifactCollection(self._ws, found[0])

    def __repr__(self) -> str:
        return f"<ArtifactType {self.name} in {self.entity}/{self.project}>"


# ------------------------------------------------------------------------------------------ projects and runs


class Project:
    """A project of an entity (registries are projects named ``wandb-registry-*``), with the attributes of
    W&B's ``Project``: ``id``, ``name``, ``entity``, ``path``, ``url``, ``created_at``, ``is_benchmark``,
    ``description``; ``runs()``, ``collections()``, ``artifacts_types()``::

        >>> project = api.project("bikes")                              # doctest: +SKIP
        >>> [c.name for c in project.collections()]                     # doctest: +SKIP
    """

    # W&B benchmarks are a feature of W&B's web app; no project here is one.
    is_benchmark = False

    def __init__(self, api: Api, entity: str, name: str, record: ProjectRecord | None = None) -> None:
        self._api, self.entity, self.name, self._record = api, entity, name, record

    @property
    def id(self) -> str:
        """The project's id; ValueError for a project that does not exist (yet), as in W&B."""
        if self._record is None:
            raise ValueError(
                f"Project {self.entity}/{self.name} not found; it is created by the first run or artifact "
                "logged to it, or by api.create_project(name, entity)."
            )
        return str(self._record.pk)

    @property
    def entity_name(self) -> str:
        return self.entity

    @property
    def description(self) -> str | None:
        return None if self._record is None else self._record.description

    @property
    def created_at(self) -> str | None:
        """ISO 8601 text, as in W&B (None for a project that does not exist yet)."""
        return None if self._record is None else iso_timestamp(self._record.created_at)

    @property
    def created_datetime(self) -> datetime | None:
        return None if self._record is None else self._record.created_at

    @property
    def path(self) -> list[str]:
        return [self.entity, self.name]

    @property
    def url(self) -> str:
        """The project's page in the web app, ``<app>/<entity>/<project>``, as ``run.url`` (docs/behaviour.md
        section 7)."""
        return self._api._ws.page_url(self.entity, self.name)

    def runs(self, filters: dict | None = None, order: str = "+created_at", per_page: int = 50) -> Paginator[Run]:
        return self._api.runs(f"{self.entity}/{self.name}", filters=filters, order=order, per_page=per_page)

    def artifacts_types(self, per_page: int = 50) -> Paginator[ArtifactType]:
        """The artifact types used in this project (lazy, as W&B's ``ArtifactTypes``)."""
        return self._api.artifact_types(project=f"{self.entity}/{self.name}")

    artifact_types = artifacts_types

    def collections(
        self, filters: Mapping[str, Any] | None = None, order: str | None = None, per_page: int = 50
    ) -> Paginator[ArtifactCollection]:
        """The artifact collections of this project, of every type, in creation order (lazy). ``filters`` as
        for registry collections (``name``, ``tag``, ``description``, ``created_at``, ``updated_at``);
        ``order``: None or ``+created_at`` (creation order is the only order here)."""
        if order not in (None, "", "+created_at", "created_at", "+createdAt", "createdAt"):
            raise ValueError(
                f"order {order!r} is not supported for collections; they come in creation order "
                "(order=None or '+created_at')"
            )
        chosen: list[Filter] = [] if filters is None else [("collection", filters)]
        scope = Scope(entity=self.entity, project=self.name)
        return collections_paginator(self._api._ws, scope, chosen, per_page)

    def sweeps(self, per_page: int = 50, filters: dict | None = None, order: str | None = None) -> Any:
        """The project's sweeps, oldest first. ``filters`` and ``order`` are not supported yet."""
        from wandb_dagster.api.sweeps import Sweep

        if filters or order:
            raise ValueError("Project.sweeps(filters=..., order=...) is not supported yet; call it without them")
        store = self._api._ws.store
        return [Sweep(self._api._ws, record) for record in store.project_sweeps(self.entity, self.name)]

    def __repr__(self) -> str:
        return f"<Project {self.entity}/{self.name}>"


class Run:
    """A run as read from the workspace (``api.run(path)``, ``api.runs(...)``).

    ``name`` is the display name (as in W&B's public API); ``id`` the run id. ``config`` is a dict;
    ``summary`` behaves like W&B's summary object (see :mod:`wandb_dagster.api.summary`). Change them (and
    ``name``, ``tags``, ``group``, ``job_type``, ``notes``) and call :meth:`update` to save::

        >>> run = api.run("my-team/my-project/abc12345")           # doctest: +SKIP
        >>> run.summary["accuracy"] = 0.9; run.config["note"] = "x"; run.update()   # doctest: +SKIP
    """

    def __init__(self, ws: Workspace, record: RunRecord) -> None:
        self._ws = ws
        self._load(record)

    def _load(self, record: RunRecord) -> None:
        self._record = record
        self.id: str = record.id
        self.entity: str = record.entity
        self.project: str = record.project
        self.display_name: str | None = record.display_name
        self.state: str = record.state
        self.config: dict[str, Any] = dict(record.config)
        self.summary: Summary = Summary(record.summary, self._write_summary)
        self.tags: list[str] = list(record.tags)
        self.group: str | None = record.group
        self.job_type: str | None = record.job_type
        self.notes: str | None = record.notes
        self.host: str | None = record.host
        self.username: str | None = record.username
        self.sweep_id: str | None = record.sweep  # the sweep this run is a trial of (None: no sweep)
        # W&B's public Run gives ISO 8601 text; the *_datetime attributes hold the same as datetimes.
        self.created_datetime: datetime = record.created_at
        self.heartbeat_datetime: datetime | None = record.heartbeat_at
        self.finished_datetime: datetime | None = record.finished_at
        self.created_at: str = iso_timestamp(record.created_at)
        self.heartbeat_at: str | None = None if record.heartbeat_at is None else iso_timestamp(record.heartbeat_at)
        self.finished_at: str | None = None if record.finished_at is None else iso_timestamp(record.finished_at)

    @property
    def name(self) -> str | None:
        return self.display_name

    @name.setter
    def name(self, value: str) -> None:
        self.display_name = value

    @property
    def path(self) -> list[str]:
        return [self.entity, self.project, self.id]

    @property
    def sweep(self) -> Any:
        """The :class:`~wandb_dagster.api.sweeps.Sweep` this run is a trial of, or None, as W&B's ``run.sweep``."""
        from wandb_dagster.api.sweeps import Sweep

        if self.sweep_id is None:
            return None
        record = self._ws.store.get_sweep(self.entity, self.project, self.sweep_id)
        return None if record is None else Sweep(self._ws, record)

    @property
    def url(self) -> str:
        """The run's page in the web app, ``<app>/<entity>/<project>/runs/<id>`` (docs/behaviour.md section 5)."""
        return run_url(self._ws, self.entity, self.project, self.id)

    @property
    def storage_id(self) -> str:
        return str(self._record.pk)

    @property
    def summary_metrics(self) -> dict[str, Any]:
        """The summary as a plain dict."""
        return self.summary._plain()

    def _write_summary(self, summary: dict[str, Any]) -> None:
        try:
            self._ws.store.update_run(self._record.pk, summary=summary)
        except LookupError:
            raise ValueError(f"run {'/'.join(self.path)!r} no longer exists; the summary was not saved") from None

    def update(self) -> None:
        """Save changes made to name, tags, group, job_type, notes, config and summary (one transaction)."""
        for what, text in (("name", self.display_name), ("group", self.group), ("job_type", self.job_type),
                           ("notes", self.notes)):  # fmt: skip
            if text is not None and not isinstance(text, str):
                raise ValueError(f"run {what} must be a string or None, got {text!r}; nothing was saved")
        try:
            self._ws.store.update_run(
                self._record.pk,
                display_name=self.display_name,
                tags=validate_tags(list(self.tags)),
                group=self.group,
                job_type=self.job_type,
                notes=self.notes,
                config=check_json_size(json_value(dict(self.config), "config"), "run.config"),
                summary=self.summary._plain(),
            )
        except LookupError:
            raise ValueError(f"run {'/'.join(self.path)!r} no longer exists; nothing was saved") from None
        self.load(force=True)

    save = update

    def delete(self, delete_artifacts: bool = False) -> None:
        """Delete the run, its history and its lineage. The artifacts it logged stay (without a producing
        run) unless ``delete_artifacts=True``, which deletes the versions it created, aliases included."""
        try:
            self._ws.store.delete_run(self._record.pk, delete_artifacts=delete_artifacts)
        except LookupError:
            raise ValueError(f"run {'/'.join(self.path)!r} does not exist (deleted already?)") from None

    def load(self, force: bool = False) -> None:
        """Read the run again (state, summary... may have changed since it was fetched)."""
        fresh = self._ws.store.get_run(self.entity, self.project, self.id)
        if fresh is None:
            raise ValueError(f"run {'/'.join(self.path)!r} no longer exists")
        self._load(fresh)

    def history(
        self,
        samples: int = 500,
        keys: Sequence[str] | None = None,
        x_axis: str = "_step",
        pandas: bool = True,
        stream: str = "default",
    ) -> Any:
        """Up to ``samples`` history rows (evenly spread over the run when there are more), as W&B.

        With ``keys``, only rows that have every key, holding those keys and ``x_axis``. ``stream="system"``:
        the system metrics samples instead (W&B's events stream: ``system.cpu``, ``system.memory_percent``...,
        with ``_timestamp`` and ``_runtime``). Returns a pandas DataFrame when ``pandas`` is true and pandas is
        installed, else a list of dicts.
        """
        if stream not in ("default", "system"):
            raise ValueError(
                f"stream={stream!r} is invalid; use 'default' (the logged metrics) or 'system' (machine metrics)."
            )
        if stream == "system" and keys:
            raise ValueError("stream must be 'default' when specifying keys, as in W&B; leave keys out for 'system'.")
        if stream == "system":
            rows = self._ws.store.system_metrics(self._record.pk)
        else:
            rows = self._ws.store.history(self._record.pk)
        if keys is not None:
            wanted = [x_axis, *[k for k in keys if k != x_axis]]
            rows = [{k: row.get(k) for k in wanted} for row in rows if all(k in row for k in keys)]
        if samples is not None and len(rows) > samples > 0:
            step = len(rows) / samples
            rows = [rows[math.floor(i * step)] for i in range(samples)]
        if pandas:
            try:
                import pandas as pd
            except ImportError:
                return rows
            return pd.DataFrame.from_records(rows)
        return rows

    def scan_history(
        self,
        keys: Sequence[str] | None = None,
        page_size: int = 1000,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every history row (``min_step <= _step < max_step``), read ``page_size`` rows per query."""
        after = None if min_step is None else min_step - 1
        while True:
            rows = self._ws.store.history_page(self._record.pk, after_step=after, limit=page_size)
            for row in rows:
                if max_step is not None and row["_step"] >= max_step:
                    return
                if keys is None:
                    yield row
                elif all(k in row for k in keys):
                    yield {k: row[k] for k in ("_step", *keys) if k in row}
            if len(rows) < page_size:
                return
            after = rows[-1]["_step"]

    def files(self, names: list[str] | None = None, pattern: str | None = None, per_page: int = 50) -> list[File]:
        """The run's files: those it saved (``run.save``, ``output.log``) and the media files its history and
        summary name (``wandb.Image``, ``Table``...); all of them, those in ``names``, or those matching
        ``pattern`` (SQL LIKE: ``"%.png"``), as W&B."""
        from wandb_dagster.api.files import run_files

        return run_files(self._ws, self, dict(self._record.summary), names, pattern)

    def file(self, name: str) -> File:
        """The run's file ``name``: a file it saved (``"output.log"``, a ``run.save`` path) or a ``path`` its
        history names (e.g. ``media/images/sample_0_<hash>.png``)."""
        found = self.files(names=[name])
        if not found:
            raise ValueError(
                f"Run {'/'.join(self.path)!r} has no file {name!r}; its files are those it saved (run.save) and the "
                "paths its history and summary name (run.files() lists them)."
            )
        return found[0]

    def logged_artifacts(self, per_page: int = 100) -> list[Artifact]:
        """The versions this run logged (including identical content it logged again), oldest first."""
        return [artifact_from_record(self._ws, r) for r in self._ws.store.run_outputs(self._record.pk)]

    def used_artifacts(self, per_page: int = 100) -> list[Artifact]:
        """The versions this run used as inputs, oldest version first."""
        return [artifact_from_record(self._ws, r) for r in self._ws.store.run_inputs(self._record.pk)]

    def __repr__(self) -> str:
        return f"<Run {'/'.join(self.path)} ({self.state})>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other._record.pk == self._record.pk

    def __hash__(self) -> int:
        return hash(("run", self._record.pk))
