"""Download cache: verified copies of blobs under ``{dir}/md5/{hex[:2]}/{hex[2:]}``, bounded by LRU eviction.

Example::

    >>> cache = DownloadCache(Path("~/.cache/wandb-dagster").expanduser(), max_bytes=10 * 1024**3)  # doctest: +SKIP
    >>> cache.fetch(blobstore, hexdigest, size)          # verified on the way in       # doctest: +SKIP
    >>> cache.place(hexdigest, Path("artifacts/model/model.pt"))  # reflink, hard link or copy  # doctest: +SKIP

How an entry proves it is unmodified
------------------------------------
An entry's MD5 is checked when it enters the cache. Re-hashing on every lookup would make cached downloads
as slow as uncached ones, so a lookup trusts an entry by a *tamper-evident record* instead: when an entry
was verified, its (inode, size, mtime_ns, ctime_ns) went into the stat cache (``statcache.db`` in the cache
folder, shared by the processes of a machine) next to its MD5, and a lookup accepts the entry only when its
stat still matches that record exactly. Any write to the file moves its ctime, and no user can set a ctime
back (``os.utime`` sets it to now), so an entry corrupted in place with its timestamps restored does not
match: it is hashed again, kept if its bytes are still right (the record is renewed), dropped if not. The
unchanged case costs a stat plus, per batch of lookups, one query of the record (each process remembers
what it has looked up, so placing the same entry again costs only the stat).

Our own changes to an entry's inode move its ctime too: the LRU touch (``utime``) and hard-link placement.
Right after them the entry is stat'ed again and the record renewed, so they cost no re-hash. (An edit
landing in the microseconds between our check and our touch would be renewed with it; so would one within
the filesystem's timestamp tick after verification. Both need a writer racing this process on purpose.)

Entries also carry a *sentinel* mtime derived from the digest (see :func:`sentinel_mtime_ns`), a cheap
first filter that needs no record, and are read-only (0o444) so that an edit through a hard-linked download
fails for ordinary users. :meth:`DownloadCache.place` hard-links only when asked to (then a downloaded file
*is* the cache entry, one inode, showing the sentinel date of around 2000 as its mtime); reflinked and
copied downloads are ordinary new files.

The least recently used entries go first when the cache outgrows ``max_bytes``; use is tracked in the
entry's atime, which lookups set explicitly (so ``noatime`` mounts do not matter) at most once a minute.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

from .errors import ContentChangedError, CorruptBlobError
from .hashing import check_hex, hash_file
from .statcache import StatCache
from .verified_write import file_chunks, temp_beside, unique_suffix, unlink_quietly, write_verified

if TYPE_CHECKING:
    from .backend import BlobBackend

FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int); share the extents of another file (reflink)

SENTINEL_BASE_S = 946_684_800  # 2000-01-01T00:00:00Z: obviously not a real modification time
_TOUCH_EVERY_NS = 60 * 1_000_000_000  # refreshing atime more often buys no useful LRU precision
_STALE_TMP_S = 3600
_NOT_SUPPORTED = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EPERM}
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_MEMO_MAX = 200_000  # entries a process remembers as checked (about 30 MB); beyond, it asks the record again

PlaceMode = Literal["reflink", "hardlink", "copy"]


def sentinel_mtime_ns(hexdigest: str) -> int:
    """The mtime a verified entry carries: 2000-01-01 + 2 s x digest[:6] + digest[6:13] nanoseconds.

    Whole seconds are even so that FAT's two-second clock keeps them; the nanoseconds tell entries apart
    where the filesystem keeps them (see :func:`_sentinel_ok` for filesystems that round).
    """
    seconds = SENTINEL_BASE_S + 2 * int(hexdigest[:6], 16)
    return seconds * 1_000_000_000 + int(hexdigest[6:13], 16)  # 16**7 < 10**9: always a valid fraction


def _sentinel_ok(mtime_ns: int, hexdigest: str) -> bool:
    sentinel = sentinel_mtime_ns(hexdigest)
    # Filesystems keep ns (ext4, xfs, btrfs), us (some FUSE/NFS) or whole seconds; accept the rounded forms.
    return mtime_ns in (sentinel, sentinel - sentinel % 1_000, sentinel - sentinel % 1_000_000_000)


def _key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


_LOW_WATER = 90  # percent of max_bytes that eviction frees down to


class DownloadCache:
    """Content-addressed cache of verified blobs, shared by processes and bounded to ``max_bytes``.

    Writes are atomic (temp file in ``{dir}/tmp`` + rename), so two processes filling the same entry both
    end up with a complete, verified file. The byte bound is kept by this process's own writes (it
    evicts when its running total passes the bound) and by :meth:`evict`, which rescans the directory.

    Example::

        >>> cache = DownloadCache(Path("/tmp/dl-cache"), max_bytes=1 << 30)   # doctest: +SKIP
        >>> path = cache.lookup(hexdigest, size) or cache.fetch(blobstore, hexdigest, size)  # doctest: +SKIP
        >>> cache.place(hexdigest, Path("out/data.csv"))                      # doctest: +SKIP
        'copy'
    """

    def __init__(
        self, directory: Path | str, max_bytes: int, hardlinks: bool = False, record: StatCache | None = None
    ) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes={max_bytes} is negative; pass the cache bound in bytes (0 keeps nothing)")
        self.directory = Path(os.path.abspath(os.path.expanduser(directory)))
        # The tamper-evident record of verified entries (see the module docstring); the workspace passes the
        # stat cache it keeps in the same folder, so one SQLite file serves both.
        self._record = record if record is not None else StatCache(self.directory / "statcache.db")
        # Entry path -> the stat key it was last checked with, in this process: a repeated lookup costs a stat.
        self._checked: dict[str, tuple[int, int, int, int]] = {}
        self.max_bytes = int(max_bytes)
        self._entries = str(self.directory / "md5")
        self._tmpdir = str(self.directory / "tmp")
        self._made: set[str] = set()  # fan-out directories known to exist
        self._lock = threading.Lock()
        self._total: int | None = None  # bytes in the cache as of our last scan plus our own writes since
        # Per destination device: placement modes that failed for a reason that will not change.
        self._no_reflink: set[int] = set()
        self._no_hardlink: set[int] = set()
        # Hard-linked downloads are read-only and carry the sentinel mtime; W&B users expect ordinary files,
        # so linking is opt-in (WANDB_DAGSTER_DOWNLOAD_HARDLINKS=1) for those who want instant re-downloads.
        self.hardlinks = hardlinks
        # Entries this process is between fetch() and place() on: eviction by our own threads skips them,
        # so an artifact larger than the cache still downloads (other processes can still evict; callers
        # retry on FileNotFoundError).
        self._pinned: collections.Counter[str] = collections.Counter()
        # Entries verified inside a batched_records() block, recorded when it ends.
        self._deferred: list[tuple[os.stat_result, str]] | None = None

    def __repr__(self) -> str:
        return f"DownloadCache({str(self.directory)!r}, max_bytes={self.max_bytes})"

    def path_for(self, hexdigest: str) -> Path:
        return Path(self._entry(hexdigest))

    def _entry(self, hexdigest: str) -> str:
        # Strings inside, Path only at the API: pathlib parsing was a third of a cached fetch's time.
        check_hex(hexdigest)
        return f"{self._entries}/{hexdigest[:2]}/{hexdigest[2:]}"

    # -- lookup --------------------------------------------------------------------------------------------

    def lookup(self, hexdigest: str, size: int | None) -> Path | None:
        """The entry's path if it is present and unmodified (a stat, and the record when this process has
        not checked it yet; see the module docstring); a modified entry is dropped."""
        found = self.lookup_many([(hexdigest, size)])
        return Path(found[hexdigest]) if hexdigest in found else None

    def lookup_many(self, items: list[tuple[str, int | None]]) -> dict[str, str]:
        """{hex: entry path} for those (hex, size) entries that are present and unmodified: a stat each and
        one query of the record for all; an entry the record does not vouch for is hashed again (kept and
        recorded if its bytes are right, dropped if not)."""
        stats: dict[str, tuple[str, os.stat_result]] = {}
        for hexdigest, size in items:
            path = self._entry(hexdigest)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            if (size is not None and st.st_size != size) or not _sentinel_ok(st.st_mtime_ns, hexdigest):
                self._drop(path, st)
            else:
                stats[hexdigest] = (path, st)
        unknown = [h for h, (path, st) in stats.items() if self._checked.get(path) != _key(st)]
        if unknown:
            recorded = self._record.lookup_many([stats[h][1] for h in unknown])
            renew = []
            for hexdigest, vouched in zip(unknown, recorded, strict=True):
                path, st = stats[hexdigest]
                if vouched == hexdigest or self._rehash_ok(path, st, hexdigest):
                    self._remember(path, st)
                    if vouched != hexdigest:
                        renew.append((st, hexdigest))
                else:
                    self._drop(path, st)
                    del stats[hexdigest]
            self._renew(renew)
        self._renew([t for h, (path, st) in stats.items() if (t := self._touch(path, st, h)) is not None])
        return {h: path for h, (path, _) in stats.items()}

    @staticmethod
    def _rehash_ok(path: str, st: os.stat_result, hexdigest: str) -> bool:
        # The stat was taken before reading: a write while hashing moves the ctime, so a stale pair never
        # matches the next lookup.
        try:
            return hash_file(path) == (hexdigest, st.st_size)
        except FileNotFoundError:
            return False

    def _verified(self, path: str, st: os.stat_result, hexdigest: str) -> bool:
        """Whether the entry at ``path`` (stat ``st``) is vouched for; asks the record (or hashes) when this
        process has not checked it with this very stat."""
        if not _sentinel_ok(st.st_mtime_ns, hexdigest):
            return False
        if self._checked.get(path) == _key(st):
            return True
        return hexdigest in self.lookup_many([(hexdigest, st.st_size)])

    def _remember(self, path: str, st: os.stat_result) -> None:
        if len(self._checked) >= _MEMO_MAX:
            self._checked.clear()  # crude but bounded; what is forgotten is asked of the record again
        self._checked[path] = _key(st)

    def _renew(self, checked: list[tuple[os.stat_result, str]]) -> None:
        """Record entries (stat -> hex) as verified, in one transaction (or with the others of a
        :meth:`batched_records` block)."""
        if not checked:
            return
        with self._lock:
            if self._deferred is not None:
                self._deferred.extend(checked)
                return
        self._record.record_many(checked)

    @contextlib.contextmanager
    def batched_records(self) -> Iterator[None]:
        """Inside the block, entries verified by any thread are recorded together when it ends, in one
        transaction instead of one each (a 10,000-file download wrote 10,000 SQLite transactions).

        Safe because the record only saves a re-hash: this process trusts what it verified itself (its
        in-memory memo) meanwhile, and an entry left unrecorded by a crash is hashed again at its next
        lookup, and recorded then. Blocks may nest (the outermost writes)."""
        with self._lock:
            outer = self._deferred is None
            if outer:
                self._deferred = []
        try:
            yield
        finally:
            if outer:
                with self._lock:
                    pending, self._deferred = self._deferred or [], None
                self._renew(pending)

    def _restat_after_own_change(self, path: str, hexdigest: str) -> tuple[os.stat_result, str] | None:
        """After our own utime or link moved an entry's ctime: remember and return its new stat, to record."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        if not _sentinel_ok(st.st_mtime_ns, hexdigest):
            return None
        self._remember(path, st)
        return st, hexdigest

    def _touch(self, path: str, st: os.stat_result, hexdigest: str) -> tuple[os.stat_result, str] | None:
        now = time.time_ns()
        if now - st.st_atime_ns < _TOUCH_EVERY_NS:
            return None
        try:
            os.utime(path, ns=(now, st.st_mtime_ns))  # atime only: the mtime is the verification sentinel
        except OSError:
            return None  # a shared cache owned by another user: LRU order gets less precise, nothing breaks
        return self._restat_after_own_change(path, hexdigest)

    def _drop(self, path: str, seen: os.stat_result) -> None:
        """Remove a modified entry without ever removing a good one that replaced it meanwhile.

        A plain unlink could delete a fresh entry another process renamed into place after our stat; so
        move the name aside atomically, and put it back if it is not the inode we judged.
        """
        self._checked.pop(path, None)
        aside = self._tmp_name("drop")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return  # someone else dropped or evicted it already
        try:
            if os.stat(aside).st_ino == seen.st_ino:
                os.unlink(aside)
            else:
                os.replace(aside, path)
        except FileNotFoundError:
            pass

    # -- filling -------------------------------------------------------------------------------------------

    def fetch(self, blobstore: BlobBackend, hexdigest: str, size: int | None = None) -> Path:
        """The entry for ``hexdigest``, copied from ``blobstore`` and verified if it is not cached yet.

        A blob whose bytes do not match -> CorruptBlobError (nothing enters the cache).
        """
        cached = self.lookup(hexdigest, size)
        if cached is not None:
            return cached

        def corrupt(actual: str) -> Exception:
            return CorruptBlobError(hexdigest, actual, blobstore.blob_path(hexdigest))

        if blobstore.batched_downloads:
            # An object store: one streamed GET, verified while writing (open() would add a HEAD and
            # ranged reads).
            self.fetch_many(blobstore, [(hexdigest, size)])
            cached = self.lookup(hexdigest, size)
            if cached is not None:
                return cached
        with blobstore.open(hexdigest) as src:
            return self._ingest(src, hexdigest, size, corrupt)

    def fetch_many(self, blobstore: BlobBackend, items: list[tuple[str, int | None]]) -> None:
        """Make sure each (hex, size) blob has an entry: the missing ones come in one batched, concurrent
        transfer where the store has one (``batched_downloads``: S3/GCS), else one by one through :meth:`fetch`.

        Each blob is verified on the way in (CorruptBlobError otherwise). Entries may be evicted again by
        the bound before they are used: callers still go through fetch()/place() per entry.
        """
        wanted = dict(items)
        present = self.lookup_many(list(wanted.items()))
        missing = [(h, s) for h, s in wanted.items() if h not in present]
        if not missing:
            return
        if not blobstore.batched_downloads:
            for h, s in missing:
                self.fetch(blobstore, h, s)
            return
        temps = [(h, s, self._tmp_name("fill")) for h, s in missing]
        filled: list[tuple[os.stat_result, str] | None] = []
        os.makedirs(self._tmpdir, exist_ok=True)
        try:
            blobstore.get_files(temps)  # each temp appears only once its bytes match the digest
            for h, s, tmp in temps:
                size = os.stat(tmp).st_size
                if s is not None and size != s:
                    raise ValueError(
                        f"blob {h} holds {size} bytes but the manifest entry says {s}: the manifest and the "
                        "stored blob disagree; nothing was cached. Check the workspace's blob storage for damage."
                    )
                os.chmod(tmp, 0o444)  # read-only entries and sentinel mtime: see the module docstring
                os.utime(tmp, ns=(time.time_ns(), sentinel_mtime_ns(h)))
                final = self._entry(h)
                self._rename_in(tmp, final)
                filled.append(self._restat_after_own_change(final, h))
                self._account(size, keep=final)
        finally:
            self._renew([f for f in filled if f is not None])
            for _, _, tmp in temps:
                unlink_quietly(tmp)

    def add_file(self, local_path: str | os.PathLike[str], hexdigest: str) -> Path:
        """Copy a local file into the cache (e.g. one just uploaded), verifying it on the way.

        The file is copied, never linked: the caller keeps a file it may change. Content that does not
        hash to ``hexdigest`` -> ContentChangedError.
        """
        check_hex(hexdigest)

        def changed(actual: str) -> Exception:
            return ContentChangedError(local_path, hexdigest, actual)

        with open(local_path, "rb", buffering=0) as src:
            return self._ingest(src, hexdigest, None, changed)

    def _ingest(
        self, src: BinaryIO, hexdigest: str, size: int | None, mismatch: Callable[[str], Exception]
    ) -> Path:
        """Copy ``src`` into a temp file while hashing it; only verified bytes get the entry's name."""
        final = self._entry(hexdigest)

        def check(actual: str, written: int) -> None:
            if actual != hexdigest:
                raise mismatch(actual)
            if size is not None and written != size:
                raise ValueError(
                    f"blob {hexdigest} holds {written} bytes but the manifest entry says {size}: the "
                    "manifest and the stored blob disagree; nothing was cached. Check the workspace's blob "
                    "storage for damage (the digest matched, so the manifest's size is the suspect)."
                )

        def seal(fd: int) -> None:
            # The sentinel goes on last: after the final write, once the bytes are known good.
            os.utime(fd, ns=(time.time_ns(), sentinel_mtime_ns(hexdigest)))

        # Read-only entries (0o444) and the sentinel mtime: see the module docstring.
        _, written = write_verified(
            file_chunks(src, size), final, check, tmp=self._tmp_name("fill"), mode=0o444, seal=seal,
            place=self._rename_in,
        )
        self._renew([f for f in [self._restat_after_own_change(final, hexdigest)] if f is not None])
        self._account(written, keep=final)
        return Path(final)

    def _tmp_name(self, kind: str) -> str:
        return f"{self._tmpdir}/{kind}-{unique_suffix()}"

    def _rename_in(self, tmp: str, final: str) -> None:
        # Another process filling the same entry renames its own verified copy; either one winning is fine.
        parent = os.path.dirname(final)
        if parent not in self._made:
            os.makedirs(parent, exist_ok=True)
            self._made.add(parent)
        try:
            os.replace(tmp, final)
        except FileNotFoundError:
            self._made.discard(parent)
            os.makedirs(parent, exist_ok=True)
            os.replace(tmp, final)

    # -- placing -------------------------------------------------------------------------------------------

    def place(self, hexdigest: str, dest: Path | str) -> PlaceMode:
        """Put the cached entry at ``dest`` atomically; returns how: "reflink", "hardlink" or "copy".

        A reflink shares blocks copy-on-write (btrfs, xfs): a safe, instant, independent file. A hard link
        shares the inode: instant, but the file is read-only and edits in place would reach the cache
        (see the module docstring). A copy is the fallback across filesystems. A missing or modified entry
        -> FileNotFoundError; fetch it again (another process may have evicted it).
        """
        src = self._entry(hexdigest)
        try:
            st = os.stat(src)
        except FileNotFoundError:
            st = None
        if st is None or not self._verified(src, st, hexdigest):
            if st is not None:
                self._drop(src, st)
            raise FileNotFoundError(
                f"{hexdigest} is not in the download cache at {str(self.directory)!r} (evicted or modified "
                "since it was looked up); fetch it again"
            )
        dest = os.path.abspath(os.fspath(dest))
        parent = os.path.dirname(dest)
        try:
            dev = os.stat(parent).st_dev  # needed anyway; makedirs only when it is missing (one call less)
        except FileNotFoundError:
            os.makedirs(parent, exist_ok=True)
            dev = os.stat(parent).st_dev
        tmp = temp_beside(dest)
        mode = self._place_into(src, tmp, dev)
        try:
            os.replace(tmp, dest)
        except BaseException:
            unlink_quietly(tmp)
            raise
        if mode == "hardlink":
            # rename() between two links to one inode succeeds and does nothing: when dest already was a
            # link to this entry, the temp link is still there.
            unlink_quietly(tmp)
            # Linking moved the entry's ctime: renew its record (see the module docstring).
            self._renew([f for f in [self._restat_after_own_change(src, hexdigest)] if f is not None])
        return mode

    def _place_into(self, src: str, tmp: str, dev: int) -> PlaceMode:
        if dev not in self._no_reflink:
            try:
                _reflink(src, tmp)
                return "reflink"
            except OSError as exc:
                if exc.errno not in _NOT_SUPPORTED:
                    raise
                self._no_reflink.add(dev)  # ext4, tmpfs, another filesystem: do not ask again
        if self.hardlinks and dev not in self._no_hardlink:
            try:
                os.link(src, tmp)
                return "hardlink"
            except OSError as exc:
                if exc.errno == errno.EMLINK:
                    pass  # this inode has too many links; others may still link
                elif exc.errno in _NOT_SUPPORTED:
                    self._no_hardlink.add(dev)
                else:
                    raise
        try:
            shutil.copyfile(src, tmp)  # sendfile/copy_file_range underneath; a new, writable file
        except BaseException:
            unlink_quietly(tmp)
            raise
        return "copy"

    # -- eviction ------------------------------------------------------------------------------------------

    def _account(self, nbytes: int, keep: str) -> None:
        with self._lock:
            if self._total is not None:
                self._total += nbytes
            over = self._total is None or self._total > self.max_bytes
        if over:
            self._evict(keep=keep)

    @contextlib.contextmanager
    def pinned(self, hexdigest: str) -> Iterator[None]:
        """Keep this process's evictions away from ``hexdigest`` inside the block (fetch, then place)."""
        path = self._entry(hexdigest)
        with self._lock:
            self._pinned[path] += 1
        try:
            yield
        finally:
            with self._lock:
                self._pinned[path] -= 1
                if self._pinned[path] <= 0:
                    del self._pinned[path]

    def trim(self) -> int:
        """Evict only if this process knows the cache is over its bound (e.g. entries were pinned when it
        last evicted); cheap when it is not. Returns bytes freed."""
        with self._lock:
            over = self._total is not None and self._total > self.max_bytes
        return self._evict(keep=None) if over else 0

    def evict(self) -> int:
        """Delete least recently used entries until the cache holds at most max_bytes; returns bytes freed."""
        return self._evict(keep=None)

    def _evict(self, keep: str | None) -> int:
        entries: list[tuple[int, int, str]] = []
        total = 0
        with self._lock:
            busy = set(self._pinned)  # skipped when choosing victims; re-checked at unlink
        try:
            prefixes = list(os.scandir(self._entries))
        except FileNotFoundError:
            prefixes = []
        for d in prefixes:
            if not d.is_dir(follow_symlinks=False):
                continue
            for f in os.scandir(d.path):
                try:
                    st = f.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                total += st.st_size
                if f.path != keep and f.path not in busy:  # entries about to be used are never victims
                    entries.append((st.st_atime_ns, st.st_size, f.path))
        freed = 0
        if total > self.max_bytes:
            # Down to a low-water mark, not just under the bound: otherwise a full cache rescans itself
            # on every new entry.
            target = self.max_bytes * _LOW_WATER // 100
            entries.sort()
            for _, nbytes, path in entries:
                if total - freed <= target:
                    break
                # Checked and unlinked under the lock that pinned() takes: an entry pinned after the scan
                # began (and fetched by now) is never removed under its user.
                with self._lock:
                    if path in self._pinned:
                        continue
                    try:
                        os.unlink(path)
                        freed += nbytes
                    except FileNotFoundError:
                        pass  # evicted by another process at the same time
        self._remove_stale_temps()
        with self._lock:
            self._total = total - freed
        return freed

    def _remove_stale_temps(self) -> None:
        # Leftovers of crashed fills and drops. Judged by ctime: a fill carries the sentinel mtime once
        # verified, and any write, rename or utime moves ctime, so an old ctime means nobody is working on it.
        cutoff = time.time() - _STALE_TMP_S
        try:
            leftovers = list(os.scandir(self._tmpdir))
        except FileNotFoundError:
            return
        for e in leftovers:
            try:
                if e.stat(follow_symlinks=False).st_ctime < cutoff:
                    os.unlink(e.path)
            except FileNotFoundError:
                pass


def _reflink(src: str, dst: str) -> None:
    """Create ``dst`` as a copy-on-write clone of ``src`` (Linux FICLONE); OSError where unsupported."""
    import fcntl

    sfd = os.open(src, os.O_RDONLY | _O_CLOEXEC)
    try:
        dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o666)
        try:
            fcntl.ioctl(dfd, FICLONE, sfd)
        except BaseException:
            os.close(dfd)
            unlink_quietly(dst)
            raise
        os.close(dfd)
    finally:
        os.close(sfd)
