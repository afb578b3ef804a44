"""Downloading and verifying a committed artifact's entries into a local folder.

Stored entries come from the workspace's blob store through the download cache (every blob is verified
before it is handed out, and a cache entry is trusted only while its stat, ctime included, matches the
record made when it was verified); references are fetched from where they point. Files already in place
with the right content are not fetched again: the stat cache vouches for them by (inode, size, mtime,
ctime), which an edit cannot restore.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from wandb_dagster.sdk.manifest import ManifestEntry
from wandb_dagster.sdk.names import validate_entry_path
from wandb_dagster.sdk.staging import IO_WORKERS
from wandb_dagster.storage import references
from wandb_dagster.storage.blobs import POOL_MIN_SIZE
from wandb_dagster.storage.errors import CorruptBlobError
from wandb_dagster.storage.hashing import b64_to_hex, hash_file, hex_to_b64

if TYPE_CHECKING:
    from wandb_dagster.sdk.workspace import Workspace

# (entry, where it goes, its blob's hex digest)
_Fetch = tuple[ManifestEntry, Path, str]


class Destinations:
    """Maps entry paths to files under a root, refusing anything that would land outside it (invariant 6).

    Entry paths are validated (no '..', no absolute paths); a symlinked folder inside the root could still
    point elsewhere, so each parent folder is resolved, once per folder rather than once per file.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._resolved_root = root.resolve()
        root_str = os.fspath(root)
        self._prefix = root_str if root_str.endswith("/") else root_str + "/"
        self._checked: set[str] = set()

    def __call__(self, entry_path: str) -> Path:
        return Path(self.path_str(entry_path))

    def path_str(self, entry_path: str) -> str:
        """:meth:`__call__` as a string (no pathlib parsing per file)."""
        validate_entry_path(entry_path)
        dest = self._prefix + entry_path
        folder = entry_path.rpartition("/")[0]
        if folder and folder not in self._checked:
            parent = Path(dest).parent.resolve()
            if parent != self._resolved_root and self._resolved_root not in parent.parents:
                raise ValueError(
                    f"Artifact entry {entry_path!r} would be written to {parent}, outside the download root "
                    f"{self._resolved_root} (a symlink inside the root points elsewhere); remove it or pick "
                    "another root."
                )
            self._checked.add(folder)
        return dest


def download_entries(
    ws: Workspace,
    entries: list[ManifestEntry],
    root: Path,
    skip_cache: bool,
    allow_missing_references: bool,
    version: str | None = None,
) -> None:
    """Place ``entries`` under ``root``: stored files from ``ws``'s blob store, references from their URIs.
    ``skip_cache`` (or an entry's own ``skip_cache``) bypasses the download cache. A corrupt blob is refused
    naming the entries that hold it and ``version`` (their artifact's qualified name)."""
    try:
        _download_entries(ws, entries, root, skip_cache, allow_missing_references)
    except CorruptBlobError as exc:
        # The blob store knows only the digest; here is where its entries are known.
        paths = tuple(e.path for e in entries if e.ref is None and b64_to_hex(e.digest) == exc.expected_hex)
        raise exc.for_entries(paths, version) from None


def _download_entries(
    ws: Workspace, entries: list[ManifestEntry], root: Path, skip_cache: bool, allow_missing_references: bool
) -> None:
    destination = Destinations(root)
    stored = [(entry, destination.path_str(entry.path)) for entry in entries if entry.ref is None]
    todo = _not_in_place(ws, stored)
    if todo and ws.blobs.batched_downloads:
        todo = _prefetch_batched(ws, todo, skip_cache)
    elif todo:
        # One query of the cache's record for every entry (instead of one per entry): the per-entry fetch
        # below then finds each checked entry at the cost of a stat.
        ws.cache.lookup_many([(h, e.size) for e, _, h in todo if not _uncached(e, skip_cache)])
    if todo:
        # The cache records the entries it verifies in one transaction at the end, not one per file.
        # From a local folder, small files are placed on this thread: their copy is a few syscalls and the
        # pool's hand-offs under the GIL cost more than they overlap (as for put_files, storage/blobs.py);
        # larger files, and every file from a bucket (latency), go to the pool.
        inline = [i for i in todo if ws.blobs.is_local and (i[0].size or 0) < POOL_MIN_SIZE]
        pooled = [i for i in todo if not (ws.blobs.is_local and (i[0].size or 0) < POOL_MIN_SIZE)]
        with ws.cache.batched_records():
            done = [_fetch_stored(ws, item, skip_cache) for item in inline]
            if pooled:
                with ThreadPoolExecutor(IO_WORKERS) as pool:
                    done += pool.map(lambda item: _fetch_stored(ws, item, skip_cache), pooled)
        ws.statcache.record_many(done)
        ws.cache.trim()  # entries pinned during the downloads may have kept the cache over its bound
    refs = [(e, destination(e.path)) for e in entries if e.ref is not None]
    _fetch_references(ws, refs, skip_cache, allow_missing_references)


def _not_in_place(ws: Workspace, stored: list[tuple[ManifestEntry, str]]) -> list[_Fetch]:
    """The stored entries whose destination does not hold their content already (per the stat cache).
    Destinations are strings here (a Path only for those still to fetch): with 10,000 files in place,
    pathlib's parsing was a third of this check."""
    dest_stats: list[os.stat_result | None] = []
    for _, dest in stored:
        try:
            dest_stats.append(os.stat(dest))
        except FileNotFoundError:
            dest_stats.append(None)
    present = iter(ws.statcache.lookup_many([s for s in dest_stats if s is not None]))
    todo = []
    for (entry, dest), st in zip(stored, dest_stats, strict=True):
        hexdigest = b64_to_hex(entry.digest)
        if st is not None and next(present) == hexdigest:
            continue
        todo.append((entry, Path(dest), hexdigest))
    return todo


def _uncached(entry: ManifestEntry, skip_cache: bool) -> bool:
    return skip_cache or entry.skip_cache


def _prefetch_batched(ws: Workspace, todo: list[_Fetch], skip_cache: bool) -> list[_Fetch]:
    """Object stores: fill the cache in one batched, concurrent transfer (with progress), so the per-entry
    fetch after it is a cache hit (skipped when the batch would not fit the cache); entries that bypass the
    cache are fetched straight to their destination here. Returns the entries still to place."""
    cached = [(h, e.size) for e, _, h in todo if not _uncached(e, skip_cache)]
    if cached and sum(s or 0 for _, s in cached) <= ws.cache.max_bytes // 2:
        ws.cache.fetch_many(ws.blobs, cached)
    uncached = [(h, e.size, d) for e, d, h in todo if _uncached(e, skip_cache)]
    if not uncached:
        return todo
    ws.blobs.get_files(uncached)
    ws.statcache.record_many([(os.stat(d), h) for h, _, d in uncached])
    return [(e, d, h) for e, d, h in todo if not _uncached(e, skip_cache)]


def _fetch_stored(ws: Workspace, item: _Fetch, skip_cache: bool) -> tuple[os.stat_result, str]:
    entry, dest, hexdigest = item
    dest.parent.mkdir(parents=True, exist_ok=True)
    if _uncached(entry, skip_cache):
        ws.blobs.get_file(hexdigest, dest)
    else:
        _place_from_cache(ws, hexdigest, entry.size, dest)
    return os.stat(dest), hexdigest


def _place_from_cache(ws: Workspace, hexdigest: str, size: int | None, dest: Path) -> None:
    with ws.cache.pinned(hexdigest):  # our other download threads will not evict it meanwhile
        for attempt in range(3):
            ws.cache.fetch(ws.blobs, hexdigest, size)  # a verified cache hit costs one stat
            try:
                ws.cache.place(hexdigest, dest)
                return
            except FileNotFoundError:  # evicted by another process between fetch and place
                if attempt == 2:
                    raise


def _fetch_references(
    ws: Workspace, refs: list[tuple[ManifestEntry, Path]], skip_cache: bool, allow_missing: bool
) -> None:
    def fetch(item: tuple[ManifestEntry, Path]) -> None:
        entry, dest = item
        assert entry.ref is not None
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Remote references are cached by (ref, checksum, versionID): a second download asks no server.
        cache = None if _uncached(entry, skip_cache) else ws.cache
        try:
            references.download(
                entry.ref, entry.digest, entry.size, entry.extra, dest, entry_path=entry.path, cache=cache
            )
        except FileNotFoundError:  # the only error allow_missing_references tolerates (docs/behaviour.md section 3)
            if not allow_missing:
                raise

    if len(refs) == 1:
        fetch(refs[0])
    elif refs:
        with ThreadPoolExecutor(IO_WORKERS) as pool:
            list(pool.map(fetch, refs))  # re-raises the first failure, in entry order


def remove_other_files(target: Path, entries: Iterable[ManifestEntry]) -> None:
    """Delete every file under ``target`` that is not one of ``entries`` (``checkout``)."""
    wanted = {target / e.path for e in entries}
    for full in _files_under(target):
        if full not in wanted:
            full.unlink()


def _files_under(target: Path) -> Iterable[Path]:
    for dirpath, _dirs, filenames in os.walk(target):
        for filename in filenames:
            yield Path(dirpath) / filename


def verify_entries(entries: Iterable[ManifestEntry], target: Path) -> list[str]:
    """What differs between ``target`` and ``entries``: missing files, other content, files that are not
    entries. Empty when ``target`` holds exactly the entries."""
    problems = []
    wanted = set()
    destination = Destinations(target)
    for entry in entries:
        dest = destination(entry.path)
        wanted.add(dest)
        problem = _check_entry(entry, dest)
        if problem is not None:
            problems.append(problem)
    for full in _files_under(target):
        if full not in wanted:
            problems.append(f"unexpected file {full.relative_to(target).as_posix()!r}")
    return problems


def _check_entry(entry: ManifestEntry, dest: Path) -> str | None:
    if not dest.is_file():
        return f"missing {entry.path!r}"
    expected: str | None = entry.digest
    if entry.ref is not None:
        # Re-hash what a content MD5 was recorded for (file://, gs:// md5Hash, weak-ETag http); an S3 or HTTP
        # ETag is opaque (multipart, SSE-KMS), so only the size can be checked there.
        expected = references.content_md5(entry.ref, entry.digest, entry.extra)
        if expected is None:
            return _check_size(entry, dest)
    actual = hex_to_b64(hash_file(dest)[0])
    if actual != expected:
        return f"{entry.path!r} has digest {actual}, expected {expected}"
    return None


def _check_size(entry: ManifestEntry, dest: Path) -> str | None:
    assert entry.ref is not None
    if entry.size is None or references.unchecked(entry.ref, entry.digest):
        return None
    actual_size = dest.stat().st_size
    if actual_size != entry.size:
        return f"{entry.path!r} has {actual_size} bytes, expected {entry.size}"
    return None
