"""``init`` and ``Run``: a tracked unit of work with config, metrics history, summary and artifact lineage.

Example::

    >>> import wandb_dagster as wandb
    >>> with wandb.init(project="demo", config={"lr": 0.01}) as run:   # doctest: +SKIP
    ...     run.log({"loss": 0.5})
    ...     run.summary["best"] = 0.5
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import getpass
import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from wandb_dagster.sdk import data_types, init_args, sweeps, wandb_setup
from wandb_dagster.sdk.artifact import Artifact, ArtifactNotFoundError, link_version, version_record
from wandb_dagster.sdk.console import OUTPUT_LOG, ConsoleCapture
from wandb_dagster.sdk.metrics import Metric, MetricDefinitions
from wandb_dagster.sdk.names import parse_artifact_path, suggest_artifact_name, validate_aliases, validate_tags
from wandb_dagster.sdk.registry_paths import has_entity, registry_location
from wandb_dagster.sdk.run_files import RunFiles, relative_targets
from wandb_dagster.sdk.system_monitor import SystemMonitor
from wandb_dagster.sdk.values import check_json_size
from wandb_dagster.sdk.values import json_value as _json_value
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.settings import Settings
from wandb_dagster.storage.hashing import new_md5
from wandb_dagster.storage.uri_credentials import redact, strip_credentials
from wandb_dagster.store.errors import BlobClaimLostError, DatabaseBusyError

_HISTORY_FLUSH_ROWS = 100
_HISTORY_FLUSH_SECONDS = 2.0
_ADJECTIVES = (  # noqa: SIM905  (word lists read better as words than as list literals)
    "amber autumn bold brisk calm cosmic crisp dainty dark dashing deft desert divine dry eager easy fanciful "
    "fearless fine fluent fresh gallant gentle glad glorious golden good grateful hardy hearty helpful honest "
    "icy jolly kind laced lilac lively lucky lunar misty morning noble northern olive polar proud quiet radiant "
    "rare restful robust rosy royal rural sandy serene sleek smooth snowy solar spring stellar still summer "
    "sunny super swift twilight valiant vibrant vivid wandering warm wild winter wise youthful zesty"
).split()
_NOUNS = (  # noqa: SIM905
    "bird breeze brook bush butterfly cherry cloud dawn deluge dew disco dream dust energy field fire firefly "
    "flower fog forest frog frost glade glitter grass haze hill lake leaf meadow moon morning mountain night "
    "oath paper pine plasma planet pond puddle rain river salad sea shadow shape sky smoke snow snowflake "
    "sound star starlight sun sunset surf terrain thunder tree universe valley violet voice water waterfall "
    "wave wildflower wind wood"
).split()

_global_run: Run | None = None
# Every run started and not yet finished, so that the exit hook can end them all (not just wandb.run).
_active_runs: set[Run] = set()


def current_run() -> Run | None:
    """The run started by the last ``init`` in this process that is still active (``wandb.run``)."""
    return _global_run


class Config(dict):
    """``run.config``: a dict that also allows attribute access, persisted to the run as it changes."""

    def __init__(self, run: Run, initial: dict | None = None) -> None:
        super().__init__(initial or {})
        object.__setattr__(self, "_run", run)

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"run.config has no key {key!r}; keys: {sorted(self)}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __setitem__(self, key: str, value: Any) -> None:
        self._apply({key: _json_value(value, f"config.{key}")})

    def update(self, data: Any = None, allow_val_change: bool = False, **kwargs: Any) -> None:  # type: ignore[override]
        if data is not None and not isinstance(data, dict) and hasattr(data, "__dict__"):
            data = vars(data)  # argparse.Namespace, as W&B accepts
        merged = dict(data or {}, **kwargs)
        self._apply({key: _json_value(value, f"config.{key}") for key, value in merged.items()})

    def setdefaults(self, data: dict) -> None:
        self._apply({key: _json_value(value, f"config.{key}") for key, value in data.items() if key not in self})

    def _apply(self, changes: dict[str, Any]) -> None:
        # The size is checked before anything changes, so a refused value leaves the config as it was, both
        # in memory and in the store.
        check_json_size({**self, **changes}, "run.config")
        super().update(changes)
        self._run._persist_config()

    def as_dict(self) -> dict:
        return dict(self)


class Summary(dict):
    """``run.summary``: the last logged value of each key; may also be set directly."""

    def __init__(self, run: Run, initial: dict | None = None) -> None:
        super().__init__(initial or {})
        object.__setattr__(self, "_run", run)

    def __setitem__(self, key: str, value: Any) -> None:
        # A data type (wandb.Image, Table...) set here is recorded as when logged, its file named for the
        # summary (W&B's "<key>_summary_<hash>"); its blob is synced before the summary is written (_flush).
        with self._run._lock:
            value = data_types.history_values(self._run, {key: value}, "summary")[key]
        super().__setitem__(key, _json_value(value, f"summary.{key}"))
        self._run._metrics.set_explicitly(key)
        self._run._dirty_summary = True

    def update(self, data: Any = None, **kwargs: Any) -> None:  # type: ignore[override]
        for key, value in dict(data or {}, **kwargs).items():
            self[key] = value

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"run.summary has no key {key!r}") from None


class Run:
    """A tracked run. Create it with :func:`init`; use it as a context manager to finish it."""

    def __init__(self, ws: Workspace, record: Any, settings: Settings, resumed: bool = False) -> None:
        self._ws = ws
        self._settings = settings
        self._record = record
        self._pk = record.pk
        self.entity: str = record.entity
        self.project: str = record.project
        self.id: str = record.id
        self._name: str = record.display_name
        self.group: str | None = record.group
        self.job_type: str | None = record.job_type
        self.notes: str | None = record.notes
        self._tags: tuple[str, ...] = tuple(record.tags or ())
        self._metrics = MetricDefinitions()
        self.config = Config(self, record.config)
        self.summary = Summary(self, record.summary)
        self._dirty_summary = False
        self._start = time.time()
        self._resumed = resumed
        self._step = self._resume_step() if resumed else 0
        # W&B's _runtime counts every session of a resumed run.
        previous = record.summary.get("_runtime") if resumed else None
        self._runtime_offset = float(previous) if isinstance(previous, (int, float)) else 0.0
        self._pending: dict[str, Any] = {}
        self._history_buffer: list[dict] = []
        self._media_blobs: dict[str, int] = {}  # hex -> size of media blobs stored since the last flush
        # The claims on those blobs (store/blob_refs.py): taken before each is stored, released by the flush
        # that writes the rows naming them. Bytes whose claim found the database busy wait here for the flush.
        self._media_token = uuid.uuid4().hex
        self._media_unclaimed: dict[str, bytes] = {}
        self._last_flush = time.monotonic()
        self._finished = False
        self._lock = threading.RLock()
        self._files = RunFiles(ws, record.pk)
        self._console: ConsoleCapture | None = None
        self._monitor: SystemMonitor | None = None
        self._local_dir: str | None = None  # where the console log is written before it is uploaded

    def _resume_step(self) -> int:
        rows = self._ws.store.history(self._pk)
        return (rows[-1]["_step"] + 1) if rows else 0

    # ---------------------------------------------------------------- properties W&B users reach for

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value
        self._ws.store.update_run(self._pk, display_name=value)

    @property
    def sweep_id(self) -> str | None:
        """The id of the sweep this run is a trial of (None outside sweeps), as W&B's ``run.sweep_id``."""
        sweep: str | None = self._record.sweep
        return sweep

    @property
    def tags(self) -> tuple[str, ...]:
        return self._tags

    @tags.setter
    def tags(self, value: Sequence[str]) -> None:
        self._tags = tuple(validate_tags(list(value)))
        self._ws.store.update_run(self._pk, tags=list(self._tags))

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.id}"

    @property
    def dir(self) -> str:
        return os.getcwd()

    @property
    def url(self) -> str:
        """The run's page in the web app (``wandb-dagster ui``), ``<app>/<entity>/<project>/runs/<id>``."""
        return run_url(self._ws, self.entity, self.project, self.id)

    @property
    def resumed(self) -> bool:
        """True when ``init`` continued an existing run (``resume=...``), as ``wandb.Run.resumed``."""
        return self._resumed

    @property
    def step(self) -> int:
        return self._step

    @property
    def start_time(self) -> float:
        return self._start

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def workspace(self) -> Workspace:
        return self._ws

    def __repr__(self) -> str:
        return f"<Run {self.path} ({self._name})>"

    # ---------------------------------------------------------------- metrics

    def log(self, data: dict[str, Any], step: int | None = None, commit: bool | None = None) -> None:
        """Append metrics to the history. ``commit=False`` accumulates into the current step."""
        self._check_active("log")
        if not isinstance(data, dict):
            raise ValueError(f"run.log() takes a dict of metrics, got {type(data).__name__}: {data!r}.")
        for key in data:
            if not isinstance(key, str) or key.startswith("_"):
                raise ValueError(f"Metric key {key!r} is invalid: keys are strings not starting with '_'.")
        with self._lock:
            # Media (wandb.Image, Table...) become their JSON form here, their bytes stored in the blob store;
            # their file names carry the step the row gets. A value that cannot be recorded fails before any
            # step moves.
            if step is not None and step < self._step:
                warnings.warn(
                    f"run.log(step={step}) is below the current step {self._step}; the data was ignored, "
                    "as W&B does. Steps must increase.",
                    stacklevel=2,
                )
                return
            row_step = self._step if step is None else step
            data = data_types.history_values(self, data, row_step)
            clean = {key: _json_value(value, key) for key, value in data.items()}
            if step is not None and step > self._step:
                self._commit_pending()
                self._step = step
            clean = self._metrics.process(clean, self._pending)
            self._pending.update(clean)
            values, no_summary = self._metrics.summary_values(clean)
            dict.update(self.summary, values)
            for key in no_summary:
                dict.pop(self.summary, key, None)
            self._dirty_summary = True
            if commit is not False and (step is None or commit):
                self._commit_pending()
        # A sweep trial that hyperband stopped (or whose sweep was canceled) ends here, after its last log.
        sweeps.check_stop(self.id)

    def define_metric(
        self,
        name: str,
        step_metric: str | Metric | None = None,
        step_sync: bool | None = None,
        hidden: bool | None = None,
        summary: str | None = None,
        goal: str | None = None,
        overwrite: bool | None = None,
    ) -> Metric:
        """Customise a metric logged with :meth:`log`: its x axis (``step_metric``) and its summary
        (``summary="min,max"``...); ``name`` may end in ``*`` (``"val/*"``). See :mod:`wandb_dagster.sdk.metrics`.

            >>> run.define_metric("val/*", step_metric="epoch", summary="max")   # doctest: +SKIP
        """
        self._check_active("define_metric")
        with self._lock:
            return self._metrics.define(name, step_metric, step_sync, hidden, summary, goal, overwrite)

    def _commit_pending(self) -> None:
        if not self._pending:
            return
        now = time.time()
        row = dict(self._pending, _step=self._step, _timestamp=now, _runtime=self._runtime(now))
        # The summary holds the last step's _step, _timestamp and _runtime, as W&B's does.
        dict.update(self.summary, _step=self._step, _timestamp=now, _runtime=row["_runtime"])
        self._dirty_summary = True
        self._pending = {}
        self._step += 1
        self._history_buffer.append(row)
        if (
            len(self._history_buffer) >= _HISTORY_FLUSH_ROWS
            or time.monotonic() - self._last_flush >= _HISTORY_FLUSH_SECONDS
        ):
            self._flush()

    def _runtime(self, now: float) -> float:
        return self._runtime_offset + now - self._start

    def _store_media(self, data: bytes) -> str:
        """Claim, then store, the blob of a media value (the caller holds ``_lock``); returns its hex. The
        claim comes first, so that a gc either sees it or has deleted the blob before it, and then
        ``put_bytes`` stores the blob again (docs/architecture.md, "Garbage collection")."""
        hexdigest = new_md5(data).hexdigest()
        try:
            self._ws.store.claim_blobs(self._media_token, [hexdigest], durable=False)
        except DatabaseBusyError:
            # As an artifact's add_*: the flush claims it (or reports the busy database itself).
            self._media_unclaimed[hexdigest] = data
        hexdigest, size = self._ws.blobs.put_bytes(data)
        self._media_blobs[hexdigest] = size
        return hexdigest

    def _write_flush(self, fields: dict[str, Any], durable: bool) -> None:
        """The flush's write: history rows, fields and the media blobs they name, the media claims checked
        and released in the same transaction; the blobs claimed and proven stored and durable first."""
        for hexdigest, data in list(self._media_unclaimed.items()):
            self._ws.store.claim_blobs(self._media_token, [hexdigest], durable=False)
            self._ws.blobs.put_bytes(data)
            del self._media_unclaimed[hexdigest]
        media = sorted(self._media_blobs)
        for attempt in range(2):
            if media:
                # The blobs of logged media are durable before a history row names them (invariant 1); the
                # claim makes this check last until the write.
                self._ws.blobs.sync(media, dict(self._media_blobs))
            try:
                self._ws.store.update_run(
                    self._pk, history=self._history_buffer, durable=durable, media=media,
                    claim=self._media_token if media else None, **fields,
                )  # fmt: skip
                return
            except BlobClaimLostError:
                if attempt:
                    raise
                # The claims expired (a flush held back a day): claim again; the sync above proves the blobs
                # are still stored, or says which are not.
                self._ws.store.claim_blobs(self._media_token, media, durable=False)

    def _flush(self, **final: Any) -> None:
        """Write buffered history rows, the summary if it changed and a heartbeat, in one transaction
        (with ``final`` fields, e.g. the finished state, in the same one).

        A flush while the run goes on is not durable on its own (no fsync on SQLite): a power cut before the
        next durable commit (at the latest, finish) may lose it, as a crashed W&B run loses its last
        records; store/engine.py says why that is safe. The final one is durable.
        """
        with self._lock:
            fields: dict[str, Any] = {"heartbeat_at": datetime.now(timezone.utc), **final}
            if self._dirty_summary:
                fields["summary"] = dict(self.summary)
            self._write_flush(fields, durable=bool(final))
            # Only once committed: after a failed write the rows, the summary and the media are still pending.
            self._media_blobs = {}
            self._history_buffer = []
            self._dirty_summary = False
            self._last_flush = time.monotonic()

    def _persist_config(self) -> None:
        self._ws.store.update_run(self._pk, config=dict(self.config))

    def history(self) -> list[dict]:
        """Every history row logged so far, in step order."""
        with self._lock:
            self._commit_pending()
            self._flush()
        return self._ws.store.history(self._pk)

    # ---------------------------------------------------------------- files

    def save(
        self,
        glob_str: str | os.PathLike[str],
        base_path: str | os.PathLike[str] | None = None,
        policy: str = "live",
        glob: bool = True,
    ) -> list[str]:
        """Save files matching ``glob_str`` with the run, as W&B's ``run.save`` (see
        :mod:`wandb_dagster.sdk.run_files`): each under its path relative to ``base_path``; ``policy`` "live"
        (now and on every change), "now" (once) or "end" (at finish); ``glob=False`` takes ``glob_str``
        literally. Returns the absolute paths of the files saved (W&B returns its copies in the run folder;
        here the run's files are read from where they are)."""
        self._check_active("save")
        if isinstance(glob_str, bytes):
            glob_str = glob_str.decode("utf-8")  # W&B still accepts bytes
        if isinstance(glob_str, str) and glob_str.startswith(("gs://", "s3://")):
            warnings.warn(f"{glob_str} is a cloud storage url, can't save file to W&B.", stacklevel=2)
            return []
        if policy not in ("live", "now", "end"):
            raise ValueError(f'policy={policy!r} is invalid; only "live", "end" and "now" policies are supported.')
        targets = relative_targets(glob_str, base_path, glob)
        self._files.save(targets, policy)
        return [str(src) for src, _ in targets]

    def _start_capture(self, options: wandb_setup.RunOptions) -> None:
        """Start what runs beside the user's code: the console capture into ``output.log`` (unless
        ``console="off"``) and the system monitor (unless ``x_disable_stats``); :meth:`finish` stops both."""
        if options.console != "off":
            self._local_dir = tempfile.mkdtemp(prefix="wandb-dagster-run-")
            path = Path(self._local_dir) / OUTPUT_LOG
            previous = (
                next((f for f in self._ws.store.run_files(self._pk) if f.name == OUTPUT_LOG), None)
                if self._resumed
                else None  # a new run has no files yet: no query on the start of every run
            )
            if previous is not None:
                # A resumed run's log goes on from what its earlier sessions printed.
                self._ws.blobs.get_file(previous.digest, path)
                os.chmod(path, 0o600)
            self._console = ConsoleCapture(path)
            self._console.start()
            self._files.watch(path, OUTPUT_LOG, flush=self._console.flush, skip_empty=True)
        if not options.disable_stats:
            pk, store = self._pk, self._ws.store
            self._monitor = SystemMonitor(
                lambda rows: store.append_system_metrics(pk, rows),
                start_time=self._start,
                interval=options.stats_interval,
                disk_paths=options.stats_disk_paths,
            )
            self._monitor.start()

    def _stop_capture(self) -> None:
        if self._monitor is not None:
            self._monitor.stop()
            self._monitor = None
        if self._console is not None:
            self._console.stop()  # the user's streams are theirs again before the last upload

    # ---------------------------------------------------------------- lifecycle

    def _check_active(self, what: str) -> None:
        if self._finished:
            raise RuntimeError(
                f"run.{what}() was called after run {self.path!r} finished; start a new run with init()."
            )

    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        """Flush history and summary and mark the run ``finished`` (or ``failed`` for a non-zero exit code)."""
        global _global_run
        if self._finished:
            return
        with self._lock:
            self._stop_capture()
            # Saved files first (their last content, the "end" ones, output.log): a finished run has all its files.
            self._files.close()
            if self._local_dir is not None:
                shutil.rmtree(self._local_dir, ignore_errors=True)
                self._local_dir = None
            self._commit_pending()
            dict.__setitem__(self.summary, "_runtime", self._runtime(time.time()))
            self._dirty_summary = True
            # The last history rows, the summary and the final state are one commit: a run never ends up
            # "finished" without its last metrics, nor with them but still "running".
            state = "finished" if not exit_code else "failed"
            self._flush(state=state, config=dict(self.config), finished_at=datetime.now(timezone.utc))
            self._finished = True
        _active_runs.discard(self)
        if _global_run is self:
            _global_run = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Literal[False]:
        if exc_type is None:
            self.finish(exit_code=0)
            return False
        try:
            self.finish(exit_code=1)
        except Exception as failure:
            # The error that ended the block is the one to see (a full disk that also stops the run from
            # being marked failed must not be reported as the second failure only).
            warnings.warn(
                f"run {self.id!r} could not be marked failed ({redact(str(failure))}); it still shows as running. "
                "Resume it with wandb.init(id=..., resume='must') and finish it once the cause is fixed.",
                RuntimeWarning,
                stacklevel=2,
            )
        return False

    # ---------------------------------------------------------------- artifacts

    def log_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike,
        name: str | None = None,
        type: str | None = None,
        aliases: Iterable[str] | None = None,
        tags: Iterable[str] | None = None,
    ) -> Artifact:
        """Log an artifact (or a path, which becomes ``run-<id>-<basename>`` of type ``unspecified``) as an
        output of this run. ``latest`` is always added. Identical content makes no new version."""
        self._check_active("log_artifact")
        artifact = self._as_artifact(artifact_or_path, name, type or "unspecified")  # noqa: A002
        return self._commit(artifact, aliases, tags, as_output=True)

    def upsert_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike,
        name: str | None = None,
        type: str | None = None,
        aliases: Iterable[str] | None = None,
        distributed_id: str | None = None,
    ) -> Artifact:
        """Add one part to a distributed artifact, as W&B: several runs (processes, machines) upsert parts
        under one ``distributed_id`` (default: the run's group), then one :meth:`finish_artifact` makes a
        single version holding every part. Each part's files are stored durably before it is recorded; the
        artifact passed stays a draft.

            >>> with wandb.init(group="writers") as run:                   # doctest: +SKIP
            ...     part = wandb.Artifact("predictions", type="dataset")
            ...     part.add_file(f"preds_{rank}.csv")
            ...     run.upsert_artifact(part)
        """
        self._check_active("upsert_artifact")
        distributed_id = self._distributed_id(distributed_id, "upsert")
        artifact = self._as_artifact(artifact_or_path, name, type or "unspecified")  # noqa: A002
        from wandb_dagster.sdk.commit import upsert_part

        upsert_part(
            self._ws, artifact, entity=self.entity, project=self.project, distributed_id=distributed_id,
            aliases=validate_aliases(list(aliases or [])), run_pk=self._pk,
        )  # fmt: skip
        return artifact

    def finish_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike,
        name: str | None = None,
        type: str | None = None,
        aliases: Iterable[str] | None = None,
        distributed_id: str | None = None,
    ) -> Artifact:
        """Commit the distributed artifact: one version with every part upserted under ``distributed_id``
        (default: the run's group) plus this artifact's own entries (which win where a part has the same
        path), and ``latest`` plus the aliases of every part and these. The parts are consumed: later upserts
        under the same id start the next version. Every upserting run is recorded as a producer."""
        self._check_active("finish_artifact")
        distributed_id = self._distributed_id(distributed_id, "finish")
        artifact = self._as_artifact(artifact_or_path, name, type or "unspecified")  # noqa: A002
        from wandb_dagster.sdk.commit import finish_parts

        alias_list = validate_aliases(list(aliases or []))
        if "latest" not in alias_list:
            alias_list.append("latest")
        return finish_parts(
            self._ws, artifact, entity=self.entity, project=self.project, distributed_id=distributed_id,
            aliases=alias_list, tags=validate_tags(list(artifact.tags)), run_pk=self._pk,
        )  # fmt: skip

    def _distributed_id(self, distributed_id: str | None, verb: str) -> str:
        # As W&B: the id defaults to the run's group; with neither there is nothing to share parts by.
        if distributed_id is None:
            distributed_id = self.group
        if not distributed_id or not isinstance(distributed_id, str):
            raise TypeError(
                f"Cannot {verb} artifact unless the run is in a group or distributed_id is provided: pass "
                f"distributed_id='...' (the same string in every run), or wandb.init(group='...'); got "
                f"{distributed_id!r}."
            )
        return distributed_id

    def _as_artifact(self, artifact_or_path: Any, name: str | None, artifact_type: str) -> Artifact:
        if isinstance(artifact_or_path, Artifact):
            return artifact_or_path
        if not isinstance(artifact_or_path, (str, os.PathLike)):
            raise ValueError(
                f"Expected an Artifact or a path, got {artifact_or_path.__class__.__name__}: {artifact_or_path!r}."
            )
        path = os.fspath(artifact_or_path)
        if "://" in path:
            artifact = Artifact(name or _reference_artifact_name(self.id, path), artifact_type)
            artifact.add_reference(path)
            return artifact
        if not os.path.exists(path):
            raise ValueError(f"Path {path!r} does not exist; pass an existing file or directory, or an Artifact.")
        artifact = Artifact(
            name or f"run-{self.id}-{os.path.basename(os.path.abspath(path))}", artifact_type, workspace=self._ws
        )
        if os.path.isdir(path):
            artifact.add_dir(path)
        else:
            artifact.add_file(path)
        return artifact

    def _commit(
        self, artifact: Artifact, aliases: Iterable[str] | None, tags: Iterable[str] | None, as_output: bool
    ) -> Artifact:
        from wandb_dagster.sdk.commit import commit_artifact

        alias_list = validate_aliases(list(aliases or []) + list(artifact.aliases if artifact.is_draft() else []))
        if "latest" not in alias_list:
            alias_list.append("latest")
        tag_list = validate_tags(list(tags or []) + list(artifact.tags))
        return commit_artifact(
            self._ws,
            artifact,
            entity=self.entity,
            project=self.project,
            aliases=alias_list,
            tags=tag_list,
            run_pk=self._pk if as_output else None,
        )

    def use_artifact(
        self,
        artifact_or_name: Artifact | str | None = None,
        type: str | None = None,
        aliases: Iterable[str] | None = None,
        use_as: str | None = None,
        *,
        artifact: Artifact | str | None = None,
    ) -> Artifact:
        """Mark an artifact as an input of this run and return it.

        Accepts ``name:alias``, ``project/name:v0``, ``entity/project/name:v0``, or an ``Artifact`` (a draft
        is logged first; doing so again with the same content reuses the version).
        """
        self._check_active("use_artifact")
        if artifact_or_name is None:
            artifact_or_name = artifact  # the older W&B keyword, still shown in the W&B docs
        if isinstance(artifact_or_name, Artifact):
            artifact = self._committed_here(artifact_or_name, aliases)
        elif isinstance(artifact_or_name, str):
            artifact = self._fetch(artifact_or_name)
        else:
            raise ValueError(
                f"use_artifact() takes an Artifact or a name such as 'bike-dataset:v0', got {artifact_or_name!r}."
            )
        if type is not None and artifact.type != type:
            raise ValueError(
                f"Artifact {artifact.qualified_name!r} has type {artifact.type!r}, not the requested {type!r}."
            )
        # Lineage of a running run: made durable by the run's next durable commit at the latest (finish).
        self._ws.store.record_input(self._pk, version_record(artifact, "version to use").pk, durable=False)
        return artifact

    def _committed_here(self, artifact: Artifact, aliases: Iterable[str] | None) -> Artifact:
        """``artifact`` committed in this run's workspace: a draft is logged by this run (as W&B does when a
        draft is used or linked); a version from another workspace is refused."""
        if artifact.is_draft():
            return self._commit(artifact, aliases, None, as_output=True)
        if artifact.workspace is not self._ws:
            raise ValueError(
                f"Artifact {artifact.qualified_name!r} belongs to another workspace ({artifact.workspace!r}), not "
                f"this run's ({self._ws!r}); use it from a run in that workspace."
            )
        return artifact

    def _fetch(self, name: str) -> Artifact:
        return fetch_artifact(self._ws, name, self.entity, self.project, organization=self._settings.organization)

    def logged_artifacts(self) -> list[Artifact]:
        return [Artifact.from_record(r, self._ws) for r in self._ws.store.run_outputs(self._pk)]

    def used_artifacts(self) -> list[Artifact]:
        return [Artifact.from_record(r, self._ws) for r in self._ws.store.run_inputs(self._pk)]

    def log_model(
        self, path: str | os.PathLike, name: str | None = None, aliases: Iterable[str] | None = None
    ) -> Artifact:
        """Log a model file or directory as an artifact of type ``model`` (default name ``run-<id>-<basename>``)."""
        return self.log_artifact(path, name=name, type="model", aliases=aliases)

    def link_artifact(
        self, artifact: Artifact, target_path: str, aliases: Iterable[str] | None = None
    ) -> Artifact:
        """Link ``artifact`` into ``[[entity/]project/]collection`` (e.g. ``wandb-registry-model/my-models``);
        missing parts default to this run's entity and project. A draft is logged by this run first.
        Returns the linked version (same ``id``, the collection's own ``vN``). See :meth:`Artifact.link`."""
        self._check_active("link_artifact")
        if not isinstance(artifact, Artifact):
            raise ValueError(
                f"link_artifact() takes an Artifact (e.g. from run.use_artifact()), got {artifact!r}."
            )
        artifact = self._committed_here(artifact, None)
        record = version_record(artifact, "version to link")
        return link_version(
            self._ws, record, target_path, list(aliases or []), self.entity, self.project, run_pk=self._pk,
            organization=self._settings.organization,
        )

    def link_model(
        self,
        path: str | os.PathLike,
        registered_model_name: str,
        name: str | None = None,
        aliases: Iterable[str] | None = None,
    ) -> Artifact:
        """Log a model (as :meth:`log_model`; identical content reuses its version) and link it into
        ``wandb-registry-model/<registered_model_name>``. ``aliases`` apply to the link only."""
        self._check_active("link_model")
        if not isinstance(registered_model_name, str) or not registered_model_name:
            raise ValueError(
                f"registered_model_name {registered_model_name!r} is invalid: give a collection name such as "
                "'my-models'."
            )
        if "/" in registered_model_name:
            raise ValueError(
                f"registered_model_name {registered_model_name!r} must not contain '/': it is a collection "
                "name inside the model registry; to link elsewhere use run.link_artifact(artifact, target_path)."
            )
        validate_aliases(aliases)
        artifact = self.log_model(path, name=name)
        return self.link_artifact(artifact, f"wandb-registry-model/{registered_model_name}", aliases=aliases)

    def use_model(self, name: str) -> str:
        """Download a logged model; returns the file path for a one-file model, else the directory."""
        self._check_active("use_model")
        artifact = self._fetch(name)
        if "model" not in artifact.type.lower():
            raise ValueError(
                f"use_model() only takes model artifacts; {artifact.qualified_name!r} has type {artifact.type!r}. "
                "Use use_artifact() for other types."
            )
        self.use_artifact(artifact)
        root = artifact.download()
        entries = list(artifact.manifest)
        if len(entries) == 1:
            return str(Path(root) / entries[0].path)
        return root


def _reference_artifact_name(run_id: str, uri: str) -> str:
    """``run-<id>-<basename>`` for ``log_artifact(uri)``, as W&B names it, from the URI's path alone: a signed
    URL's query (its signature and credential) must not end up in the name, or in the error that refuses it."""
    from urllib.parse import urlsplit

    parts = urlsplit(strip_credentials(uri))
    base = parts.path.rstrip("/").rpartition("/")[2] or parts.hostname or "reference"
    return suggest_artifact_name(f"run-{run_id}-{base}")


def run_url(ws: Workspace, entity: str, project: str, run_id: str) -> str:
    """The run's page in the web app, ``<app>/<entity>/<project>/runs/<id>`` (docs/behaviour.md section 5)."""
    return ws.page_url(entity, project, "runs", run_id)


def fetch_artifact(ws: Workspace, name: str, entity: str, project: str, organization: str | None = None) -> Artifact:
    """The version ``name`` names (``[[entity/]project/]name[:version|alias]``); a registry path resolves to
    the organization's registry (sdk/registry_paths.py), ``organization`` None meaning the default one."""
    path = parse_artifact_path(name, entity, project)
    try:
        entity, project = registry_location(
            ws, path.entity, path.project, explicit=has_entity(name), organization=organization
        )
    except ValueError as exc:
        raise ArtifactNotFoundError(f"Artifact {name!r} not found: {exc}") from None
    record = ws.store.resolve(entity, project, path.name, path.selector)
    if record is None:
        raise ArtifactNotFoundError(
            f"Artifact {path.name}:{path.selector} not found in project {entity}/{project}; check the "
            "name, version or alias (e.g. 'bike-dataset:v0' or 'my-project/bike-dataset:latest')."
        )
    return Artifact.from_record(record, ws)


def acting_run_pk(ws: Workspace) -> int | None:
    """The active run, if it writes to ``ws``: the event feed names it as the run that made a change done
    through an Artifact's own methods (save, link, unlink, delete), as run.link_artifact does."""
    active = current_run()
    if active is None or active._ws.url != ws.url:
        return None
    return active._pk


def _scratch_settings(settings: Settings) -> Settings:
    """mode="disabled": the run works as usual but records into a throwaway workspace, removed at exit."""
    import shutil
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="wandb-dagster-disabled-"))
    atexit.register(shutil.rmtree, scratch, True)
    return settings.replace(
        root_dir=scratch,
        database_url=f"sqlite:///{scratch / 'store.db'}",
        storage_root=str(scratch / "blobs"),
        cache_dir=scratch / "cache",
    )


def init(
    project: str | None = None,
    entity: str | None = None,
    config: dict | Any = None,
    job_type: str | None = None,
    name: str | None = None,
    tags: Sequence[str] | None = None,
    group: str | None = None,
    id: str | None = None,
    resume: bool | str | None = None,
    notes: str | None = None,
    reinit: bool | str | None = None,
    dir: str | os.PathLike | None = None,
    settings: Settings | dict | None = None,
    mode: str | None = None,
    config_exclude_keys: Sequence[str] | None = None,
    config_include_keys: Sequence[str] | None = None,
    allow_val_change: bool | None = None,
    resume_from: str | None = None,
    save_code: bool | None = None,
    anonymous: str | None = None,
    force: bool | None = None,
    sync_tensorboard: bool | None = None,
    monitor_gym: bool | None = None,
) -> Run:
    """Start a run, as ``wandb.init``. Returns a :class:`Run`, usable as a context manager.

    ``reinit``, as W&B's: when a run is still active in this process, ``"default"`` (and ``False``) return
    it (W&B finishes it only in notebooks), ``"finish_previous"`` (and ``True``) finish every active run
    first, ``"create_new"`` starts a new run alongside. ``settings``: a :class:`wandb_dagster.Settings`
    (W&B's setting names, see :mod:`wandb_dagster.sdk.wandb_setup`) or a dict of them; arguments win over
    settings, and those over ``wandb.setup``'s. ``dir``, ``allow_val_change``, ``resume_from``,
    ``save_code``, ``anonymous``, ``force``, ``sync_tensorboard`` and ``monitor_gym`` are accepted for W&B
    compatibility and unused.
    """
    global _global_run
    options = wandb_setup.run_options(settings)
    defaults, settings = wandb_setup.for_init(settings)
    project, entity, id, name = (
        project or defaults.get("project"), entity or defaults.get("entity"), id or defaults.get("id"),
        name or defaults.get("name"),
    )  # fmt: skip
    notes = notes if notes is not None else defaults.get("notes")
    tags = tags if tags is not None else defaults.get("tags")
    group, job_type = group or defaults.get("group"), job_type or defaults.get("job_type")
    mode = mode or defaults.get("mode")
    resume = resume if resume is not None else defaults.get("resume")
    reinit_mode = _reinit_mode(reinit if reinit is not None else defaults.get("reinit"))
    init_args.resolve_mode(mode)
    previous = _global_run
    if previous is not None:
        if reinit_mode == "finish_previous":
            for active in sorted(_active_runs, key=lambda r: r._pk):
                active.finish()
        elif reinit_mode != "create_new":
            if resume == "must":
                raise RuntimeError(
                    f"Cannot resume a run while run {previous.id!r} is active; finish it with run.finish(), or "
                    "pass reinit='create_new' to wandb.init()."
                )
            if reinit_mode == "default":  # asked for explicitly ("return_previous"): no need to say it
                warnings.warn(
                    f"wandb.init() was called while run {previous.id!r} is active and reinit is {reinit_mode!r}, so "
                    "the active run is returned (as W&B does outside notebooks); call run.finish() first, or pass "
                    "reinit='finish_previous' or 'create_new'.",
                    stacklevel=2,
                )
            return previous
    # In wandb.agent(function=...) the trial is this process's; in a program an agent started, the
    # environment names it (WANDB_SWEEP_ID, WANDB_RUN_ID), as W&B's agent sets it.
    trial = sweeps.current_trial or sweeps.trial_from_env()
    if trial is not None:
        # Inside wandb.agent(): the run is the trial's, in the sweep's project, as W&B's agent makes it.
        if project and project != trial.project:
            warnings.warn(
                f"wandb.init(project={project!r}) is ignored inside a sweep: its runs are in {trial.project!r}",
                stacklevel=2,
            )
        entity, project, id, resume = trial.entity, trial.project, trial.run_id, None
    args = init_args.validate(
        project=project, entity=entity, config=config, job_type=job_type, name=name, tags=tags, group=group,
        id=id, resume=resume, notes=notes, settings=settings, mode=mode,
        config_exclude_keys=config_exclude_keys, config_include_keys=config_include_keys,
    )  # fmt: skip
    if trial is not None:
        # The suggested values win over what init() is given, as in W&B.
        args = dataclasses.replace(args, config={**args.config, **trial.params})
    run_settings = _scratch_settings(args.settings) if args.mode == "disabled" else args.settings
    ws = Workspace.for_settings(run_settings)
    # Whether the run exists decides run.resumed (resume="allow" with a new id starts a new run).
    existed = args.resumed and ws.store.get_run(args.settings.entity, args.settings.project, args.run_id) is not None
    run = Run(ws, _create_record(ws, args, None if trial is None else trial.sweep_pk), run_settings, resumed=existed)
    if existed:
        _apply_to_resumed(run, args)
    if args.mode != "disabled":  # a disabled run records nothing, so it captures nothing either
        run._start_capture(options)
    _active_runs.add(run)
    if reinit_mode != "create_new" or _global_run is None:
        _global_run = run
    _install_exit_hooks()
    return run


_REINIT_MODES = ("default", "return_previous", "finish_previous", "create_new")


def _reinit_mode(reinit: bool | str | None) -> str:
    """W&B's reinit forms: None is "default"; True is "finish_previous", False "return_previous"."""
    if reinit is None:
        return "default"
    if isinstance(reinit, bool):
        return "finish_previous" if reinit else "return_previous"
    if reinit not in _REINIT_MODES:
        raise ValueError(f"reinit={reinit!r} is invalid: use one of {list(_REINIT_MODES)} (or True/False).")
    return reinit


def _create_record(ws: Workspace, args: init_args.InitArgs, sweep_pk: int | None = None) -> Any:
    """The run's record: created, or (resume) the existing one; RunExistsError / a missing run per the
    resume mode, as the store decides."""
    try:
        username = getpass.getuser()
    except Exception:
        username = None
    return ws.store.create_run(
        args.settings.entity,
        args.settings.project,
        args.run_id,
        display_name=args.name or f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(1, 999)}",
        # config-defaults.yaml seeds the config; what init() is given wins, as in W&B.
        config=check_json_size({**args.config_defaults, **args.config}, "run.config"),
        tags=args.tags or [],
        group=args.group,
        job_type=args.job_type,
        notes=args.notes,
        host=socket.gethostname(),
        username=username,
        resume=args.resume,
        sweep_pk=sweep_pk,
    )


def _apply_to_resumed(run: Run, args: init_args.InitArgs) -> None:
    """What init() is given applies to a resumed run too; config merges into what it had, as in W&B."""
    missing_defaults = {k: v for k, v in args.config_defaults.items() if k not in run.config}
    if args.config or missing_defaults:
        run.config.update({**missing_defaults, **args.config})
    if args.tags is not None:
        run.tags = args.tags
    if args.name:
        run.name = args.name
    if args.notes is not None:
        run.notes = args.notes
        run._ws.store.update_run(run._pk, notes=args.notes)


_hooks_installed = False
_exit_status: list[int] = []  # 1 after an uncaught exception, or the code given to sys.exit()


def _install_exit_hooks() -> None:
    # A script that ends without finish() still gets its history flushed and a final state, as in W&B:
    # failed if an uncaught exception ended it, finished otherwise.
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous_hook, previous_exit = sys.excepthook, sys.exit

    def excepthook(exc_type: Any, exc: BaseException, tb: Any) -> None:
        _exit_status.append(1)
        previous_hook(exc_type, exc, tb)

    def exit(code: Any = None) -> None:
        # SystemExit never reaches excepthook; W&B patches sys.exit the same way to learn the exit code.
        _exit_status.append(code if isinstance(code, int) else (0 if code is None else 1))
        previous_exit(code)

    sys.excepthook = excepthook
    sys.exit = exit  # type: ignore[assignment]  # same call signature; mypy types sys.exit as NoReturn

    def at_exit() -> None:
        code = _exit_status[-1] if _exit_status else 0
        for run in list(_active_runs):
            # The interpreter is going away: a run that cannot finish must not mask the original exit.
            with contextlib.suppress(Exception):
                run.finish(exit_code=code)

    atexit.register(at_exit)
