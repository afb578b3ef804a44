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
import json
import os
import shutil
import stat as stat_mod
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from wandb_dagster.sdk.manifest import Manifest, ManifestEntry
from wandb_dagster.sdk.names import (
    normalize_entry_path,
    parse_link_target,
    validate_aliases,
    validate_artifact_name,
    validate_entry_path,
    validate_metadata,
    validate_tags,
    validate_type,
)
from wandb_dagster.storage import references
from wandb_dagster.storage.hashing import b64_to_hex, hash_file, hex_to_b64

if TYPE_CHECKING:
    from wandb_dagster.sdk.workspace import Workspace
    from wandb_dagster.store.records import VersionRecord

_POLICIES = ("mutable", "immutable")
_IO_WORKERS = 8


class ArtifactNotLoggedError(AttributeError):
    """Raised when reading something only a committed artifact has (its version, id, files on the server)."""


class ArtifactFinalizedError(ValueError):
    """Raised when changing the contents of an artifact that is already committed."""


class ArtifactNotFoundError(ValueError):
    """Raised when a name does not resolve to a version in the workspace."""


class _Destinations:
    """Maps entry paths to files under a root, refusing anything that would land outside it (invariant 6).

    Entry paths are validated (no '..', no absolute paths); a symlinked folder inside the root could still
    point elsewhere, so each parent folder is resolved, once per folder rather than once per file.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._resolved_root = root.resolve()
        self._checked: set[str] = set()

    def __call__(self, entry_path: str) -> Path:
        validate_entry_path(entry_path)
        dest = self.root / entry_path
        folder = entry_path.rpartition("/")[0]
        if folder and folder not in self._checked:
            parent = dest.parent.resolve()
            if parent != self._resolved_root and self._resolved_root not in parent.parents:
                raise ValueError(
                    f"Artifact entry {entry_path!r} would be written to {parent}, outside the download root "
                    f"{self._resolved_root} (a symlink inside the root points elsewhere); remove it or pick "
                    "another root."
                )
            self._checked.add(folder)
        return dest


class Artifact:
    """A versioned collection of files and references. See the module docstring for an example."""

    def __init__(
        self,
        name: str,
        type: str | None = None,
        description: str | None = None,
        metadata: dict | None = None,
        incremental: bool = False,
        use_as: str | None = None,
    ) -> None:
        self._name = validate_artifact_name(name)
        if type is None:
            raise ValueError(f"Artifact {name!r} needs a type, e.g. wandb.Artifact({name!r}, type='dataset').")
        self._type = validate_type(type)
        self._description = description
        self._metadata = validate_metadata(metadata)
        self._aliases: list[str] = []
        self._tags: list[str] = []
        self._manifest = Manifest()
        self._ws: Workspace | None = None
        self._record: VersionRecord | None = None
        self._manifest_loaded = True
        self._incremental = incremental
        # Blobs known to be in self._ws's store (checked or written by add_*), so commit need not ask again.
        self._present: set[str] = set()

    # ---------------------------------------------------------------- construction from the store

    @classmethod
    def _from_record(cls, ws: "Workspace", record: "VersionRecord") -> "Artifact":
        art = cls.__new__(cls)
        art._ws = ws
        art._incremental = False
        art._present = set()
        art._adopt(record)
        return art

    def _adopt(self, record: "VersionRecord") -> None:
        self._record = record
        self._name = record.collection
        self._type = record.type
        self._description = record.description
        self._metadata = dict(record.metadata or {})
        self._aliases = list(record.aliases)
        self._tags = list(record.tags)
        self._manifest = Manifest()
        self._manifest_loaded = False

    # ---------------------------------------------------------------- identity

    def _require_logged(self, what: str) -> "VersionRecord":
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

    def _source_record(self) -> "VersionRecord":
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
    def created_at(self) -> datetime:
        return self._require_logged("creation time").created_at

    @property
    def updated_at(self) -> datetime:
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
        if value is not None and not isinstance(value, str):
            raise ValueError(f"Artifact description must be a string or None, got {value!r}.")
        self._description = value

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

    def _ensure_draft(self) -> None:
        if self._record is not None:
            raise ArtifactFinalizedError(
                f"Artifact {self.name!r} is committed and its contents cannot change; use "
                "artifact.new_draft() to build a new version from it."
            )

    def _bind(self) -> "Workspace":
        """The workspace whose blob store receives this draft's files: the active run's, else the default."""
        if self._ws is None:
            from wandb_dagster.sdk import run as run_mod

            active = run_mod.current_run()
            if active is not None:
                self._ws = active._ws
            else:
                from wandb_dagster.sdk.workspace import Workspace

                self._ws = Workspace.default()
        return self._ws

    def _put_entry(self, entry: ManifestEntry, overwrite: bool) -> ManifestEntry:
        clash = self._manifest.path_clash(entry.path)
        if clash is not None:
            raise ValueError(
                f"Artifact {self._name!r} cannot hold both {clash!r} and {entry.path!r}: one would be a file "
                "and a directory at once. Rename one of them."
            )
        existing = self._manifest.get(entry.path)
        if existing is not None and not overwrite:
            if existing.digest == entry.digest and existing.ref == entry.ref:
                return existing
            raise ValueError(
                f"Artifact {self._name!r} already has an entry {entry.path!r} with other content; pass "
                "overwrite=True (or merge=True for add_dir) to replace it, or choose another name."
            )
        entry._artifact = self
        self._manifest.add(entry)
        return entry

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
        files: list[tuple[str, str, os.stat_result]] = []
        seen_dirs: set[tuple[int, int]] = set()
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=_unreadable):
            st_dir = os.stat(dirpath)
            if (st_dir.st_dev, st_dir.st_ino) in seen_dirs:  # a symlink cycle: walk each directory once
                dirnames[:] = []
                continue
            seen_dirs.add((st_dir.st_dev, st_dir.st_ino))
            rel_dir = os.path.relpath(dirpath, root)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            for filename in filenames:
                full = os.path.join(dirpath, filename)
                try:
                    st = os.stat(full)
                except FileNotFoundError:  # a dangling symlink: nothing to log
                    continue
                if stat_mod.S_ISREG(st.st_mode):
                    files.append((full, validate_entry_path(prefix + rel_dir + filename), st))
        return self._add_local_files(files, policy, bool(skip_cache), overwrite=merge, started_ns=started_ns)

    def _add_local_files(
        self,
        files: list[tuple[str, str, os.stat_result]],
        policy: str,
        skip_cache: bool,
        overwrite: bool,
        is_tmp: bool = False,
        started_ns: int | None = None,
    ) -> list[ManifestEntry]:
        if policy not in _POLICIES:
            raise ValueError(f"Invalid policy {policy!r}: use 'mutable' or 'immutable'.")
        if not files:
            return []
        ws = self._bind()
        stats = [st for _, _, st in files]
        known = ws.statcache.lookup_many(stats)
        digests: list[str | None] = list(known)
        # The size of the bytes the digest was computed from: a file that changed between the stat above and
        # the read is recorded as read (digest and size agree), not with the size it had before.
        sizes = [st.st_size for st in stats]
        if policy == "mutable":
            # Copy into the blob store now (hashing while copying); a blob already present whose source is
            # unchanged according to the stat cache costs nothing more than the stat.
            # Sizes make a blob truncated by a crash before sync() count as missing, so it is rewritten.
            present = ws.blobs.exists_many({d for d in known if d}, sizes={d: st.st_size for d, st in zip(known, stats) if d})
            todo = [i for i, d in enumerate(known) if d is None or d not in present]
            if todo:
                results = ws.blobs.put_files(
                    [files[i][0] for i in todo], expected=[known[i] for i in todo]
                )
                for i, (hexdigest, size) in zip(todo, results):
                    digests[i], sizes[i] = hexdigest, size
            self._present.update(digests)  # type: ignore[arg-type]
        else:
            todo = [i for i, d in enumerate(known) if d is None]
            if todo:
                with ThreadPoolExecutor(_IO_WORKERS) as pool:
                    hashed = list(pool.map(lambda i: hash_file(files[i][0]), todo))
                for i, (hexdigest, size) in zip(todo, hashed):
                    digests[i], sizes[i] = hexdigest, size
        # A file whose size changed while it was read must not be vouched for by its old stat.
        fresh = [(stats[i], digests[i]) for i, d in enumerate(known) if d is None and sizes[i] == stats[i].st_size]
        if fresh:
            ws.statcache.record_many(fresh, since_ns=started_ns)
        entries = []
        # Paths from one directory walk cannot clash with each other, only with entries already present.
        fresh_artifact = not self._manifest.entries
        for (path, entry_name, _st), hexdigest, size in zip(files, digests, sizes):
            if is_tmp:
                # W&B renames temporary files deterministically from their digest to avoid collisions.
                folder, _, base = entry_name.rpartition("/")
                parts = base.split(".")
                parts[0] = hexdigest[:20]
                entry_name = (folder + "/" if folder else "") + ".".join(parts)
            entry = ManifestEntry(
                path=entry_name,
                digest=hex_to_b64(hexdigest),
                size=size,
                local_path=path if policy == "immutable" else None,
                skip_cache=skip_cache,
            )
            if fresh_artifact and not is_tmp:
                entry._artifact = self
                self._manifest.add(entry)
                entries.append(entry)
            else:
                entries.append(self._put_entry(entry, overwrite))
        return entries

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
        self._ensure_draft()
        if name is not None:
            name = normalize_entry_path(name)
        found = references.resolve(uri, name=name, checksum=checksum, max_objects=max_objects)
        return [
            self._put_entry(
                ManifestEntry(path=validate_entry_path(r.path), digest=r.digest, size=r.size, ref=r.ref, extra=r.extra),
                overwrite=False,
            )
            for r in found
        ]

    def remove(self, item: str | ManifestEntry) -> None:
        """Remove an entry, or every entry under a directory prefix."""
        self._ensure_draft()
        path = item.path if isinstance(item, ManifestEntry) else str(item).strip("/")
        if path in self._manifest.entries:
            self._manifest.remove(path)
            return
        under = [p for p in self._manifest.entries if p.startswith(path + "/")]
        if not under:
            raise FileNotFoundError(f"Artifact {self._name!r} has no entry or directory {path!r}.")
        for p in under:
            self._manifest.remove(p)

    def new_draft(self) -> "Artifact":
        """A draft with this version's name, type, metadata and contents, to change and log as a new version."""
        record = self._require_logged("contents to copy")
        draft = Artifact(self._name, record.type, description=self._description, metadata=self._metadata)
        draft._ws = self._ws
        for entry in self.manifest:
            copy = ManifestEntry(entry.path, entry.digest, entry.size, entry.ref, entry.birth_artifact_id, dict(entry.extra))
            draft._put_entry(copy, overwrite=True)
        return draft

    # ---------------------------------------------------------------- reading

    def _load_manifest(self) -> None:
        if self._manifest_loaded:
            return
        assert self._ws is not None and self._record is not None
        self._manifest = Manifest.from_json(self._ws.store.manifest(self._record.pk))
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
        ws = self._ws
        assert ws is not None
        destination = _Destinations(root)
        plan = [(entry, destination(entry.path)) for entry in entries]
        stored = [(e, d) for e, d in plan if e.ref is None]
        # Skip files already in place with the right content (known through the stat cache).
        dest_stats = []
        for _, dest in stored:
            try:
                dest_stats.append(os.stat(dest))
            except FileNotFoundError:
                dest_stats.append(None)
        present = ws.statcache.lookup_many([s for s in dest_stats if s is not None])
        present_iter = iter(present)
        todo = []
        for (entry, dest), st in zip(stored, dest_stats):
            hexdigest = b64_to_hex(entry.digest)
            if st is not None and next(present_iter) == hexdigest:
                continue
            todo.append((entry, dest, hexdigest))

        def fetch(item: tuple[ManifestEntry, Path, str]) -> tuple[os.stat_result, str]:
            entry, dest, hexdigest = item
            dest.parent.mkdir(parents=True, exist_ok=True)
            if skip_cache or entry.skip_cache:
                ws.blobs.get_file(hexdigest, dest)
                return os.stat(dest), hexdigest
            with ws.cache.pinned(hexdigest):  # our other download threads will not evict it meanwhile
                for attempt in range(3):
                    ws.cache.fetch(ws.blobs, hexdigest, entry.size)  # a verified cache hit costs one stat
                    try:
                        ws.cache.place(hexdigest, dest)
                        break
                    except FileNotFoundError:  # evicted by another process between fetch and place
                        if attempt == 2:
                            raise
            return os.stat(dest), hexdigest

        if todo and ws.blobs.batched_downloads:
            # Object stores: fill the cache in one batched, concurrent transfer (with progress) first; the
            # per-entry fetch below is then a cache hit. Skipped when the batch would not fit the cache.
            cached = [(h, e.size) for e, _, h in todo if not (skip_cache or e.skip_cache)]
            if cached and sum(s or 0 for _, s in cached) <= ws.cache.max_bytes // 2:
                ws.cache.fetch_many(ws.blobs, cached)
            uncached = [(h, e.size, d) for e, d, h in todo if skip_cache or e.skip_cache]
            if uncached:
                ws.blobs.get_files(uncached)
                todo = [(e, d, h) for e, d, h in todo if not (skip_cache or e.skip_cache)]
                ws.statcache.record_many([(os.stat(d), h) for h, _, d in uncached])
        if todo:
            with ThreadPoolExecutor(_IO_WORKERS) as pool:
                done = list(pool.map(fetch, todo))
            ws.statcache.record_many(done)
            ws.cache.trim()  # entries pinned during the downloads may have kept the cache over its bound
        def fetch_reference(item: tuple[ManifestEntry, Path]) -> None:
            entry, dest = item
            dest.parent.mkdir(parents=True, exist_ok=True)
            # Remote references are cached by (ref, checksum, versionID): a second download asks no server.
            cache = None if skip_cache or entry.skip_cache else ws.cache
            try:
                references.download(
                    entry.ref, entry.digest, entry.size, entry.extra, dest, entry_path=entry.path, cache=cache
                )
            except FileNotFoundError:  # the only error allow_missing_references tolerates (spec section 3)
                if not allow_missing_references:
                    raise

        refs = [(e, d) for e, d in plan if e.ref is not None]
        if len(refs) == 1:
            fetch_reference(refs[0])
        elif refs:
            with ThreadPoolExecutor(_IO_WORKERS) as pool:
                list(pool.map(fetch_reference, refs))  # re-raises the first failure, in entry order

    def _download_one(self, entry: ManifestEntry, root: str | os.PathLike | None, skip_cache: bool) -> str:
        self._require_logged("files to download")
        target = Path(root) if root is not None else self._default_root()
        self._download_entries([entry], target, skip_cache, allow_missing_references=False)
        return str(target / entry.path)

    def checkout(self, root: str | os.PathLike | None = None) -> str:
        """Make ``root`` hold exactly this artifact: download, then delete files that are not entries."""
        target = Path(self.download(root))
        wanted = {target / e.path for e in self.manifest}
        for dirpath, _dirs, filenames in os.walk(target):
            for filename in filenames:
                full = Path(dirpath) / filename
                if full not in wanted:
                    full.unlink()
        return str(target)

    def verify(self, root: str | os.PathLike | None = None) -> None:
        """Check that ``root`` holds exactly this artifact's files, byte for byte; ValueError names any difference."""
        target = Path(root) if root is not None else self._default_root()
        problems = []
        wanted = {}
        destination = _Destinations(target)
        for entry in self.manifest:
            dest = destination(entry.path)
            wanted[dest] = entry
            if not dest.is_file():
                problems.append(f"missing {entry.path!r}")
                continue
            expected = entry.digest
            if entry.ref is not None:
                # Re-hash what a content MD5 was recorded for (file://, gs:// md5Hash, weak-ETag http);
                # an S3 or HTTP ETag is opaque (multipart, SSE-KMS), so only the size can be checked there.
                expected = references.content_md5(entry.ref, entry.digest, entry.extra)
                if expected is None:
                    if entry.size is not None and not references.unchecked(entry.ref, entry.digest):
                        actual_size = dest.stat().st_size
                        if actual_size != entry.size:
                            problems.append(f"{entry.path!r} has {actual_size} bytes, expected {entry.size}")
                    continue
            actual = hex_to_b64(hash_file(dest)[0])
            if actual != expected:
                problems.append(f"{entry.path!r} has digest {actual}, expected {expected}")
        for dirpath, _dirs, filenames in os.walk(target):
            for filename in filenames:
                full = Path(dirpath) / filename
                if full not in wanted:
                    problems.append(f"unexpected file {full.relative_to(target).as_posix()!r}")
        if problems:
            raise ValueError(f"Verification of {self.name!r} in {str(target)!r} failed: " + "; ".join(problems))

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
        # undo aliases or tags others added since, nor move 'latest' back (it always names the newest).
        added = [a for a in aliases if a not in record.aliases]
        if "latest" in added:
            raise ValueError(
                f"'latest' always names the newest version of {record.collection!r}; it cannot be added to "
                f"v{record.index}. Use a custom alias such as 'best'."
            )
        try:
            fresh = self._ws.store.update_version(
                record.pk,
                record.collection_id,
                description=self._description,
                metadata=validate_metadata(self._metadata),
                add_aliases=added,
                remove_aliases=[a for a in record.aliases if a not in aliases and a != "latest"],
                add_tags=[t for t in tags if t not in record.tags],
                remove_tags=[t for t in record.tags if t not in tags],
                run_pk=_acting_run_pk(self._ws),
            )
        except LookupError:
            raise ArtifactNotFoundError(
                f"Artifact {self.qualified_name!r} no longer exists (deleted?); nothing was saved."
            ) from None
        manifest, loaded = self._manifest, self._manifest_loaded
        self._adopt(fresh)
        self._manifest, self._manifest_loaded = manifest, loaded

    def wait(self, timeout: int | None = None) -> "Artifact":
        """Logging is synchronous here; kept for W&B compatibility."""
        return self

    def link(self, target_path: str, aliases: Sequence[str] | None = None) -> "Artifact":
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
        return _link(
            self._ws, record, target_path, aliases, record.entity, record.project, run_pk=_acting_run_pk(self._ws)
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


def _acting_run_pk(ws: "Workspace") -> int | None:
    """The active run, if it writes to ``ws``: the event feed names it as the run that made a change done
    through an Artifact's own methods (save, link, unlink, delete), as run.link_artifact does."""
    from wandb_dagster.sdk import run as run_mod

    active = run_mod.current_run()
    if active is None or active._ws.url != ws.url:
        return None
    return active._pk


def _link(
    ws: "Workspace",
    record: "VersionRecord",
    target_path: str,
    aliases: Sequence[str] | None,
    default_entity: str,
    default_project: str,
    run_pk: int | None = None,
) -> "Artifact":
    """Link ``record`` into ``target_path`` (see :meth:`Artifact.link`); returns the linked view.
    ``run_pk``: the run doing it (named as the acting run in the event feed)."""
    entity, project, collection, path_alias = parse_link_target(target_path, default_entity, default_project)
    alias_list = validate_aliases(list(aliases or []) + ([path_alias] if path_alias else []))
    if "latest" not in alias_list:
        alias_list.append("latest")
    try:
        result = ws.store.link_version(record.pk, entity, project, collection, aliases=alias_list, run_pk=run_pk)
    except LookupError:
        raise ArtifactNotFoundError(
            f"Artifact {record.entity}/{record.project}/{record.collection}:v{record.index} no longer exists "
            "(deleted?); link an existing version."
        ) from None
    return Artifact._from_record(ws, result.version)


def _unreadable(error: OSError) -> None:
    # os.walk skips folders it cannot list; a silently missing subtree would be lost data, so say so.
    raise ValueError(
        f"Cannot read folder {error.filename!r} ({error.strerror}); fix its permissions or remove it, so that "
        "no files are silently left out."
    ) from error

