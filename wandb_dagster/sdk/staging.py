"""Adding local files to a draft artifact: find them, hash them (or copy them into the blob store while
hashing), and remember what was learnt in the stat cache.

``policy="mutable"`` copies the bytes into the workspace's blob store at once, so later edits of the local
file cannot change what is logged; ``"immutable"`` only hashes now and copies at commit, which checks the
file still has that digest.
"""

from __future__ import annotations

import os
import stat as stat_mod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wandb_dagster.sdk.manifest import ManifestEntry
from wandb_dagster.sdk.names import validate_entry_path
from wandb_dagster.storage.hashing import hash_file, hex_to_b64

if TYPE_CHECKING:
    from wandb_dagster.sdk.workspace import Workspace

POLICIES = ("mutable", "immutable")
IO_WORKERS = 8

# (local path, entry path, its stat when found)
LocalFile = tuple[str, str, os.stat_result]


@dataclass(frozen=True)
class Staged:
    """What adding local files learnt: each file's hex digest and the size of the bytes it was computed
    from (in the order given), and the digests now known to be in the workspace's blob store."""

    digests: list[str]
    sizes: list[int]
    present: set[str]


def check_policy(policy: str) -> None:
    if policy not in POLICIES:
        raise ValueError(f"Invalid policy {policy!r}: use 'mutable' or 'immutable'.")


def walk_dir(root: str, prefix: str) -> list[LocalFile]:
    """Every regular file under ``root`` as ``prefix + relpath``, following symlinked folders (each folder
    once, so a symlink cycle ends); dangling symlinks are skipped, an unreadable folder is an error."""
    files: list[LocalFile] = []
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
    return files


def _unreadable(error: OSError) -> None:
    # os.walk skips folders it cannot list; a silently missing subtree would be lost data, so say so.
    raise ValueError(
        f"Cannot read folder {error.filename!r} ({error.strerror}); fix its permissions or remove it, so that "
        "no files are silently left out."
    ) from error


def stage(ws: Workspace, files: list[LocalFile], policy: str, started_ns: int | None) -> Staged:
    """Hash ``files`` (copying them into ``ws``'s blob store for ``mutable``), asking the stat cache first.
    ``started_ns``: when the caller began stat-ing the files (the stat cache's racy-window reference)."""
    stats = [st for _, _, st in files]
    known = ws.statcache.lookup_many(stats)
    if policy == "mutable":
        digests, sizes, present = _copy_into_store(ws, files, known)
    else:
        digests, sizes = _hash_unknown(files, known)
        present = set()
    # A file whose size changed while it was read must not be vouched for by its old stat.
    fresh = [(stats[i], digests[i]) for i, d in enumerate(known) if d is None and sizes[i] == stats[i].st_size]
    if fresh:
        ws.statcache.record_many(fresh, since_ns=started_ns)
    return Staged(digests, sizes, present)


def _copy_into_store(
    ws: Workspace, files: list[LocalFile], known: list[str | None]
) -> tuple[list[str], list[int], set[str]]:
    # Copy into the blob store now (hashing while copying); a blob already present whose source is unchanged
    # according to the stat cache costs nothing more than the stat. Sizes make a blob truncated by a crash
    # before sync() count as missing, so it is rewritten.
    # The size of the bytes the digest was computed from: a file that changed between the stat and the read
    # is recorded as read (digest and size agree), not with the size it had before.
    sizes = [st.st_size for _, _, st in files]
    known_sizes = {d: size for d, size in zip(known, sizes, strict=True) if d}
    present = ws.blobs.exists_many(set(known_sizes), sizes=known_sizes)
    digests: list[str] = [d or "" for d in known]  # every unknown one is filled in below
    todo = [i for i, d in enumerate(known) if d is None or d not in present]
    if todo:
        results = ws.blobs.put_files([files[i][0] for i in todo], expected=[known[i] for i in todo])
        for i, (hexdigest, size) in zip(todo, results, strict=True):
            digests[i], sizes[i] = hexdigest, size
    return digests, sizes, set(digests)


def claim_stored(ws: Workspace, token: str, files: list[LocalFile], staged: Staged) -> set[str]:
    """Claim the blobs just stored (or found stored) for the draft ``token``, so that a gc leaves them alone
    until it commits; returns those claimed (docs/architecture.md, "Garbage collection"). A blob a gc deleted
    between our existence check and the claim is stored again from its file. A database held locked past
    the lock timeout skips the claim (nothing claimed): the commit claims every blob and checks it is stored,
    and reports the busy database itself."""
    from wandb_dagster.store import DatabaseBusyError

    try:
        deleted = ws.store.claim_blobs(token, staged.present, durable=False)
    except DatabaseBusyError:
        return set()
    if deleted:
        todo = [i for i, d in enumerate(staged.digests) if d in deleted]
        first = {staged.digests[i]: files[i][0] for i in reversed(todo)}
        ws.blobs.put_files(list(first.values()), expected=list(first))
    return set(staged.present)


def _hash_unknown(files: list[LocalFile], known: list[str | None]) -> tuple[list[str], list[int]]:
    sizes = [st.st_size for _, _, st in files]
    digests: list[str] = [d or "" for d in known]  # every unknown one is filled in below
    todo = [i for i, d in enumerate(known) if d is None]
    if todo:
        with ThreadPoolExecutor(IO_WORKERS) as pool:
            hashed = list(pool.map(lambda i: hash_file(files[i][0]), todo))
        for i, (hexdigest, size) in zip(todo, hashed, strict=True):
            digests[i], sizes[i] = hexdigest, size
    return digests, sizes


def tmp_entry_name(entry_name: str, hexdigest: str) -> str:
    """W&B renames temporary files (``add_file(is_tmp=True)``) deterministically from their digest to avoid
    collisions: the base name's stem becomes the digest's first 20 characters."""
    folder, _, base = entry_name.rpartition("/")
    parts = base.split(".")
    parts[0] = hexdigest[:20]
    return (folder + "/" if folder else "") + ".".join(parts)


def entries_for(
    files: list[LocalFile], staged: Staged, policy: str, skip_cache: bool, is_tmp: bool
) -> list[ManifestEntry]:
    """The manifest entries for staged ``files``; an ``immutable`` entry keeps its source path for commit."""
    entries = []
    for (path, entry_name, _st), hexdigest, size in zip(files, staged.digests, staged.sizes, strict=True):
        entries.append(
            ManifestEntry(
                path=tmp_entry_name(entry_name, hexdigest) if is_tmp else entry_name,
                digest=hex_to_b64(hexdigest),
                size=size,
                local_path=path if policy == "immutable" else None,
                skip_cache=skip_cache,
            )
        )
    return entries
