"""``Artifact``: a versioned folder of files and references, built locally and committed to a workspace.

Example::

    >>> import wandb_dagster as wandb
    >>> with wandb.init(project="demo") as run:                 # doctest: +SKIP
    ...     art = wandb.Artifact("bike-dataset", type="dataset")
    ...     art.add_file("bicycle-data.h5")
    ...     run.log_artifact(art)
    >>> art.name                                                 # doctest: +SKIP
    'bike-dataset:v0'
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import shutil
import stat as stat_mod
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from wandb_dagster.sdk import download, staging
from wandb_dagster.sdk.draft import Draft
from wandb_dagster.sdk.manifest import Manifest, ManifestEntry
from wandb_dagster.sdk.names import (
    normalize_entry_path,
    parse_link_target,
    validate_aliases,
    validate_artifact_name,
    validate_description,
    validate_entry_path,
    validate_metadata,
    validate_tags,
    validate_type,
)
from wandb_dagster.sdk.values import iso_timestamp
from wandb_dagster.storage import references
from wandb_dagster.store import RegistryNotFoundError

if TYPE_CHECKING:
    from wandb_dagster.sdk.workspace import Workspace
    from wandb_dagster.store.records import VersionRecord

_A = TypeVar("_A", bound="Artifact")


class ArtifactNotLoggedError(AttributeError):
    """Raised when reading something only a committed artifact has (its version, id, files on the server)."""


class ArtifactTTL(enum.Enum):
    """``artifact.ttl = ArtifactTTL.INHERIT``: the team's default TTL, as in W&B (a workspace has none, so an
    inherited TTL is no TTL once logged)."""

    INHERIT = 0


# W&B refuses a TTL on the types it generates itself; so does this.
_NO_TTL_TYPES = ("run_table", "code", "job")

_TTL_UNCHANGED: Any = object()


class ArtifactFinalizedError(ValueError):
    """Raised when changing the contents of an artifact that is already committed."""


class ArtifactNotFoundError(ValueError):
    """Raised when a name does not resolve to a version in the workspace."""


class Artifact:
    """A versioned collection of files and references. See the module docstring for an example.

    ``workspace`` (not in W&B's signature; keyword only): the workspace whose blob store receives the files
    as they are added. Default: the active run's workspace when the first file is added, else the default
    workspace.
    """

    def __init__(
        self,
        name: str,
        type: str | None = None,
        description: str | None = None,
        metadata: dict | None = None,
        incremental: bool = False,
        use_as: str | None = None,
        *,
        workspace: Workspace | None = None,
    ) -> None:
        self._name = validate_artifact_name(name)
        if type is None:
            raise ValueError(f"Artifact {name!r} needs a type, e.g. wandb.Artifact({name!r}, type='dataset').")
        self._type = validate_type(type)
        self._description = validate_description(description)
        self._metadata = validate_metadata(metadata)
        self._aliases: list[str] = []
        self._tags: list[str] = []
        self._draft: Draft | None = Draft(self._name, owner=self, incremental=incremental)
        self._manifest = self._draft.manifest
        self._ws: Workspace | None = workspace
        self._record: VersionRecord | None = None
        self._manifest_loaded = True
        # W&B's default: inherit the team's TTL (none here). ``_ttl_set``: what save()/log must store.
        self._ttl: timedelta | None | ArtifactTTL = ArtifactTTL.INHERIT
        self._ttl_set: Any = _TTL_UNCHANGED

    # ---------------------------------------------------------------- construction from the store

    @classmethod
    def from_record(cls: type[_A], record: VersionRecord, workspace: Workspace) -> _A:
        """The committed version ``record`` of ``workspace`` (the SDK and the query API build the artifacts
        they return with this; it is not part of W&B's API)."""
        art = cls.__new__(cls)
        art._ws = workspace
        art._adopt(record)
        return art

    @property
    def workspace(self) -> Workspace | None:
        """The workspace this version is stored in; for a draft, the one its files are stored into (None until
        the first file is added, unless given to the constructor). Not part of W&B's API."""
        return self._ws

    def _adopt(self, record: VersionRecord) -> None:
        self._draft = None
        self._record = record
        self._name = record.collection
        self._type = record.type
        self._description = record.description
        self._metadata = dict(record.metadata or {})
        self._aliases = list(record.aliases)
        self._tags = list(record.tags)
        self._manifest = Manifest()
        self._manifest_loaded = False
        self._ttl, self._ttl_set = _TTL_UNCHANGED, _TTL_UNCHANGED  # read from the store when first asked

    # ---------------------------------------------------------------- retention (W&B's TTL)

    @property
    def ttl(self) -> timedelta | None:
        """The version's time to live, counted from its creation: ``gc`` (or ``wandb-dagster artifact
        expire``) deletes it once that has passed, with the alias rules of :meth:`delete`. None: never.
        Set a ``timedelta``, None, or ``ArtifactTTL.INHERIT``, then ``save()`` (or log the draft)."""
        if self._ttl is ArtifactTTL.INHERIT:
            raise ArtifactNotLoggedError(
                f"Artifact {self._name!r} inherits its TTL from the team's default, known once it is logged; "
                "log or save() it first, or set artifact.ttl to a timedelta or None."
            )
        if self._ttl is _TTL_UNCHANGED:
            assert self._ws is not None and self._record is not None
            seconds = self._ws.store.version_ttl(self._record.pk)
            self._ttl = None if seconds is None else timedelta(seconds=seconds)
        assert not isinstance(self._ttl, ArtifactTTL)
        return self._ttl

    @ttl.setter
    def ttl(self, value: timedelta | ArtifactTTL | None) -> None:
        if self._type in _NO_TTL_TYPES or self._type.startswith("wandb-"):
            raise ValueError(f"Artifacts of type {self._type!r} are generated by W&B and cannot have a TTL")
        if isinstance(value, timedelta):
            if value.total_seconds() <= 0:
                raise ValueError(f"artifact.ttl={value!r} is not positive; pass a positive timedelta, or None")
            seconds: int | None = max(1, int(value.total_seconds()))
        elif value is None or value is ArtifactTTL.INHERIT:
            seconds = None  # no team default here: inheriting is having none
        else:
            raise TypeError(
                f"artifact.ttl takes a datetime.timedelta, None or wandb.ArtifactTTL.INHERIT, not {value!r}"
            )
        if value is ArtifactTTL.INHERIT:
            self._ttl = value
        else:
            self._ttl = None if seconds is None else timedelta(seconds=seconds)
        self._ttl_set = seconds

    # ---------------------------------------------------------------- identity

    def _require_logged(self, what: str) -> VersionRecord:
        if self._record is None:
            raise ArtifactNotLoggedError(
                f"Artifact {self._name!r} has not been logged yet, so it has no {what}; "
                "call run.log_artifact(artifact) first."
            )
        return self._record

    def is_draft(self) -> bool:
        """True until the artifact is committed to a workspace."""
        return self._record is None

    @property
    def name(self) -> str:
        """``collection:vN`` once logged (as in W&B), the bare name before."""
        if self._record is None:
            return self._name
        return f"{self._record.collection}:v{self._record.index}"

    @property
    def collection_name(self) -> str:
        return self._name

    @property
    def type(self) -> str:
        return self._type

    @property
    def version(self) -> str:
        return f"v{self._require_logged('version').index}"

    @property
    def id(self) -> str:
        return self._require_logged("id").id

    @property
    def entity(self) -> str:
        return self._require_logged("entity").entity

    @property
    def project(self) -> str:
        return self._require_logged("project").project

    @property
    def is_link(self) -> bool:
        """True when this is a version seen through a registry link (not where it was logged)."""
        return self._record is not None and self._record.collection_id != self._record.source_collection_id

    def _source_record(self) -> VersionRecord:
        record = self._require_logged("source")
        if record.collection_id == record.source_collection_id:
            return record
        assert self._ws is not None
        return self._ws.store.get_version(record.id) or record

    @property
    def source_name(self) -> str:
        """``collection:vN`` where the version was logged (the same as ``name`` unless this is a link)."""
        source = self._source_record()
        return f"{source.collection}:v{source.index}"

    @property
    def qualified_name(self) -> str:
        record = self._require_logged("qualified name")
        return f"{record.entity}/{record.project}/{self.name}"

    @property
    def source_qualified_name(self) -> str:
        source = self._source_record()
        return f"{source.entity}/{source.project}/{source.collection}:v{source.index}"

    @property
    def state(self) -> str:
        return "PENDING" if self._record is None else self._record.state

    @property
    def digest(self) -> str:
        if self._record is not None:
            return self._record.digest
        return self._manifest.digest()

    @property
    def size(self) -> int:
        if self._record is not None:
            return self._record.size
        return self._manifest.size()

    @property
    def file_count(self) -> int:
        if self._record is not None:
            return self._record.file_count
        return len(self._manifest)

    @property
    def created_at(self) -> str:
        """When the version was created, as ISO 8601 text (``2026-01-02T03:04:05.600000Z``), as in W&B."""
        return iso_timestamp(self.created_datetime)

    @property
    def updated_at(self) -> str:
        """When the version was last changed, as ISO 8601 text, as in W&B."""
        return iso_timestamp(self.updated_datetime)

    @property
    def created_datetime(self) -> datetime:
        """``created_at`` as an aware UTC datetime (not in W&B's API)."""
        return self._require_logged("creation time").created_at

    @property
    def updated_datetime(self) -> datetime:
        """``updated_at`` as an aware UTC datetime (not in W&B's API)."""
        return self._require_logged("update time").updated_at

    @property
    def manifest(self) -> Manifest:
        self._load_manifest()
        return self._manifest

    # ---------------------------------------------------------------- editable fields

    @property
    def description(self) -> str | None:
        return self._description

    @description.setter
    def description(self, value: str | None) -> None:
        self._description = validate_description(value)

    @property
    def metadata(self) -> dict:
        return self._metadata

    @metadata.setter
    def metadata(self, value: dict) -> None:
        self._metadata = validate_metadata(value)

    @property
    def aliases(self) -> list[str]:
        return self._aliases

    @aliases.setter
    def aliases(self, value: Sequence[str]) -> None:
        self._aliases = validate_aliases(list(value))

    @property
    def tags(self) -> list[str]:
        return self._tags

    @tags.setter
    def tags(self, value: Sequence[str]) -> None:
        self._tags = validate_tags(list(value))

    def __repr__(self) -> str:
        return f"<Artifact {self.name!r} type={self._type!r} state={self.state}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Artifact):
            return NotImplemented
        if self._record is not None and other._record is not None:
            return self._record.id == other._record.id
        return self is other

    def __hash__(self) -> int:
        return id(self) if self._record is None else hash(self._record.id)

    # ---------------------------------------------------------------- building

    def _bind(self) -> Workspace:
        """The workspace whose blob store receives this draft's files: the active run's, else the default."""
        if self._ws is None:
            from wandb_dagster.sdk import run as run_mod

            active = run_mod.current_run()
            if active is not None:
                self._ws = active.workspace
            else:
                from wandb_dagster.sdk.workspace import Workspace

                self._ws = Workspace.default()
        return self._ws

    def _ensure_draft(self) -> Draft:
        if self._draft is None:
            raise ArtifactFinalizedError(
                f"Artifact {self.name!r} is committed and its contents cannot change; use "
                "artifact.new_draft() to build a new version from it."
            )
        return self._draft

    def add_file(
        self,
        local_path: str | os.PathLike,
        name: str | None = None,
        is_tmp: bool | None = False,
        skip_cache: bool | None = False,
        policy: str = "mutable",
        overwrite: bool = False,
    ) -> ManifestEntry:
        """Add one local file; ``name`` defaults to its basename.

        ``policy="mutable"`` (default) copies the bytes into storage now, so later edits of the local file
        cannot change what is logged; ``"immutable"`` promises the file will not change and copies at log
        time, checking it still has the digest it had when added.
        """
        self._ensure_draft()
        path = os.fspath(local_path)
        started_ns = time.time_ns()
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise ValueError(f"Path is not a file: {path!r} does not exist.") from None
        if not stat_mod.S_ISREG(st.st_mode):
            raise ValueError(f"Path is not a file: {path!r}; use add_dir() for directories.")
        entry_name = normalize_entry_path(name if name is not None else os.path.basename(path))
        [entry] = self._add_local_files(
            [(path, entry_name, st)], policy, bool(skip_cache), overwrite, is_tmp=bool(is_tmp), started_ns=started_ns
        )
        return entry

    def add_dir(
        self,
        local_path: str | os.PathLike,
        name: str | None = None,
        skip_cache: bool | None = False,
        policy: str = "mutable",
        merge: bool = False,
    ) -> list[ManifestEntry]:
        """Add every file under a directory as ``name/relpath`` (or ``relpath``); symlinked dirs are followed."""
        self._ensure_draft()
        root = os.fspath(local_path)
        if not os.path.isdir(root):
            raise ValueError(f"Path is not a directory: {root!r}; use add_file() for a single file.")
        prefix = normalize_entry_path(name) + "/" if name else ""
        started_ns = time.time_ns()  # before any stat: the stat cache's racy-window reference
        files = staging.walk_dir(root, prefix)
        return self._add_local_files(files, policy, bool(skip_cache), overwrite=merge, started_ns=started_ns)

    def _add_local_files(
        self,
        files: list[staging.LocalFile],
        policy: str,
        skip_cache: bool,
        overwrite: bool,
        is_tmp: bool = False,
        started_ns: int | None = None,
    ) -> list[ManifestEntry]:
        draft = self._ensure_draft()
        staging.check_policy(policy)
        if not files:
            return []
        ws = self._bind()
        staged = staging.stage(ws, files, policy, started_ns)
        if staged.present:
            draft.claimed.update(staging.claim_stored(ws, draft.claim_token, files, staged))
        draft.present.update(staged.present)
        entries = staging.entries_for(files, staged, policy, skip_cache, is_tmp)
        # Renamed temporary files may share a name; files from one walk (or one file) cannot clash.
        return draft.put_all(entries, overwrite, from_one_walk=not is_tmp)

    @contextlib.contextmanager
    def new_file(self, name: str, mode: str = "x", encoding: str | None = None) -> Iterator[Any]:
        """Open a new file to write; it is added to the artifact as ``name`` when the block exits."""
        self._ensure_draft()
        entry_name = normalize_entry_path(name)
        if mode not in ("x", "w", "xb", "wb"):
            raise ValueError(f"Invalid mode {mode!r} for new_file: use 'x', 'w', 'xb' or 'wb'.")
        if "x" in mode and entry_name in self._manifest.entries:
            raise ValueError(
                f"File with name {entry_name!r} already exists in artifact {self._name!r}; "
                "use mode='w' to overwrite it."
            )
        tmpdir = tempfile.mkdtemp(prefix="wandb-dagster-newfile-")
        try:
            path = os.path.join(tmpdir, os.path.basename(entry_name))
            with open(path, mode, encoding=encoding) as f:
                yield f
            self.add_file(path, name=entry_name, overwrite="w" in mode)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def add_reference(
        self,
        uri: str,
        name: str | None = None,
        checksum: bool = True,
        max_objects: int | None = None,
    ) -> list[ManifestEntry]:
        """Track an external URI (``file://``, ``s3://``, ``gs://``, ``http(s)://``) without storing its bytes.

        With ``checksum=False`` one entry is recorded whose digest is the URI itself: the content is not
        tracked. Listing more than ``max_objects`` objects under a prefix is an error that names the limit.
        """
        draft = self._ensure_draft()
        if name is not None:
            name = normalize_entry_path(name)
        found = references.resolve(uri, name=name, checksum=checksum, max_objects=max_objects)
        return [
            draft.put(
                ManifestEntry(path=validate_entry_path(r.path), digest=r.digest, size=r.size, ref=r.ref, extra=r.extra),
                overwrite=False,
            )
            for r in found
        ]

    def add(self, obj: Any, name: str, overwrite: bool = False) -> ManifestEntry:
        """Add a W&B data type (``wandb.Image``, ``wandb.Table``...) as ``name``: stored as the entry
        ``name.<type>.json`` (e.g. ``samples.table.json``) with its files under ``media/``, as W&B does.
        Adding to a name that is taken returns the existing entry unless ``overwrite``.

            >>> art.add(wandb.Table(columns=["a"], data=[[1]]), "samples")     # doctest: +SKIP
        """
        from wandb_dagster.sdk.data_types import artifact_add

        self._ensure_draft()
        return artifact_add(self, obj, name, overwrite)

    def get(self, name: str) -> Any:
        """The data type added as ``name`` (:meth:`add`), read back: a ``wandb.Table``, ``wandb.Image``...;
        None when the artifact has no such entry, as in W&B."""
        from wandb_dagster.sdk.data_types import artifact_get

        self._require_logged("objects to get")
        return artifact_get(self, name)

    def remove(self, item: str | ManifestEntry) -> None:
        """Remove an entry, or every entry under a directory prefix."""
        draft = self._ensure_draft()
        draft.remove(item.path if isinstance(item, ManifestEntry) else str(item).strip("/"))

    def new_draft(self) -> Artifact:
        """A draft with this version's name, type, metadata and contents, to change and log as a new version."""
        record = self._require_logged("contents to copy")
        draft = Artifact(
            self._name, record.type, description=self._description, metadata=self._metadata, workspace=self._ws
        )
        contents = draft._ensure_draft()
        for entry in self.manifest:
            copy = ManifestEntry(
                entry.path, entry.digest, entry.size, entry.ref, entry.birth_artifact_id, dict(entry.extra)
            )
            contents.put(copy, overwrite=True)
        return draft

    # ---------------------------------------------------------------- reading

    def _load_manifest(self) -> None:
        if self._manifest_loaded:
            return
        assert self._ws is not None and self._record is not None
        self._manifest = Manifest.from_json(
            self._ws.store.manifest(self._record.pk), where=f"manifest of {self.qualified_name}"
        )
        for entry in self._manifest:
            entry._artifact = self
        self._manifest_loaded = True

    def get_entry(self, name: str) -> ManifestEntry:
        """The entry at ``name``; ``entry.download()`` fetches just that file."""
        entry = self.manifest.get(name)
        if entry is None:
            raise KeyError(f"Artifact {self.name!r} has no entry {name!r}; it has {len(self.manifest)} entries.")
        return entry

    def get_path(self, name: str) -> ManifestEntry:
        """Deprecated W&B spelling of :meth:`get_entry`."""
        return self.get_entry(name)

    def files(self, names: list[str] | None = None, per_page: int = 50) -> list[ManifestEntry]:
        entries = list(self.manifest)
        return [e for e in entries if names is None or e.path in names]

    def _default_root(self) -> Path:
        return Path("artifacts") / self.name

    def download(
        self,
        root: str | os.PathLike | None = None,
        allow_missing_references: bool = False,
        skip_cache: bool | None = None,
        path_prefix: str | None = None,
        multipart: bool | None = None,
    ) -> str:
        """Download every entry (or those under ``path_prefix``) to ``root`` (``./artifacts/<name>:<vN>``)."""
        self._require_logged("files to download")
        target = Path(root) if root is not None else self._default_root()
        target.mkdir(parents=True, exist_ok=True)
        entries = [e for e in self.manifest if path_prefix is None or e.path.startswith(path_prefix)]
        self._download_entries(entries, target, bool(skip_cache), allow_missing_references)
        return str(target)

    def _download_entries(
        self, entries: list[ManifestEntry], root: Path, skip_cache: bool, allow_missing_references: bool
    ) -> None:
        assert self._ws is not None
        download.download_entries(
            self._ws, entries, root, skip_cache, allow_missing_references, version=self.qualified_name
        )

    def _download_one(self, entry: ManifestEntry, root: str | os.PathLike | None, skip_cache: bool) -> str:
        self._require_logged("files to download")
        target = Path(root) if root is not None else self._default_root()
        self._download_entries([entry], target, skip_cache, allow_missing_references=False)
        return str(target / entry.path)

    def checkout(self, root: str | os.PathLike | None = None) -> str:
        """Make ``root`` hold exactly this artifact: download, then delete files that are not entries."""
        target = Path(self.download(root))
        download.remove_other_files(target, self.manifest)
        return str(target)

    def verify(self, root: str | os.PathLike | None = None) -> None:
        """Check that ``root`` holds exactly this artifact's files, byte for byte; ValueError names any difference."""
        target = Path(root) if root is not None else self._default_root()
        problems = download.verify_entries(self.manifest, target)
        if problems:
            raise ValueError(
                f"Verification of {self.qualified_name if self._record is not None else self.name!r} in "
                f"{str(target)!r} failed: " + "; ".join(problems)
            )

    def file(self, root: str | os.PathLike | None = None) -> str:
        """Download a single-file artifact and return the file's path."""
        entries = list(self.manifest)
        if len(entries) != 1:
            raise ValueError(
                f"Artifact {self.name!r} has {len(entries)} entries; file() needs exactly one. Use download()."
            )
        target = Path(self.download(root))
        return str(target / entries[0].path)

    # ---------------------------------------------------------------- persistence

    def save(self, project: str | None = None, settings: Any = None) -> None:
        """Persist changes: a draft is logged (to the active run, or a new ``auto`` run); a committed
        version's description, metadata, aliases and tags are updated."""
        if self._record is None:
            from wandb_dagster.sdk import run as run_mod

            active = run_mod.current_run()
            if active is not None:
                active.log_artifact(self)
            else:
                with run_mod.init(project=project, job_type="auto", settings=settings, reinit="create_new") as run:
                    run.log_artifact(self)
            return
        assert self._ws is not None
        record = self._record
        aliases, tags = validate_aliases(self._aliases), validate_tags(self._tags)
        # Send changes relative to what this copy saw, not whole lists: saving an out-of-date copy must not
        # undo aliases or tags others added since. 'latest' can be removed, as in W&B (then "name:latest"
        # is the newest version until the next log moves it again), but only put back on the version
        # "name:latest" names anyway: never moved back to an older one (docs/behaviour.md section 4).
        added = [a for a in aliases if a not in record.aliases]
        if "latest" in added:
            current = self._ws.store.resolve(record.entity, record.project, record.collection, "latest")
            if current is not None and current.pk != record.pk:
                raise ValueError(
                    f"'latest' names v{current.index} of {record.collection!r}, the version logged last; it "
                    f"cannot be moved back to v{record.index}. Use a custom alias such as 'best'."
                )
        try:
            fresh = self._ws.store.update_version(
                record.pk,
                record.collection_id,
                description=self._description,
                metadata=validate_metadata(self._metadata),
                add_aliases=added,
                remove_aliases=[a for a in record.aliases if a not in aliases],
                add_tags=[t for t in tags if t not in record.tags],
                remove_tags=[t for t in record.tags if t not in tags],
                run_pk=_acting_run_pk(self._ws),
            )
        except LookupError:
            raise ArtifactNotFoundError(
                f"Artifact {self.qualified_name!r} no longer exists (deleted?); nothing was saved."
            ) from None
        pending = self._ttl_set
        manifest, loaded = self._manifest, self._manifest_loaded
        self._adopt(fresh)
        self._manifest, self._manifest_loaded = manifest, loaded
        if pending is not _TTL_UNCHANGED:
            self._ws.store.set_version_ttl(fresh.pk, pending)

    def wait(self, timeout: int | None = None) -> Artifact:
        """Logging is synchronous here; kept for W&B compatibility."""
        return self

    def link(self, target_path: str, aliases: Sequence[str] | None = None) -> Artifact:
        """Link this version into the collection ``[[entity/]project/]collection`` (e.g.
        ``wandb-registry-model/my-models``), created if missing; returns the version as seen there.

        Nothing is copied: the link shares this version's id, files, metadata, description and tags, and
        gets the collection's own next ``vN``. ``latest`` there moves to it, plus ``aliases``. Linking a
        version that is already a member applies the aliases only. A draft is logged first (``save()``).
        """
        if self._record is None:
            self.save()
        record = self._require_logged("version to link")
        assert self._ws is not None
        # Outside a run there are no run settings: the environment's organization, as Settings.resolve reads
        # it (the shared Workspace's settings are whichever client opened it first).
        return link_version(
            self._ws, record, target_path, aliases, record.entity, record.project, run_pk=_acting_run_pk(self._ws),
            organization=os.environ.get("WANDB_DAGSTER_ORGANIZATION") or None,
        )

    def unlink(self) -> None:
        """Remove this link from its registry collection (the linked version itself stays)."""
        record = self._require_logged("link to remove")
        assert self._ws is not None
        if not self.is_link:
            raise ValueError(
                f"Artifact {self.qualified_name!r} is not a link but the version where it was logged; "
                "unlink() removes registry links (fetch it through the registry path), delete() deletes a version."
            )
        try:
            self._ws.store.unlink_version(record.pk, record.collection_id, run_pk=_acting_run_pk(self._ws))
        except LookupError:
            raise ArtifactNotFoundError(
                f"Artifact {self.qualified_name!r} is no longer linked there (unlinked or deleted); nothing to do."
            ) from None

    def delete(self, delete_aliases: bool = False) -> None:
        """Delete this version. Refused while it has aliases unless ``delete_aliases=True``.

        On a link (a version fetched through a registry path) only the link is removed, as in W&B."""
        record = self._require_logged("version to delete")
        assert self._ws is not None
        if self.is_link:
            self.unlink()
            return
        from wandb_dagster.store import AliasInUseError

        try:
            self._ws.store.delete_version(
                record.pk, delete_aliases=delete_aliases, run_pk=_acting_run_pk(self._ws)
            )
        except AliasInUseError:
            raise ValueError(
                f"Artifact {self.qualified_name!r} still has aliases {sorted(record.aliases)}; remove them first, "
                "or call delete(delete_aliases=True) to delete them with the version."
            ) from None

    def json_encode(self) -> dict[str, Any]:
        return {"_type": "artifactVersion", "id": self.id, "name": self.name, "type": self.type}

    def manifest_json(self) -> str:
        return json.dumps(self.manifest.to_json(), indent=2)


# ------------------------------------------------------------------------------------------ internal interface
# What the rest of the SDK (sdk.commit, sdk.run) uses of an Artifact beyond its W&B API. Functions of this
# module rather than methods, so that Artifact's own attributes stay W&B's.


def draft_contents(artifact: Artifact) -> Draft:
    """The contents of a draft (ArtifactFinalizedError for a committed version)."""
    return artifact._ensure_draft()


def version_record(artifact: Artifact, what: str) -> VersionRecord:
    """The stored version a committed artifact is; ``what`` names what needed it, for the error a draft gets."""
    return artifact._require_logged(what)


def mark_committed(artifact: Artifact, ws: Workspace, record: VersionRecord, created: bool) -> None:
    """``artifact`` is now the version ``record`` of ``ws``. ``created``: the commit made it from the draft's
    contents, which are then its manifest (no read back); else the manifest is read when first needed."""
    keep = artifact._manifest if created else None
    pending_ttl = artifact._ttl_set
    artifact._ws = ws
    artifact._adopt(record)
    if keep is not None:
        artifact._manifest, artifact._manifest_loaded = keep, True
    if pending_ttl is not _TTL_UNCHANGED:
        # Its own short transaction after the commit: a crash in between leaves the version without a TTL,
        # kept longer rather than deleted early.
        ws.store.set_version_ttl(record.pk, pending_ttl)


def _acting_run_pk(ws: Workspace) -> int | None:
    from wandb_dagster.sdk import run as run_mod

    return run_mod.acting_run_pk(ws)


def link_version(
    ws: Workspace,
    record: VersionRecord,
    target_path: str,
    aliases: Sequence[str] | None,
    default_entity: str,
    default_project: str,
    run_pk: int | None = None,
    organization: str | None = None,
) -> Artifact:
    """Link ``record`` into ``target_path`` (see :meth:`Artifact.link`); returns the linked view.
    ``run_pk``: the run doing it (named as the acting run in the event feed). A registry target resolves
    to the registry of ``organization`` (None: the default one; sdk/registry_paths.py)."""
    from wandb_dagster.sdk.registry_paths import has_entity, registry_location

    entity, project, collection, path_alias = parse_link_target(target_path, default_entity, default_project)
    entity, project = registry_location(
        ws, entity, project, explicit=has_entity(target_path), organization=organization
    )
    alias_list = validate_aliases(list(aliases or []) + ([path_alias] if path_alias else []))
    if "latest" not in alias_list:
        alias_list.append("latest")
    try:
        result = ws.store.link_version(record.pk, entity, project, collection, aliases=alias_list, run_pk=run_pk)
    except RegistryNotFoundError:
        raise
    except LookupError:
        raise ArtifactNotFoundError(
            f"Artifact {record.entity}/{record.project}/{record.collection}:v{record.index} no longer exists "
            "(deleted?); link an existing version."
        ) from None
    return Artifact.from_record(result.version, ws)
