"""Writing an imported run into a workspace: the run, its history (media included), its files and its
artifacts, each piece only when the workspace does not hold it yet, so that importing twice creates nothing.

The importers (:mod:`.wandb_offline`, :mod:`.tensorboard`) read their sources into an :class:`ImportedRun`
of plain values; this module is the one place that writes. It follows the writers' rules of
docs/architecture.md: media and file blobs are claimed, stored and proven durable before the transaction
that names them (invariant 1, "Garbage collection"), artifacts go through the SDK's commit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from wandb_dagster.sdk.data_types.base import RUN_FILE_TYPES
from wandb_dagster.sdk.manifest import ManifestEntry
from wandb_dagster.sdk.names import validate_tags
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.storage.hashing import hash_file, hex_to_b64
from wandb_dagster.store.errors import RunExistsError

# History rows written per transaction: a long run's history does not become one huge transaction.
_ROWS_PER_WRITE = 2000


class SourceError(ValueError):
    """A source that cannot be imported as it is (a missing file, a digest that does not match)."""


@dataclasses.dataclass
class ImportedEntry:
    """One manifest entry of an imported artifact: a file to store (``local_path``) or a reference (``ref``),
    with the digest its source recorded (checked against the bytes for stored files)."""

    path: str
    digest: str
    size: int | None = None
    ref: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    local_path: str | None = None


@dataclasses.dataclass
class ImportedArtifact:
    name: str
    type: str
    digest: str  # the artifact digest the source recorded (W&B's formula, docs/behaviour.md section 1)
    entries: list[ImportedEntry]
    description: str | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    aliases: list[str] = dataclasses.field(default_factory=list)
    tags: list[str] = dataclasses.field(default_factory=list)
    ttl_seconds: int | None = None
    # W&B's ids of this version and of its collection before a server assigns real ones: history values
    # and other artifacts' references name them (``wandb-client-artifact://<client id>/<entry>``).
    client_id: str = ""
    sequence_client_id: str = ""


@dataclasses.dataclass
class ImportedRun:
    """A run read from a source, ready to write. History rows carry ``_step``, ``_timestamp`` and
    ``_runtime``; their media values are W&B's JSON forms (``{"_type": "image-file", "path": ...}``) whose
    bytes ``media`` returns by path."""

    entity: str
    project: str
    run_id: str
    display_name: str | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    tags: list[str] = dataclasses.field(default_factory=list)
    group: str | None = None
    job_type: str | None = None
    notes: str | None = None
    host: str | None = None
    state: str = "finished"
    created_at: datetime | None = None
    finished_at: datetime | None = None
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    media: Callable[[str], bytes] | None = None
    files: list[tuple[Path, str]] = dataclasses.field(default_factory=list)  # (source, name in the run)
    # System metrics samples (W&B's events stream): rows of ``_wandb``, ``_timestamp``, ``_runtime``, ``system.*``.
    system_metrics: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # Files made from the source's records rather than read from a file (W&B's output.log), name -> bytes.
    made_files: dict[str, bytes] = dataclasses.field(default_factory=dict)
    artifacts: list[ImportedArtifact] = dataclasses.field(default_factory=list)
    source: str = ""  # what it was read from, for messages
    skipped: list[str] = dataclasses.field(default_factory=list)  # what the reader left out, and why


@dataclasses.dataclass
class ImportReport:
    """What one import wrote: ``created`` is False when the run was already there. Counts are of new things
    only, so a second import of the same source reports zeros."""

    path: str
    source: str
    created: bool
    history_rows: int = 0
    system_metrics: int = 0
    files: int = 0
    artifacts: list[str] = dataclasses.field(default_factory=list)  # qualified names of versions logged
    skipped: list[str] = dataclasses.field(default_factory=list)  # what was not imported, and why

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def write_run(ws: Workspace, data: ImportedRun) -> ImportReport:
    """Write ``data`` into ``ws``: create the run or bring the existing one up to date, adding only the
    history steps, files and artifact versions it does not have."""
    store = ws.store
    record = store.get_run(data.entity, data.project, data.run_id)
    created = record is None
    if record is None:
        try:
            record = store.create_run(
                data.entity, data.project, data.run_id, display_name=data.display_name, config=data.config,
                tags=validate_tags(list(data.tags)), group=data.group, job_type=data.job_type, notes=data.notes,
                host=data.host,
            )  # fmt: skip
        except RunExistsError:  # imported by another process meanwhile: continue as a second import would
            created = False
            record = store.get_run(data.entity, data.project, data.run_id)
            assert record is not None
    run_path = f"{data.entity}/{data.project}/{data.run_id}"
    report = ImportReport(path=run_path, source=data.source, created=created, skipped=list(data.skipped))
    # Artifacts first: history values (a logged table's artifact_path) name them by W&B's client ids, which
    # become the versions' own names here.
    by_client = {a.client_id: a for a in data.artifacts if a.client_id}
    names: dict[str, str] = {}
    for artifact in data.artifacts:
        version, created_now = _write_artifact(ws, record.pk, data, artifact, by_client)
        if created_now:
            report.artifacts.append(version.qualified_name)
        if artifact.client_id:
            names[f"wandb-client-artifact://{artifact.client_id}/"] = f"wandb-artifact://_id/{version.id}/"
        if artifact.sequence_client_id:
            latest = f"wandb-artifact://{version.entity}/{version.project}/{version.collection_name}:latest/"
            names[f"wandb-client-artifact://{artifact.sequence_client_id}:latest/"] = latest
    data.history = [_renamed(row, names) for row in data.history] if names else data.history
    data.summary = _renamed(data.summary, names) if names else data.summary
    known = {row["_step"] for row in store.history(record.pk)}
    rows = [row for row in data.history if row["_step"] not in known]
    media = _MediaWriter(ws, data.media, data.source)
    for start in range(0, len(rows), _ROWS_PER_WRITE):
        chunk = [media.attach(row) for row in rows[start : start + _ROWS_PER_WRITE]]
        media.write(record.pk, history=chunk)
    report.history_rows = len(rows)
    # Samples have no key to compare by: they are written once, when the run has none yet.
    if data.system_metrics and not store.system_metrics(record.pk):
        store.append_system_metrics(record.pk, data.system_metrics, durable=True)
        report.system_metrics = len(data.system_metrics)
    with tempfile.TemporaryDirectory(prefix="wandb-dagster-import-") as tmp:
        made = []
        for i, (name, content) in enumerate(sorted(data.made_files.items())):
            path = Path(tmp) / str(i)
            path.write_bytes(content)
            made.append((path, name))
        report.files = _write_files(ws, record.pk, [*data.files, *made])
    # The run's own fields last, with its final state: an interrupted import shows the run as it was left
    # (running, or as a first import left it), and the next import completes it.
    summary = media.attach(data.summary)
    wanted: dict[str, Any] = {
        "display_name": data.display_name, "config": data.config, "summary": summary,
        "tags": validate_tags(list(data.tags)), "group": data.group, "job_type": data.job_type, "notes": data.notes,
        "state": data.state, "created_at": data.created_at, "finished_at": data.finished_at,
    }  # fmt: skip
    current = {
        "display_name": record.display_name, "config": record.config, "summary": record.summary,
        "tags": list(record.tags or []), "group": record.group, "job_type": record.job_type, "notes": record.notes,
        "state": record.state, "created_at": record.created_at, "finished_at": record.finished_at,
    }  # fmt: skip
    if created:
        current["state"] = "running"  # what create_run left, whatever the record says
    changed = {k: v for k, v in wanted.items() if v is not None and current.get(k) != v}
    if changed:
        changed["heartbeat_at"] = data.finished_at or datetime.now(timezone.utc)
        media.write(record.pk, **changed)
    return report


class _MediaWriter:
    """Stores the media files that history rows and the summary name, and records them with the rows."""

    def __init__(self, ws: Workspace, read: Callable[[str], bytes] | None, source: str) -> None:
        self.ws, self.read, self.source = ws, read, source
        self.token = uuid.uuid4().hex
        self.pending: dict[str, int] = {}  # hex -> size, stored since the last write

    def attach(self, value: Any) -> Any:
        """``value`` with the ``digest`` of every media file it names (``digests``/``sizes`` for a list of
        images), the bytes stored; the sha256 W&B recorded is checked against them."""
        if isinstance(value, list):
            return [self.attach(v) for v in value]
        if not isinstance(value, dict):
            return value
        out = {k: self.attach(v) for k, v in value.items()}
        kind = out.get("_type")
        if kind in RUN_FILE_TYPES and isinstance(out.get("path"), str) and "digest" not in out:
            out["digest"], size = self._store(out["path"], out.get("sha256"))
            out.setdefault("size", size)
        elif kind == "images/separated" and isinstance(out.get("filenames"), list) and "digests" not in out:
            stored = [self._store(name, None) for name in out["filenames"]]
            out["digests"], out["sizes"] = [d for d, _ in stored], [s for _, s in stored]
        return out

    def _store(self, path: str, sha256: Any) -> tuple[str, int]:
        if self.read is None:
            raise SourceError(f"{self.source}: the value names the media file {path!r}, which cannot be read")
        data = self.read(path)
        if isinstance(sha256, str) and hashlib.sha256(data).hexdigest() != sha256:
            raise SourceError(
                f"{self.source}: the media file {path!r} does not have the sha256 its history recorded "
                f"({sha256[:16]}...); it was changed after the run logged it. Restore it, or remove the folder."
            )
        hexdigest = hashlib.md5(data).hexdigest()
        # Claimed before it is stored, as a run's own media (docs/architecture.md, "Garbage collection").
        self.ws.store.claim_blobs(self.token, [hexdigest], durable=False)
        hexdigest, size = self.ws.blobs.put_bytes(data)
        self.pending[hexdigest] = size
        return hex_to_b64(hexdigest), size

    def write(self, run_pk: int, history: list[dict[str, Any]] | None = None, **fields: Any) -> None:
        media = sorted(self.pending)
        if media:
            self.ws.blobs.sync(media, dict(self.pending))
        self.ws.store.update_run(
            run_pk, history=history or (), media=media, claim=self.token if media else None, **fields
        )
        self.pending = {}


def _write_files(ws: Workspace, run_pk: int, files: list[tuple[Path, str]]) -> int:
    """Store the files whose content the run does not have under that name yet; returns how many."""
    from wandb_dagster.sdk.run_files import RunFiles

    have = {f.name: f.digest for f in ws.store.run_files(run_pk)}
    todo = []
    for src, name in files:
        if have.get(name) is not None and hash_file(src)[0] == have[name]:
            continue
        todo.append((src, name))
    if todo:
        RunFiles(ws, run_pk).upload(todo)
    return len(todo)


def _write_artifact(
    ws: Workspace, run_pk: int, data: ImportedRun, imported: ImportedArtifact, by_client: dict[str, ImportedArtifact]
) -> tuple[Any, bool]:
    """Log ``imported`` as an output of the run unless the run already logged a version with its digest;
    returns the version and whether it was logged now. An entry that references another artifact of the
    run by W&B's client id (``artifact.add(table, ...)`` of a logged table) is stored from that artifact's
    staged file: the same content, so the same digest and blob."""
    from wandb_dagster.sdk.artifact import Artifact
    from wandb_dagster.sdk.commit import commit_artifact
    from wandb_dagster.sdk.names import validate_aliases

    for version in ws.store.run_outputs(run_pk):
        if version.collection == imported.name and version.digest == imported.digest:
            return Artifact.from_record(version, ws), False
    art = Artifact(
        imported.name, type=imported.type, description=imported.description, metadata=imported.metadata or None,
        workspace=ws,
    )  # fmt: skip
    where = f"{data.source}: artifact {imported.name!r}"
    for entry in imported.entries:
        entry = _resolved(entry, by_client, where)
        if entry.ref is not None:
            art._ensure_draft().put(
                ManifestEntry(path=entry.path, digest=entry.digest, size=entry.size, ref=entry.ref, extra=entry.extra),
                overwrite=False,
            )
            continue
        if entry.local_path is None or not os.path.isfile(entry.local_path):
            raise SourceError(
                f"{where}, entry {entry.path!r}: its file {entry.local_path!r} is gone (W&B keeps an offline "
                "artifact's files in its staging folder, $WANDB_DATA_DIR/artifacts/staging, until they are "
                "synced); restore the file, or import from the machine that logged the run."
            )
        added = art.add_file(entry.local_path, name=entry.path)
        if added.digest != entry.digest:
            raise SourceError(
                f"{where}, entry {entry.path!r}: {entry.local_path} has MD5 {added.digest}, not the {entry.digest} "
                "W&B recorded: the staged file changed after the run logged it."
            )
    if art.manifest.digest() != imported.digest:
        raise SourceError(
            f"{where}: its entries give the digest {art.manifest.digest()}, not the {imported.digest} W&B recorded"
        )
    if imported.ttl_seconds:
        art.ttl = timedelta(seconds=imported.ttl_seconds)
    aliases = validate_aliases([a for a in imported.aliases if a != "latest"] + ["latest"])
    logged = commit_artifact(
        ws, art, entity=data.entity, project=data.project, aliases=aliases, tags=validate_tags(list(imported.tags)),
        run_pk=run_pk,
    )  # fmt: skip
    return logged, True


def _resolved(entry: ImportedEntry, by_client: dict[str, ImportedArtifact], where: str) -> ImportedEntry:
    """``entry``, or for a reference to another artifact of the run (by W&B's client id), that artifact's
    entry as a stored file under this entry's path."""
    prefix = "wandb-client-artifact://"
    if entry.ref is None or not entry.ref.startswith(prefix):
        return entry
    client_id, _, path = entry.ref[len(prefix) :].partition("/")
    target = by_client.get(client_id.split(":")[0])
    found = None if target is None else next((e for e in target.entries if e.path == path), None)
    if found is None or found.ref is not None:
        raise SourceError(
            f"{where}, entry {entry.path!r}: it references {entry.ref}, an artifact this run did not log offline; "
            "only references to the run's own artifacts can be imported"
        )
    return dataclasses.replace(found, path=entry.path)


def _renamed(value: Any, names: dict[str, str]) -> Any:
    """``value`` with W&B's client-artifact URIs replaced by this workspace's ``wandb-artifact://`` names."""
    if isinstance(value, dict):
        return {k: _renamed(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, names) for v in value]
    if isinstance(value, str) and value.startswith("wandb-client-artifact://"):
        for old, new in names.items():
            if value.startswith(old):
                return new + value[len(old) :]
    return value


def nested(items: Iterator[tuple[list[str], Any]]) -> dict[str, Any]:
    """A dict from (key path, value) pairs: ``(["nest", "x"], 1)`` gives ``{"nest": {"x": 1}}``."""
    out: dict[str, Any] = {}
    for path, value in items:
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = value
    return out

