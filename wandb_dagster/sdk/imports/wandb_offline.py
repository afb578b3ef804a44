"""Import W&B offline run folders (``wandb/offline-run-<time>-<id>``), as ``wandb sync`` uploads them.

    >>> from wandb_dagster.sdk.imports import sync_wandb_runs
    >>> reports = sync_wandb_runs(["wandb/offline-run-20240101_120000-abc123"])   # doctest: +SKIP
    >>> reports[0].path, reports[0].history_rows                                     # doctest: +SKIP
    ('me/bikes/abc123', 100)

The run's ``.wandb`` file (W&B's transaction log: a LevelDB-style log of protobuf ``Record`` messages) is
read with the wandb package's own reader, ``wandb.sdk.internal.datastore.DataStore``, and its records
decoded by ``wandb.proto.wandb_internal_pb2.Record``: nothing here parses the format by hand. wandb is an
optional dependency (the ``wandb-import`` extra), imported only when a folder is imported. The reader was
dropped from the wandb package in 0.30 (its ``wandb sync`` moved into the Go core), hence the extra's
``wandb<0.30``; the file format itself did not change, so folders written by newer SDKs read the same.

What is imported: the run (id, name, notes, config, summary, tags, group, job type, host, state, start and
end), its history (media values keep W&B's JSON form and gain the ``digest`` of their stored file), the files
of its ``files/`` folder (``output.log``, ``requirements.txt``, ``run.save`` files) and the artifacts it
logged, from the files W&B staged for them (``$WANDB_DATA_DIR/artifacts/staging``), each checked against
the MD5 W&B recorded, and the version against W&B's artifact digest. docs/behaviour.md section 11 lists
what differs from ``wandb sync``.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from wandb_dagster.sdk.data_types.base import RUN_FILE_TYPES
from wandb_dagster.sdk.imports._writer import (
    ImportedArtifact,
    ImportedEntry,
    ImportedRun,
    ImportReport,
    SourceError,
    nested,
    write_run,
)
from wandb_dagster.sdk.workspace import Workspace


class EmptyRunLog(SourceError):
    """A run folder whose log holds no run: reported and skipped, so that the other folders are imported."""


# W&B's own bookkeeping in config and summary (``_wandb``: its telemetry, the runtime it shows), not the user's.
_INTERNAL_KEYS = ("_wandb",)


def _wandb_reader() -> tuple[Any, Any]:
    """W&B's transaction-log reader and its record message, or an ImportError saying what to install."""
    try:
        from wandb.proto import wandb_internal_pb2
        from wandb.sdk.internal import datastore
    except ImportError:
        raise ImportError(
            "importing W&B offline runs needs the wandb package with its transaction-log reader "
            "(wandb.sdk.internal.datastore, wandb 0.19 to 0.29): pip install 'wandb-dagster[wandb-import]'"
        ) from None
    return datastore.DataStore, wandb_internal_pb2.Record  # type: ignore[attr-defined]


def find_run_folders(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The run folders under ``paths``: each path is a run folder (holding a ``run-<id>.wandb`` file), a
    ``.wandb`` file, or a folder of run folders (W&B's ``wandb/``). Sorted, each once."""
    found: set[Path] = set()
    for given in paths:
        path = Path(given).absolute()
        if path.is_file() and path.suffix == ".wandb":
            found.add(path.parent.resolve())
        elif path.is_dir() and any(path.glob("run-*.wandb")):
            found.add(path.resolve())
        elif path.is_dir():
            # Resolved: W&B's latest-run link names a folder that is listed anyway.
            runs = {p.parent.resolve() for p in path.glob("*/run-*.wandb")}
            if not runs:
                raise SourceError(
                    f"{str(given)!r} holds no W&B run folder (a folder with a run-<id>.wandb file, such as "
                    "wandb/offline-run-20240101_120000-abc123); pass run folders or the wandb/ folder above them"
                )
            found.update(runs)
        else:
            raise SourceError(f"{str(given)!r} does not exist; pass W&B run folders or the wandb/ folder above them")
    return sorted(found)


def _records(wandb_file: Path) -> Iterator[tuple[str, Any]]:
    data_store_cls, record_cls = _wandb_reader()
    store = data_store_cls()
    try:
        store.open_for_scan(str(wandb_file))
    except Exception as exc:
        raise SourceError(f"{wandb_file} is not a W&B transaction log ({exc})") from None
    try:
        while True:
            try:
                data = store.scan_data()
            except AssertionError:
                # A record cut short or damaged (the process was killed while writing): the reader's checks
                # are assertions; what came before is imported, as W&B's own sync stops there too.
                return
            if data is None:
                return
            record = record_cls()
            record.ParseFromString(data)
            kind = record.WhichOneof("record_type")
            if kind is not None:
                yield kind, getattr(record, kind)
    finally:
        store.close()


def _value(item: Any) -> Any:
    return json.loads(item.value_json) if item.value_json else None


def _key(item: Any) -> list[str]:
    return list(item.nested_key) if item.nested_key else [item.key]


def _apply(target: dict[str, Any], updates: Iterable[Any], removes: Iterable[Any] = ()) -> None:
    """W&B's config and summary records: updates set a (nested) key, removes drop one."""
    for item in updates:
        path = _key(item)
        node: Any = target
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = _value(item)
    for item in removes:
        path = _key(item)
        node = target
        for part in path[:-1]:
            node = node.get(part) if isinstance(node.get(part), dict) else {}
        node.pop(path[-1], None)


def _media_paths(value: Any) -> Iterator[str]:
    """The run-folder paths of the media files a history or summary value names."""
    if isinstance(value, dict):
        if value.get("_type") in RUN_FILE_TYPES and isinstance(value.get("path"), str):
            yield value["path"]
        elif value.get("_type") == "images/separated" and isinstance(value.get("filenames"), list):
            yield from (f for f in value["filenames"] if isinstance(f, str))
        for inner in value.values():
            yield from _media_paths(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _media_paths(inner)


def _timestamp(ts: Any) -> datetime | None:
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=timezone.utc)


def _entries(manifest: Any, where: str) -> list[ImportedEntry]:
    if manifest.manifest_file_path:
        # A large manifest is written beside the staged files, one JSON entry per line (gzip).
        try:
            with gzip.open(manifest.manifest_file_path, "rt", encoding="utf-8") as f:
                rows = [json.loads(line) for line in f if line.strip()]
        except OSError as exc:
            raise SourceError(
                f"{where}: its manifest file {manifest.manifest_file_path} cannot be read ({exc})"
            ) from None
        return [
            ImportedEntry(
                path=r["path"], digest=r["digest"], size=r.get("size"), ref=r.get("ref"), extra=r.get("extra") or {},
                local_path=r.get("local_path") or r.get("localPath"),
            )
            for r in rows
        ]
    return [
        ImportedEntry(
            path=e.path, digest=e.digest, size=e.size if e.size or not e.ref else None, ref=e.ref or None,
            extra={x.key: _value(x) for x in e.extra}, local_path=e.local_path or None,
        )
        for e in manifest.contents
    ]


def read_run_folder(folder: Path, *, entity: str, project: str, run_id: str | None = None) -> ImportedRun:
    """The run recorded in ``folder`` (see the module docstring). ``entity``/``project`` are used when the
    run names none (an offline run started without them); ``run_id`` replaces the run's own id."""
    wandb_files = sorted(folder.glob("run-*.wandb"))
    if not wandb_files:
        raise SourceError(f"{folder} has no run-<id>.wandb file; is it a W&B run folder?")
    source = str(folder)
    run: Any = None
    config: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    artifacts: list[ImportedArtifact] = []
    skipped: list[str] = []
    exit_record: Any = None
    output: list[str] = []
    stats: list[tuple[float, dict[str, Any]]] = []
    last_seen: float | None = None
    for kind, rec in _records(wandb_files[0]):
        if kind == "run":
            if run is None:
                run = rec
            _apply(config, rec.config.update)
            _apply(summary, rec.summary.update)
        elif kind == "config":
            _apply(config, rec.update, rec.remove)
        elif kind == "summary":
            _apply(summary, rec.update, rec.remove)
        elif kind == "history":
            row = nested((_key(item), _value(item)) for item in rec.item)
            row.setdefault("_step", rec.step.num)
            history.append(row)
            if isinstance(row.get("_timestamp"), (int, float)):
                last_seen = max(last_seen or 0.0, float(row["_timestamp"]))
        elif kind == "artifact":
            where = f"{source}: artifact {rec.name!r}"
            if rec.distributed_id or not rec.finalize:
                skipped.append(f"artifact {rec.name!r}: a part of a distributed artifact (upsert_artifact)")
                continue
            if rec.incremental_beta1:
                skipped.append(f"artifact {rec.name!r}: an incremental artifact (its base version is on W&B)")
                continue
            artifacts.append(ImportedArtifact(
                name=rec.name, type=rec.type, digest=rec.digest, entries=_entries(rec.manifest, where),
                description=rec.description or None, metadata=json.loads(rec.metadata) if rec.metadata else {},
                aliases=list(rec.aliases), tags=list(rec.tags), ttl_seconds=rec.ttl_duration_seconds or None,
                client_id=rec.client_id, sequence_client_id=rec.sequence_client_id,
            ))  # fmt: skip
        elif kind == "stats" and rec.timestamp.seconds:
            at = rec.timestamp.seconds + rec.timestamp.nanos / 1e9
            stats.append((at, {f"system.{item.key}": _value(item) for item in rec.item}))
        elif kind == "exit":
            exit_record = rec
        elif kind in ("output_raw", "output"):
            # What the process printed; W&B's server keeps it as the run's output.log (made below when the
            # folder has none: SDKs since wandb-core keep it only in these records).
            output.append(rec.line)
            if rec.timestamp.seconds:
                last_seen = max(last_seen or 0.0, rec.timestamp.seconds + rec.timestamp.nanos / 1e9)
    if run is None:
        raise EmptyRunLog(
            f"{wandb_files[0].name} holds no run record (the process died before W&B wrote one); nothing to import"
        )
    for key in _INTERNAL_KEYS:
        config.pop(key, None)
        summary.pop(key, None)
    # Steps are unique: a resumed W&B run that logged a step again keeps the first row, as the server does.
    rows: dict[int, dict[str, Any]] = {}
    for row in history:
        rows.setdefault(int(row["_step"]), row)
    created_at = _timestamp(run.start_time)
    # No exit record: the process died before run.finish(), and W&B marks such a run crashed.
    state = "crashed" if exit_record is None else "finished" if exit_record.exit_code == 0 else "failed"
    finished_at = None
    if exit_record is not None or last_seen is not None:
        ends = [last_seen] if last_seen is not None else []
        if created_at is not None and exit_record is not None and exit_record.runtime:
            ends.append((created_at + timedelta(seconds=exit_record.runtime)).timestamp())
        finished_at = datetime.fromtimestamp(max(ends), tz=timezone.utc) if ends else created_at
    files_dir = folder / "files"
    media = {p for v in [*rows.values(), summary] for p in _media_paths(v)}
    files: list[tuple[Path, str]] = []
    if files_dir.is_dir():
        for path in sorted(files_dir.rglob("*")):
            name = path.relative_to(files_dir).as_posix()
            if name in media or not path.is_file():  # media go with the history; a dangling link has no content
                if path.is_symlink() and not path.exists():
                    skipped.append(f"file {name!r}: a link to {os.readlink(path)!r}, which is gone")
                continue
            files.append((path, name))

    made = {}
    if output and not any(name == "output.log" for _, name in files):
        made["output.log"] = "".join(output).encode("utf-8")
    # W&B writes the summary's _runtime from its own clock at exit (0 for an offline run in some SDKs);
    # the run's runtime is at least that of its last history row.
    runtimes = [r["_runtime"] for r in rows.values() if isinstance(r.get("_runtime"), (int, float))]
    recorded = summary.get("_runtime")
    if runtimes and not (isinstance(recorded, (int, float)) and recorded >= max(runtimes)):
        summary["_runtime"] = max(runtimes)

    def read_media(path: str) -> bytes:
        target = (files_dir / path).resolve()
        if not target.is_relative_to(files_dir.resolve()):
            raise SourceError(f"{source}: the media path {path!r} leaves the run's files folder")
        try:
            return target.read_bytes()
        except FileNotFoundError:
            raise SourceError(f"{source}: the media file files/{path} the history names is gone") from None

    begin = created_at.timestamp() if created_at is not None else (stats[0][0] if stats else 0.0)
    system = [{"_wandb": True, "_timestamp": at, "_runtime": at - begin, **values} for at, values in stats]
    imported = ImportedRun(
        entity=run.entity or entity, project=run.project or project, run_id=run_id or run.run_id,
        display_name=run.display_name or None, config=config, summary=summary, tags=list(run.tags),
        group=run.run_group or None, job_type=run.job_type or None, notes=run.notes or None, host=run.host or None,
        state=state, created_at=created_at, finished_at=finished_at, history=[rows[s] for s in sorted(rows)],
        media=read_media, files=files, made_files=made, system_metrics=system, artifacts=artifacts, source=source,
        skipped=skipped,
    )  # fmt: skip
    return imported


def sync_wandb_runs(
    paths: Iterable[str | os.PathLike[str]],
    *,
    workspace: Workspace | None = None,
    entity: str | None = None,
    project: str | None = None,
    run_id: str | None = None,
) -> list[ImportReport]:
    """Import every W&B run folder under ``paths`` into ``workspace`` (default: the one the environment
    names); one report per run. ``entity``/``project`` replace the run's own (as ``wandb sync --entity
    --project``), ``run_id`` its id (one folder only). Importing a folder again adds only what is new."""
    from wandb_dagster.settings import Settings

    ws = workspace or Workspace.default()
    folders = find_run_folders(paths)
    if run_id is not None and len(folders) != 1:
        raise SourceError(f"--id names one run, but {len(folders)} run folders were given; pass one folder")
    settings = Settings.resolve()
    reports = []
    for folder in folders:
        try:
            data = read_run_folder(folder, entity=entity or settings.entity, project=project or settings.project,
                                   run_id=run_id)  # fmt: skip
        except EmptyRunLog as empty:
            reports.append(ImportReport(path="", source=str(folder), created=False, skipped=[str(empty)]))
            continue
        if entity:
            data.entity = entity
        if project:
            data.project = project
        reports.append(write_run(ws, data))
    return reports
