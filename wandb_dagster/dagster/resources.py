"""``WandbResource``: the workspace, the step's tracking run, the query API and registry helpers.

Example::

    import dagster as dg
    from wandb_dagster.dagster import WandbResource

    @dg.asset
    def model(wandb: WandbResource) -> dict:
        run = wandb.run()                      # this step's run: one per step, grouped by the Dagster run
        run.log({"loss": 0.1})                 # lands in the run that also logs this asset's artifact
        return {"weights": [1, 2, 3]}

    defs = dg.Definitions(
        assets=[model],
        resources={"wandb": WandbResource(project="bikes",
                                          database_url=dg.EnvVar("WANDB_DAGSTER_DATABASE_URL"))},
    )

Secrets (a PostgreSQL password in ``database_url``) should come through ``dg.EnvVar``: Dagster then shows and
stores the variable's name, never its value, and this package never writes the URL's password anywhere: every
error leaving these methods, the IO manager and the sensors is redacted (``uri_credentials.redact``).
``dg.EnvVar`` has no fallback: when the variable is unset, every run fails at its start with
``DagsterInvalidConfigError``. Leaving ``database_url`` unset also keeps the URL out of Dagster's records, and
reads ``WANDB_DAGSTER_DATABASE_URL`` when the step runs, falling back to the embedded workspace.
"""

from __future__ import annotations

import hashlib
import os
import threading
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from wandb_dagster.sdk.artifact import Artifact
from wandb_dagster.settings import Settings
from wandb_dagster.storage.errors import StorageAccessError
from wandb_dagster.storage.uri_credentials import redact, redacted_errors
from wandb_dagster.store.errors import RunExistsError

if TYPE_CHECKING:
    from wandb_dagster.api import Api
    from wandb_dagster.sdk.run import Run
    from wandb_dagster.sdk.workspace import Workspace

# One tracking run per (workspace, Dagster run, step) in this process. Dagster runs a step's compute and its
# IO manager calls in one process, so the asset body and the IO manager find the same run here.
_step_runs: dict[tuple[str, str, str], Run] = {}
_step_runs_lock = threading.Lock()
# Per-run state of other modules (the IO manager's stored versions), dropped with the run's tracking runs.
_forgetters: dict[str, list] = {}


def _register_forget(dagster_run_id: str, forget: Any) -> None:
    with _step_runs_lock:
        hooks = _forgetters.setdefault(dagster_run_id, [])
        if forget not in hooks:
            hooks.append(forget)


# One Api per configuration: building one resolves settings and opens the workspace. Kept with the workspace
# it opened, to tell when that one has been closed since.
_apis: dict[tuple, tuple[Api, Workspace | None]] = {}


class WandbWorkspaceError(RuntimeError):
    """The workspace a ``WandbResource`` names cannot be opened (unreachable database, missing SQLite folder,
    a schema newer than this package, unreachable storage root). Raised when the resource is set up, before
    any op body runs; the message names the setting to fix and the cause, never a password."""


def _hide_password(text: str, url: str) -> tuple[str, str]:
    """``(url shown, text)`` with the password of ``url`` replaced by ``***`` in both (drivers may echo it)."""
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL we can take apart (a bad port): show nothing of it
        return "<unparseable URL>", text
    if not password:
        return url, text
    host = parts.netloc.rpartition("@")[2]
    shown = urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    for secret in {password, urllib.parse.unquote(password)}:
        text = text.replace(secret, "***")
    return shown, text


@dataclass(frozen=True)
class Promotion:
    """What :meth:`WandbResource.promote` did: ``current`` now holds the alias; ``previous`` held it before
    (None when the alias was new; equal to ``current`` when it already pointed there)."""

    current: Artifact
    previous: Artifact | None
    alias: str

    @property
    def moved(self) -> bool:
        return self.previous is None or self.previous.id != self.current.id


@dataclass(frozen=True)
class _Step:
    run_id: str
    step_key: str
    job_name: str
    job_type: str
    asset_keys: tuple[str, ...]
    partition: str | None
    code_versions: dict[str, str]


def _current_step_context() -> Any:
    """The running step's execution context, or None outside a step."""
    try:
        return dg.OpExecutionContext.get()
    except Exception:  # no step in scope (a sensor, a unit test of the IO manager, plain Python)
        return None


def _step_from_context(context: Any) -> _Step:
    op_name = context.op_def.name
    handle = getattr(context, "op_handle", None)
    step_key = str(handle) if handle is not None else op_name
    mapping_key = context.get_mapping_key()
    if mapping_key:
        step_key = f"{step_key}[{mapping_key}]"
    asset_keys: tuple[str, ...] = ()
    code_versions: dict[str, str] = {}
    if context.has_assets_def:
        selected = sorted(context.selected_asset_keys, key=lambda k: k.to_user_string())
        asset_keys = tuple(k.to_user_string() for k in selected)
        for spec in context.assets_def.specs:
            if spec.code_version and spec.key in context.selected_asset_keys:
                code_versions[spec.key.to_user_string()] = spec.code_version
    partition = None
    if context.has_partition_key:
        partition = str(context.partition_key)
    return _Step(
        run_id=context.run_id,
        step_key=step_key,
        job_name=context.job_name,
        job_type=asset_keys[0] if len(asset_keys) == 1 else op_name,
        asset_keys=asset_keys,
        partition=partition,
        code_versions=code_versions,
    )


def _tracking_run_id(dagster_run_id: str, step_key: str) -> str:
    """Deterministic, so a retried or resumed step (another process, even another machine) finds its run."""
    return f"{dagster_run_id[:8]}-{hashlib.sha1(f'{dagster_run_id}/{step_key}'.encode()).hexdigest()[:10]}"


class WandbResource(dg.ConfigurableResource):
    """The workspace a pipeline records into, and helpers for the step's run and the registry.

    Every field is optional: unset ones come from the environment (``WANDB_DAGSTER_DATABASE_URL``,
    ``WANDB_ENTITY``, ``WANDB_PROJECT``...) and then from the embedded default workspace. Per-machine
    settings (download cache, storage credentials) come from the environment, as for ``wandb_dagster.init``.
    """

    database_url: str | None = Field(
        default=None,
        description="The workspace's database URL (sqlite:///... or postgresql://...). Pass a password with "
        "dg.EnvVar (a run then fails at its start when the variable is unset), or leave this unset. Default: "
        "WANDB_DAGSTER_DATABASE_URL, else the embedded workspace.",
    )
    entity: str | None = Field(default=None, description="Default entity (WANDB_ENTITY, else your user name).")
    project: str | None = Field(default=None, description="Project runs and asset artifacts go to.")
    storage_root: str | None = Field(
        default=None, description="Blob storage root recorded when the workspace is created (local path, s3://, gs://)."
    )
    app_url: str | None = Field(
        default=None,
        description="Address of a web app that shows this workspace with W&B's page paths; materializations then "
        "link to the version's and the run's pages. Default: WANDB_DAGSTER_APP_URL, else no links.",
    )
    ui_url: str | None = Field(
        default=None,
        description="The same as app_url (the web app's base URL, `wandb-dagster ui`); give one of the two.",
    )
    create: bool = Field(
        default=False,
        description="Create the SQLite database's folder when it is missing (a new workspace). Off: a missing "
        "folder is an error, so a mistyped path never becomes an empty workspace. The default workspace "
        "(no database_url) is always created as needed.",
    )
    publish_jobs: bool = Field(
        default=False,
        description="W&B Launch: a wandb_launch_agent sensor given this resource publishes its jobs as W&B jobs "
        "(artifacts of type 'job') whenever they change, as wandb_dagster.dagster.publish_jobs(defs) does.",
    )

    # ------------------------------------------------------------------ workspace

    def _settings(self) -> Settings:
        if self.app_url and self.ui_url and self.app_url.rstrip("/") != self.ui_url.rstrip("/"):
            raise ValueError(
                f"WandbResource has app_url={self.app_url!r} and ui_url={self.ui_url!r}: they name the same "
                "setting (the web app's base URL); give only one"
            )
        return Settings.resolve(
            database_url=self.database_url,
            entity=self.entity,
            project=self.project,
            storage_root=self.storage_root,
            app_url=self.app_url or self.ui_url,
            create=self.create or None,  # None: the default workspace may be created, a named one may not
        )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Dagster sets resources up before the op body runs: a workspace that cannot be opened fails the step
        # now, not in handle_output after a possibly hours-long computation.
        self.check_workspace()

    def check_workspace(self) -> None:
        """Open the workspace (connect, migrate or check the schema revision, reach the storage root), or raise
        :class:`WandbWorkspaceError` naming ``database_url`` / ``WANDB_DAGSTER_DATABASE_URL`` and the cause.

        >>> WandbResource(database_url="sqlite:////no/such/dir/store.db").check_workspace()   # doctest: +SKIP
        Traceback (most recent call last):
        WandbWorkspaceError: WandbResource cannot open its workspace 'sqlite:////no/such/dir/store.db' ...
        """
        try:
            self.api()
        except Exception as exc:
            raise WandbWorkspaceError(self._workspace_problem(exc)) from None

    def _workspace_problem(self, exc: Exception) -> str:
        url = self._settings().database_url
        if self.database_url:
            source = "the resource's database_url"
        elif os.environ.get("WANDB_DAGSTER_DATABASE_URL"):
            source = "WANDB_DAGSTER_DATABASE_URL (the resource's database_url is unset)"
        else:
            source = "the default workspace (neither database_url nor WANDB_DAGSTER_DATABASE_URL is set)"
        # The store's and the storage's errors say what failed in one line (the driver's own words, not
        # SQLAlchemy's wrapper with its SQL and link); anything else is shown by its first line too.
        lines = str(exc).strip().splitlines()
        detail = f"{type(exc).__name__}: {lines[0].strip() if lines else ''}"
        if isinstance(exc, StorageAccessError):
            # The database opened; its recorded storage root did not (a missing bucket, refused credentials).
            fix = (
                "The database is reachable; its storage root (recorded when the workspace was created) is not: "
                "check the bucket and this machine's credentials (AWS_* / GOOGLE_APPLICATION_CREDENTIALS), or "
                "fix database_url (or WANDB_DAGSTER_DATABASE_URL) if it names the wrong workspace."
            )
        else:
            fix = (
                "Fix database_url (or WANDB_DAGSTER_DATABASE_URL): check that the database server is running and "
                "reachable, and that the database and SQLite folder exist (WandbResource(create=True) makes a new "
                "SQLite workspace)."
            )
        shown, detail = _hide_password(detail, url)
        # _hide_password also masks the bare password a driver may echo; redact masks every other credential.
        return redact(f"WandbResource cannot open its workspace {shown!r}, from {source}: {detail.rstrip('.')}. {fix}")

    def api(self) -> Api:
        """The public query API on this workspace, with this resource's entity and project as defaults."""
        with redacted_errors():
            return self._api()

    def _api(self) -> Api:
        from wandb_dagster.api import Api
        from wandb_dagster.sdk.workspace import Workspace

        settings = self._settings()
        key = (settings.database_url, settings.entity, settings.project, settings.storage_root, str(settings.cache_dir))
        with _step_runs_lock:
            cached = _apis.get(key)
            # Reuse while its workspace is still the open one (tests and tools may close workspaces).
            if cached is not None and cached[1] is not None and Workspace.current(settings) is cached[1]:
                return cached[0]
        # Opened with this resource's settings first (``create`` among them); the Api then finds it open.
        Workspace.for_settings(settings)
        api = Api(
            overrides={
                "base_url": settings.database_url,
                "entity": settings.entity,
                "project": settings.project,
                "storage_root": settings.storage_root,
            }
        )
        with _step_runs_lock:
            _apis[key] = (api, Workspace.current(api.settings))
        return api

    def artifact(self, name: str, type: str | None = None) -> Artifact:
        """``api().artifact(name)``: e.g. ``wandb-registry-model/bike-models:production``."""
        with redacted_errors():
            return self.api().artifact(name, type=type)

    # ------------------------------------------------------------------ the step's run

    def run(self, context: Any = None) -> Run:
        """The tracking run of the step that is executing (``context`` defaults to the current one).

        One run per step: ``group`` = the Dagster run id, ``job_type`` = the asset (or op), and its config
        records the Dagster run id, job, asset keys, partition and code versions. The IO manager logs the
        step's outputs to the same run. The run is finished when the step's resources are torn down.
        """
        context = context if context is not None else _current_step_context()
        if context is None:
            raise RuntimeError(
                "WandbResource.run() was called outside a Dagster step; call it inside an asset or op (or pass "
                "its context), or use wandb_dagster.init() for a run of your own."
            )
        with redacted_errors():
            return self._run_for_step(_step_from_context(context))

    def _run_for_step(self, step: _Step) -> Run:
        from wandb_dagster.sdk.run import init

        settings = self._settings()
        key = (settings.database_url, step.run_id, step.step_key)
        with _step_runs_lock:
            run = _step_runs.get(key)
            if run is not None and not run._finished:
                return run
            config = {
                "dagster": {
                    "run_id": step.run_id,
                    "job": step.job_name,
                    "step": step.step_key,
                    "asset_keys": list(step.asset_keys),
                    "partition": step.partition,
                    "code_versions": step.code_versions,
                }
            }
            kwargs: dict[str, Any] = {
                "id": _tracking_run_id(step.run_id, step.step_key),
                "reinit": "create_new",
                "name": f"{step.job_type} ({step.run_id[:8]})",
                "group": step.run_id,
                "job_type": step.job_type,
                "config": config,
                "settings": settings,
            }
            try:
                run = init(**kwargs)
            except RunExistsError:
                # A retried or re-executed step (maybe in another process): continue its run. Trying a plain
                # create first spares every fresh step the resume path's extra reads and writes.
                run = init(resume="allow", **kwargs)
            _step_runs[key] = run
            return run

    def _run_for_output(self, output_context: Any) -> Run:
        context = _current_step_context()
        if context is not None:
            return self.run(context)
        # Outside a real step (build_output_context in a unit test): key the run on what the context knows.
        run_id = getattr(output_context, "run_id", None) or "no-dagster-run"
        step_key = getattr(output_context, "step_key", None) or "no-step"
        asset = output_context.asset_key.to_user_string() if output_context.has_asset_key else step_key
        return self._run_for_step(_Step(run_id, step_key, "", asset, (asset,), None, {}))

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        # The step (multiprocess executor) or the whole run (in-process executor) is over: finish its runs so
        # their history and summary are flushed and their state is final.
        dagster_run_id = context.run.run_id if context.run is not None else None
        if dagster_run_id is None:
            return
        with _step_runs_lock:
            done = [k for k in _step_runs if k[1] == dagster_run_id]
            runs = {k[2]: _step_runs.pop(k) for k in done}
            forget = _forgetters.pop(dagster_run_id, [])
        for hook in forget:
            hook(dagster_run_id)
        with redacted_errors():
            failed = _failed_steps(context, dagster_run_id) if runs else set()
            for step_key, run in runs.items():
                run.finish(exit_code=1 if step_key in failed else 0)

    # ------------------------------------------------------------------ registry helpers

    def _as_artifact(self, artifact: Artifact | str) -> Artifact:
        if isinstance(artifact, Artifact):
            return artifact
        if isinstance(artifact, str):
            return self.artifact(artifact)
        raise ValueError(f"Expected an Artifact or an artifact name such as 'bike-model:v3', got {artifact!r}.")

    def link(self, artifact: Artifact | str, target: str, aliases: Iterable[str] | None = None) -> Artifact:
        """Link a version into ``target`` (e.g. ``wandb-registry-model/bike-models``) with ``aliases``.

        Inside a step the link is made by the step's run (so it is recorded as using the version).
        Returns the linked version (the registry collection's own ``vN``).
        """
        with redacted_errors():
            art = self._as_artifact(artifact)
            context = _current_step_context()
            if context is not None:
                return self.run(context).link_artifact(art, target, aliases=list(aliases or []))
            return art.link(target, aliases=list(aliases or []))

    def promote(self, artifact: Artifact | str, target: str, alias: str = "production") -> Promotion:
        """Move ``alias`` in the collection ``target`` to ``artifact`` (linking it first if needed), in one
        transaction, and report which version held the alias before.

        >>> p = wandb.promote("bike-model:v3", "wandb-registry-model/bike-models")   # doctest: +SKIP
        >>> p.previous.version if p.previous else None, p.current.version              # doctest: +SKIP
        ('v1', 'v2')
        """
        from wandb_dagster.sdk.names import validate_alias

        validate_alias(alias)
        if alias == "latest":
            raise ValueError("'latest' is managed by the system and cannot be promoted; use another alias.")
        with redacted_errors():
            return self._promote(artifact, target, alias)

    def _promote(self, artifact: Artifact | str, target: str, alias: str) -> Promotion:
        art = self._as_artifact(artifact)
        api = self.api()
        cursor = self._event_cursor(api)
        before = self._holder(api, target, alias)
        current = self.link(art, target, aliases=[alias])
        previous = before
        if cursor is not None:
            # The feed records what the move replaced in the same transaction, which is exact even when
            # another process promoted concurrently between our read and our link.
            previous = self._previous_from_events(api, cursor, current, alias, target, fallback=before)
        return Promotion(current=current, previous=previous, alias=alias)

    def holder(self, target: str, alias: str = "production") -> Artifact | None:
        """The version of collection ``target`` that holds ``alias`` now, or None."""
        return self._holder(self.api(), target, alias)

    @staticmethod
    def _holder(api: Api, target: str, alias: str) -> Artifact | None:
        from wandb_dagster.sdk.artifact import ArtifactNotFoundError

        try:
            return api.artifact(f"{target}:{alias}")
        except ArtifactNotFoundError:
            return None

    @staticmethod
    def _event_cursor(api: Api) -> str | None:
        head = getattr(api, "event_cursor", None)
        return head() if callable(head) else None

    def _previous_from_events(
        self, api: Api, cursor: str, current: Artifact, alias: str, target: str, fallback: Artifact | None
    ) -> Artifact | None:
        filt = {
            "entity": current.entity,
            "project": current.project,
            "collection": current.collection_name,
            "alias": alias,
        }
        after: str | None = cursor
        while True:
            page = api.events(after=after, types=["ADD_ARTIFACT_ALIAS"], filter=filt, limit=100)
            for event in page:
                if event.artifact_id == current.id:
                    previous = (event.payload or {}).get("previous_version")
                    if not previous:
                        return None
                    return api.artifact(f"{current.entity}/{current.project}/{current.collection_name}:{previous}")
            if not page.has_more:
                # No event: the alias already pointed at this version (nothing moved), or the feed lags.
                return fallback
            after = page.cursor

    def query(
        self,
        version_filter: dict | None = None,
        *,
        registry: str = "model",
        collection_filter: dict | None = None,
    ) -> Any:
        """Versions in a registry matching Mongo-style filters (lazy):
        ``wandb.query({"alias": "production"}, registry="model", collection_filter={"name": "bike-models"})``.
        """
        registries = self.api().registries(filter={"name": registry})
        return registries.collections(filter=collection_filter).versions(filter=version_filter)


def _failed_steps(context: dg.InitResourceContext, dagster_run_id: str) -> set[str]:
    """The steps of this Dagster run that failed, from the run's event log.

    Dagster tells a resource nothing about the outcome of the steps it served, but by teardown each failed
    step's STEP_FAILURE event is already stored: the event is written where it happens (this process), and
    teardown comes after the step (multiprocess executor) or after every step (in-process executor). A step
    that will be retried has STEP_UP_FOR_RETRY instead, so its run stays open for the retry to resume.
    """
    instance = getattr(context, "instance", None)
    if instance is None:  # build_init_resource_context() in a unit test: no event log to read
        return set()
    try:
        records = instance.get_records_for_run(dagster_run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    except Exception as exc:  # an unreadable event log must not turn a finished run into a teardown error
        logger = getattr(context, "log", None)
        if logger is not None:
            logger.warning(f"could not read which steps failed ({type(exc).__name__}); their W&B runs end finished")
        return set()
    return {r.event_log_entry.step_key for r in records if r.event_log_entry.step_key}


def _mark_step_failed(database_url: str, dagster_run_id: str, step_key: str) -> bool:
    with _step_runs_lock:
        run = _step_runs.pop((database_url, dagster_run_id, step_key), None)
    if run is None:
        return False
    run.finish(exit_code=1)
    return True


@dg.failure_hook(required_resource_keys={"wandb"})
def wandb_failure_hook(context: dg.HookContext) -> None:
    """Mark the failed step's tracking run ``failed`` as soon as the step fails.

    Not needed: without it the run is marked ``failed`` when the resource is torn down (it reads the failed
    steps from the Dagster run's event log). The hook only does it earlier, which matters for long runs on
    the in-process executor, where teardown comes after the last step. Attach it to a job:
    ``define_asset_job("train", selection=..., hooks={wandb_failure_hook})`` or ``@job(hooks={...})``."""
    resource = context.resources.wandb
    with redacted_errors():
        _mark_step_failed(resource._settings().database_url, context.run_id, context.step_key)
