"""``Api``: read and update what is in a workspace, as ``wandb.Api`` does for a W&B server.

Example::

    >>> import wandb_dagster as wandb
    >>> api = wandb.Api()                                                   # doctest: +SKIP
    >>> artifact = api.artifact("bike-dataset:latest")                      # doctest: +SKIP
    >>> artifact.description = "My new description"; artifact.save()       # doctest: +SKIP
    >>> for run in api.runs("my-project", {"config.lr": {"$gt": 0.01}}, order="-summary_metrics.loss"):
    ...     print(run.id, run.summary["loss"])                              # doctest: +SKIP
    >>> api.registries(filter={"name": {"$regex": "model"}}).versions(filter={"alias": "production"})  # doctest: +SKIP

Results are lazy and paginated (``per_page`` rows per SQL query, keyset pagination); ``len()`` is one COUNT.
Filters are MongoDB-style and compiled to SQL (see :mod:`wandb_dagster.store.filters`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

from wandb_dagster.api.directory import Team, User
from wandb_dagster.api.objects import (
    Artifact,
    ArtifactCollection,
    ArtifactType,
    Project,
    Run,
    artifact_from_record,
    collections_paginator,
    versions_paginator,
)
from wandb_dagster.api.paginator import Paginator
from wandb_dagster.api.registries import Registries, Registry, create_registry, registries
from wandb_dagster.api.sweeps import Sweep
from wandb_dagster.sdk.artifact import ArtifactNotFoundError, version_record
from wandb_dagster.sdk.names import normalize_project_name, parse_artifact_path
from wandb_dagster.sdk.registry_paths import has_entity, organization_entity, registry_location
from wandb_dagster.sdk.run import fetch_artifact
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.settings import Settings
from wandb_dagster.storage.uri_credentials import redact
from wandb_dagster.store.scope import Filter, Scope

_OVERRIDE_KEYS = ("entity", "project", "base_url", "storage_root", "root_dir", "organization")


class Api:
    """Query a workspace. ``overrides`` may set ``entity``, ``project``, ``organization`` (where registry paths
    without one resolve; default: the workspace's default organization) and ``base_url``: the workspace's
    database URL (default: the configured workspace).

    ``timeout`` and ``api_key`` are accepted for W&B compatibility and unused: there is no server.
    """

    def __init__(
        self, overrides: dict[str, Any] | None = None, timeout: int | None = None, api_key: str | None = None
    ) -> None:
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(_OVERRIDE_KEYS))
        if unknown:
            raise ValueError(f"Unknown Api overrides {unknown}; valid keys: {list(_OVERRIDE_KEYS)}.")
        base_url = overrides.get("base_url")
        if base_url is not None and ("://" not in base_url or base_url.split("://")[0] in ("http", "https")):
            raise ValueError(
                f"overrides['base_url']={redact(str(base_url))!r} is not a workspace URL; use a database URL such as "
                "'sqlite:////path/store.db' or 'postgresql://user@host/db'."
            )
        self.settings = Settings.resolve(
            database_url=base_url,
            entity=overrides.get("entity"),
            project=overrides.get("project"),
            storage_root=overrides.get("storage_root"),
            root_dir=overrides.get("root_dir"),
            organization=overrides.get("organization"),
        )
        self.timeout = timeout
        self._ws = Workspace.for_settings(self.settings)

    # ------------------------------------------------------------------ basics

    @property
    def default_entity(self) -> str:
        return self.settings.entity

    @property
    def api_key(self) -> None:
        return None

    @property
    def _store(self) -> Any:
        return self._ws.store

    def flush(self) -> None:
        """Nothing is cached between calls (each call queries the workspace); kept for W&B compatibility."""

    def _entity_project(self, path: str | None) -> tuple[str, str]:
        """``entity/project`` or ``project`` (or None: the defaults)."""
        if not path:
            return self.settings.entity, self.settings.project
        parts = path.strip("/").split("/")
        if len(parts) == 1:
            return self.settings.entity, normalize_project_name(parts[0])
        if len(parts) == 2 and all(parts):
            return parts[0], normalize_project_name(parts[1])
        raise ValueError(f"project path {path!r} is invalid: use 'entity/project' or 'project'")

    # ------------------------------------------------------------------ artifacts

    def artifact(self, name: str, type: str | None = None) -> Artifact:
        """The version named ``[[entity/]project/]name[:version|alias]`` (alias defaults to ``latest``)."""
        if not name:
            raise ValueError("You must specify name= to fetch an artifact, e.g. api.artifact('bike-dataset:v0').")
        found = fetch_artifact(
            self._ws, name, self.settings.entity, self.settings.project, organization=self.settings.organization
        )
        artifact = artifact_from_record(self._ws, version_record(found, "Api.artifact"))
        if type is not None and artifact.type != type:
            raise ValueError(f"Artifact {artifact.qualified_name!r} has type {artifact.type!r}, not {type!r}.")
        return artifact

    def artifact_exists(self, name: str, type: str | None = None) -> bool:
        try:
            self.artifact(name, type=type)
        except ArtifactNotFoundError:
            return False
        except ValueError:
            if type is None:
                raise
            return False
        return True

    def collection_path(self, name: str) -> tuple[str, str, str]:
        """(entity, project, collection) of ``[[entity/]project/]name``, defaults filled in; a registry path
        resolves to its organization's entity (docs/behaviour.md section 6), as ``artifact()`` does.

        >>> wandb.Api().collection_path("wandb-registry-model/bike-models")   # doctest: +SKIP
        ('default', 'wandb-registry-model', 'bike-models')
        """
        path = parse_artifact_path(name.partition(":")[0], self.settings.entity, self.settings.project)
        entity, project = registry_location(
            self._ws, path.entity, path.project, explicit=has_entity(name), organization=self.settings.organization
        )
        return entity, project, path.name

    def _collection_record(self, type_name: str | None, name: str) -> Any:
        entity, project, collection = self.collection_path(name)
        record = self._store.collection(entity, project, collection)
        if record is None:
            raise ArtifactNotFoundError(
                f"No artifact collection {entity}/{project}/{collection}; check the name and project."
            )
        if type_name is not None and record.type != type_name:
            raise ValueError(
                f"Collection {entity}/{project}/{collection} has type {record.type!r}, not {type_name!r}."
            )
        return record

    def artifact_collection(self, type_name: str, name: str) -> ArtifactCollection:
        """The collection ``[[entity/]project/]name`` of type ``type_name``."""
        return ArtifactCollection(self._ws, self._collection_record(type_name, name))

    def artifact_collection_exists(self, name: str, type: str) -> bool:
        try:
            self._collection_record(type, name)
        except ValueError:
            return False
        return True

    def artifact_collections(
        self, project_name: str, type_name: str, per_page: int | None = 50, start: str | None = None
    ) -> Paginator[ArtifactCollection]:
        """The collections of type ``type_name`` in project ``[entity/]project_name`` (lazy; ``start``: the
        ``.cursor`` of an earlier result of this query)."""
        entity, project = self._entity_project(project_name)
        scope = Scope(entity=entity, project=project, type=type_name)
        return collections_paginator(self._ws, scope, (), per_page, start)

    def artifact_type(self, type_name: str, project: str | None = None) -> ArtifactType:
        """The artifact type ``type_name`` in ``project`` (``[entity/]project``; default: the Api's)."""
        entity, project_name = self._entity_project(project)
        types = self._store.artifact_types(entity, project_name)
        if type_name not in types:
            raise ValueError(f"No artifacts of type {type_name!r} in {entity}/{project_name}; types there: {types}")
        return ArtifactType(self._ws, entity, project_name, type_name)

    def artifact_types(self, project: str | None = None, start: str | None = None) -> Paginator[ArtifactType]:
        """The artifact types used in ``project`` (``[entity/]project``; default: the Api's), by name."""
        entity, project_name = self._entity_project(project)
        types = self._store.artifact_types(entity, project_name)
        return Paginator.of_list([ArtifactType(self._ws, entity, project_name, t) for t in types], start=start)

    def artifacts(
        self,
        type_name: str,
        name: str,
        per_page: int | None = 50,
        tags: list[str] | None = None,
        start: str | None = None,
    ) -> Paginator[Artifact]:
        """The versions of collection ``[[entity/]project/]name``, oldest first (lazy, ``per_page`` per query);
        with ``tags``, only versions having all of them; ``start``: the ``.cursor`` of an earlier result of
        this query, to continue from there."""
        record = self._collection_record(type_name, name)
        filters: list[Filter] = [("version", {"tag": {"$all": list(tags)}})] if tags else []
        return versions_paginator(self._ws, Scope(collection_pk=record.pk), filters, per_page, start)

    def artifact_versions(self, type_name: str, name: str, per_page: int | None = 50) -> Paginator[Artifact]:
        """Deprecated: use :meth:`artifacts`."""
        warnings.warn(
            "Api.artifact_versions(type_name, name) is deprecated; use Api.artifacts(type_name, name).",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.artifacts(type_name, name, per_page=per_page)

    # ------------------------------------------------------------------ projects

    def create_project(self, name: str, entity: str) -> None:
        """Create project ``entity/name`` (nothing happens if it exists)."""
        if not name or "/" in name:
            raise ValueError(f"project name {name!r} is invalid: a non-empty name without '/'")
        self._store.ensure_project(entity or self.settings.entity, normalize_project_name(name))

    def project(self, name: str, entity: str | None = None) -> Project:
        entity = entity or self.settings.entity
        name = normalize_project_name(name)
        return Project(self, entity, name, self._store.get_project(entity, name))

    def projects(
        self, entity: str | None = None, per_page: int | None = 200, *, all_entities: bool = False
    ) -> Paginator[Project]:
        """The projects of ``entity`` (default: the Api's), in creation order (lazy); ``all_entities=True``:
        those of every entity of the workspace (the web app's projects page; registries among them)."""
        entity = None if all_entities else (entity or self.settings.entity)
        query = self._store.query("projects", Scope(entity=entity))
        return Paginator.over(self._store, query, lambda r: Project(self, r.entity, r.name, r), per_page)

    # ------------------------------------------------------------------ runs

    def create_run(self, *, run_id: str | None = None, project: str | None = None, entity: str | None = None) -> Run:
        """Create a run (state ``running``) without starting it in this process."""
        from wandb_dagster.sdk.init_args import new_run_id

        record = self._store.create_run(
            entity or self.settings.entity,
            normalize_project_name(project or self.settings.project),
            run_id or new_run_id(),
        )
        return Run(self._ws, record)

    def run(self, path: str = "") -> Run:
        """The run at ``entity/project/run_id`` (or ``project/run_id``, ``run_id``, ``entity/project/runs/run_id``)."""
        parts = [p for p in path.strip("/").split("/") if p]
        if len(parts) == 4 and parts[2] == "runs":
            parts = [parts[0], parts[1], parts[3]]
        if not 1 <= len(parts) <= 3:
            raise ValueError(f"run path {path!r} is invalid: use 'entity/project/run_id'")
        run_id = parts[-1]
        entity, project = self._entity_project("/".join(parts[:-1]) or None)
        record = self._store.get_run(entity, project, run_id)
        if record is None:
            raise ValueError(f"Could not find run {entity}/{project}/{run_id}; check the path (entity/project/run_id).")
        return Run(self._ws, record)

    def sync_tensorboard(
        self, root_dir: str | os.PathLike[str], run_id: str | None = None, project: str | None = None,
        entity: str | None = None,
    ) -> Run:  # fmt: skip
        """Import the TensorBoard event files under ``root_dir`` as a run's history, as W&B's
        ``Api.sync_tensorboard``; returns the run. ``run_id`` None makes a new run (a new id, as W&B); an
        existing ``run_id`` gets only the steps it does not have. ``project``/``entity`` default to this
        Api's. Needs the ``tensorboard`` package (the ``wandb-import`` extra). How tags, steps and media are
        mapped: :mod:`wandb_dagster.sdk.imports.tensorboard`.

            >>> run = wandb.Api().sync_tensorboard("runs/exp1", project="bikes")      # doctest: +SKIP
            >>> run.history(pandas=False)[0]["train/loss"]                             # doctest: +SKIP
            0.75
        """
        from wandb_dagster.sdk.imports.tensorboard import sync_tensorboard

        report = sync_tensorboard(
            root_dir, run_id=run_id, project=normalize_project_name(project or self.settings.project),
            entity=entity or self.settings.entity, workspace=self._ws,
        )  # fmt: skip
        return self.run(report.path)

    def runs(
        self,
        path: str | None = None,
        filters: Mapping[str, Any] | None = None,
        order: str = "+created_at",
        per_page: int = 50,
        include_sweeps: bool = True,
    ) -> Paginator[Run]:
        """Runs of project ``[entity/]project`` matching ``filters`` (MongoDB style), sorted by ``order``.

        ``order``: ``+`` (ascending; also without a sign) or ``-`` (descending) followed by ``created_at``,
        ``heartbeat_at``, ``config.<key>.value`` (W&B's form; ``config.<key>`` works too) or
        ``summary_metrics.<key>``; an empty order is ``+created_at``, as in W&B. Along a JSON key, missing or
        null values come first, then booleans, numbers, strings, and anything else. An order that is not
        one of these is a ValueError naming it. ``include_sweeps=False`` leaves out the runs of sweeps.
        """
        order = order or "+created_at"
        entity, project = self._entity_project(path)
        chosen: list[Filter] = [("run", filters)] if filters is not None else []
        if not include_sweeps:
            chosen.append(("run", {"sweep": None}))  # the runs of no sweep
        query = self._store.query("runs", Scope(entity=entity, project=project), chosen, order=order)
        return Paginator.over(self._store, query, lambda r: Run(self._ws, r), per_page)

    def sweep(self, path: str = "") -> Sweep:
        """The sweep at ``entity/project/sweep_id`` (or ``project/sweep_id``, ``sweep_id``,
        ``entity/project/sweeps/sweep_id``)."""
        parts = [p for p in path.strip("/").split("/") if p]
        if len(parts) == 4 and parts[2] == "sweeps":
            parts = [parts[0], parts[1], parts[3]]
        if not 1 <= len(parts) <= 3:
            raise ValueError(f"sweep path {path!r} is invalid: use 'entity/project/sweep_id'")
        entity, project = self._entity_project("/".join(parts[:-1]) or None)
        record = self._store.get_sweep(entity, project, parts[-1])
        if record is None:
            raise ValueError(
                f"Could not find sweep {entity}/{project}/{parts[-1]}; check the path (entity/project/sweep_id)."
            )
        return Sweep(self._ws, record)

    def from_path(self, path: str) -> Any:
        """A project (``project``, ``entity/project``), a run (``entity/project/runs/id``, ``entity/project/id``),
        a sweep (``entity/project/sweeps/id``) or a report (``entity/project/reports/<Title>--<id>``: a
        :class:`wandb_dagster.reports.Report`)."""
        parts = [p for p in path.strip("/").split("/") if p]
        if len(parts) in (1, 2):
            entity, project = self._entity_project("/".join(parts))
            return self.project(project, entity)
        if len(parts) == 3 or (len(parts) == 4 and parts[2] == "runs"):
            return self.run("/".join(parts))
        if len(parts) == 4 and parts[2] == "sweeps":
            return self.sweep("/".join(parts))
        if len(parts) == 4 and parts[2] == "reports":
            from wandb_dagster.reports.report import load, report_id_from_url

            return load(self, report_id_from_url(path))
        raise ValueError(
            f"path {path!r} is invalid: use 'entity/project', 'entity/project/runs/run_id' or "
            "'entity/project/sweeps/sweep_id' or 'entity/project/reports/<Title>--<id>'"
        )

    def reports(self, path: str = "", name: str | None = None, per_page: int = 50) -> Paginator[Any]:
        """The saved reports of project ``[entity/]project`` (default: the Api's), newest first, as
        :class:`wandb_dagster.reports.Report` objects; with ``name``, those of that title (or that id).

        >>> [r.title for r in wandb.Api().reports("bikes")]        # doctest: +SKIP
        ['Training']
        """
        from wandb_dagster.reports.report import from_record, is_report_id

        entity, project = self._entity_project(path or None)
        records = self._store.project_reports(entity, project, title=name)
        if name is not None and not records and is_report_id(name):
            found = self._store.get_report(name)
            records = [found] if found is not None and (found.entity, found.project) == (entity, project) else []
        return Paginator.of_list([from_record(self, r) for r in records], per_page=per_page)

    # ------------------------------------------------------------------ registries

    def registries(
        self,
        organization: str | None = None,
        filter: Mapping[str, Any] | None = None,
        per_page: int = 100,
        start: str | None = None,
    ) -> Registries:
        """The registries of ``organization`` (its name or its entity's; default: the Api's organization,
        else the workspace's default) matching ``filter``.

        Chain ``.collections(filter)`` and ``.versions(filter)`` to search inside them (one SQL query).
        Registry fields: name (``wandb-registry-`` is added except in ``$regex``/``$contains``;
        case-insensitive), description, created_at, updated_at.
        """
        return registries(self._ws, self._org_entity(organization), filter, per_page, start)

    def registry(self, name: str, organization: str | None = None) -> Registry:
        """The registry ``name`` (``model`` or ``wandb-registry-model``, any case) of ``organization``."""
        found = list(self.registries(organization, filter={"name": name}))
        if not found:
            org_entity = self._org_entity(organization)
            raise ValueError(
                f"no registry {name!r} in organization {organization or org_entity!r}; registries there: "
                f"{self._store.registry_names(org_entity)}"
            )
        return found[0]

    def create_registry(
        self,
        name: str,
        visibility: str,
        organization: str | None = None,
        description: str | None = None,
        artifact_types: list[str] | None = None,
    ) -> Registry:
        """Create registry ``name`` (without ``wandb-registry-``) in ``organization`` (default: the Api's).

        ``visibility`` (``"organization"`` or ``"restricted"``) is recorded and shown, not enforced: this is a
        directory, not access control (README, "Organizations, registries, teams and users"). ``artifact_types``:
        the types it accepts (default: every type). A registry of that name existing already is a ValueError.

        >>> registry = wandb.Api().create_registry("demo-models", visibility="organization",
        ...                                        artifact_types=["model"])           # doctest: +SKIP
        """
        return create_registry(
            self._ws, self._org_entity(organization), name, visibility=visibility, description=description,
            artifact_types=artifact_types,
        )  # fmt: skip

    def _org_entity(self, organization: str | None) -> str:
        if organization:
            return organization_entity(self._ws, organization, None)
        return organization_entity(self._ws, None, self.settings.organization)

    # ------------------------------------------------------------------ teams and users (seed 001)
    # A directory, not access control (api/directory.py).

    @property
    def viewer(self) -> User:
        """The current user: the configured ``WANDB_USERNAME``, else the operating-system user; recorded in
        the directory the first time it is asked for."""
        directory = self._store.directory()
        found = directory.user(self.settings.username)
        if found is None or found.username != self.settings.username:  # an email match is someone else
            found = directory.ensure_user(self.settings.username)
        return User(directory, found)

    def create_user(self, email: str, admin: bool = False) -> User:
        """A new user for ``email``; its username is the email's local part (``-2``... if taken)."""
        if not isinstance(email, str) or "@" not in email:
            raise ValueError(f"email {email!r} is invalid: give an address such as 'alice@example.com'")
        directory = self._store.directory()
        return User(directory, directory.create_user(email, admin=admin))

    def user(self, username_or_email: str) -> User | None:
        """The user of that username or email, or None (as in W&B)."""
        directory = self._store.directory()
        found = directory.user(username_or_email)
        return None if found is None else User(directory, found)

    def users(self, username_or_email: str) -> list[User]:
        """Every user whose username or email contains ``username_or_email`` (without case)."""
        directory = self._store.directory()
        return [User(directory, u) for u in directory.users(username_or_email)]

    def create_team(self, team: str, admin_username: str | None = None) -> Team:
        """Team ``team`` with ``admin_username`` (default: the viewer) as its admin; it belongs to the Api's
        organization. An existing team is returned as it is, as W&B's upsert does."""
        # A team is an entity: its name is the first part of paths, so it cannot hold "/" or ":".
        if not isinstance(team, str) or not team.strip() or any(c in team for c in "/: \t\n"):
            raise ValueError(f"team name {team!r} is invalid: use letters, digits, '-', '_' or '.', e.g. 'my-team'")
        name = team
        admin = admin_username if admin_username is not None else self.viewer.username
        org = self._store.organization(self.settings.organization or self._store.default_organization, create=True)
        directory = self._store.directory()
        record, _created = directory.create_team(name, admin=admin, organization_pk=None if org is None else org.pk)
        return Team(directory, record)

    def team(self, team: str) -> Team:
        """Team ``team``; ValueError naming the teams when there is none of that name."""
        directory = self._store.directory()
        found = directory.team(team)
        if found is None:
            raise ValueError(
                f"no team {team!r} in this workspace; teams: {directory.teams()}. Create it with "
                f"wandb.Api().create_team({team!r})"
            )
        return Team(directory, found)

    # ------------------------------------------------------------------ events (contract C)

    # ------------------------------------------------------------------ launch (wandb_dagster/launch/)

    def create_run_queue(
        self,
        name: str,
        type: str,
        entity: str | None = None,
        prioritization_mode: str | None = None,
        config: dict[str, Any] | None = None,
        template_variables: dict[str, Any] | None = None,
    ) -> Any:
        """Create run queue ``name`` of ``entity`` (default: the Api's), as W&B's: ``type`` is the resource
        type (``local-process`` or ``local-container``: Dagster launches the runs), ``prioritization_mode``
        ``"V0"`` takes items by priority, ``config`` holds ``run_config`` (a partial Dagster run config) and
        ``tags`` with ``{{var}}`` placeholders declared in ``template_variables``
        (``{"var": {"schema": {"type": "integer", "minimum": 1, "default": 2}}}``). A queue of that name
        that exists is a ValueError (see :meth:`upsert_run_queue`).

        >>> wandb.Api().create_run_queue("training", type="local-process", prioritization_mode="V0")  # doctest: +SKIP
        """
        from wandb_dagster.launch.queues import put_run_queue

        return put_run_queue(
            self, name, type, entity=entity, prioritization_mode=prioritization_mode, config=config,
            template_variables=template_variables, external_links=None, create=True,
        )

    def upsert_run_queue(
        self,
        name: str,
        resource_config: dict[str, Any],
        resource_type: str,
        entity: str | None = None,
        template_variables: dict[str, Any] | None = None,
        external_links: dict[str, Any] | None = None,
        prioritization_mode: str | None = None,
    ) -> Any:
        """Create run queue ``name`` or replace its settings (its items stay), as W&B's."""
        from wandb_dagster.launch.queues import put_run_queue

        return put_run_queue(
            self, name, resource_type, entity=entity, prioritization_mode=prioritization_mode,
            config=resource_config, template_variables=template_variables, external_links=external_links,
            create=False,
        )

    def run_queue(self, entity: str | None, name: str) -> Any:
        """The run queue ``name`` of ``entity`` (None: the Api's); a missing one is a ValueError naming the
        queues that exist."""
        from wandb_dagster.launch.queues import get_run_queue

        return get_run_queue(self, entity, name)

    def queued_run(
        self,
        entity: str | None,
        project: str | None,
        queue_name: str,
        run_queue_item_id: str,
        project_queue: str | None = None,
        priority: int | None = None,
    ) -> Any:
        """The queued run ``run_queue_item_id`` of queue ``queue_name`` (``launch_add`` returns it too)."""
        from wandb_dagster.launch.queues import get_queued_run

        return get_queued_run(self, entity, project, queue_name, run_queue_item_id)

    def job(self, name: str | None, path: str | None = None) -> Any:
        """The W&B job ``[[entity/]project/]job-<dagster job>[:alias]`` (published with
        ``wandb_dagster.dagster.publish_jobs``); ``path``: also download its files there. ``.call(config=...,
        queue=...)`` enqueues a run of it."""
        from wandb_dagster.launch.jobs import Job

        if not name:
            raise ValueError("Api.job: give the job's name, e.g. api.job('bikes/job-train:latest')")
        artifact = self.artifact(name, type="job")
        if path is not None:
            artifact.download(root=path)
        return Job(self, artifact)

    def list_jobs(self, entity: str, project: str) -> list[dict[str, Any]]:
        """The jobs of ``entity/project`` in W&B's shape (one entry per job, with its versions)."""
        from wandb_dagster.launch.jobs import list_jobs

        return list_jobs(self, entity, project)

    def events(
        self, after: str | None = None, types: Any = None, filter: Mapping[str, Any] | None = None, limit: int = 100
    ) -> Any:
        """Events after cursor ``after`` (None: from the beginning); see :mod:`wandb_dagster.api.events`."""
        from wandb_dagster.api.events import read_events

        return read_events(self._store, after=after, types=types, filter=filter, limit=limit)

    def event_cursor(self) -> str:
        """The cursor of the newest event: pass it as ``after=`` to see only what happens from now on."""
        from wandb_dagster.api.events import head_cursor

        return head_cursor(self._store)

