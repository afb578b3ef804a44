"""Blobs in a local folder: ``{root}/{hex[:2]}/{hex[2:]}``, with plain ``os`` calls.

The local implementation of :class:`~wandb_dagster.storage.backend.BlobBackend` (build stores with
:func:`~wandb_dagster.storage.backend.open_blob_store`). Per-file overhead is what decides the speed of
logging many small files, so every syscall here is counted: small files are stored inline, large ones on a
pool and the largest pipelined (storage/local_io.py); temp files are unnamed (O_TMPFILE) where Linux
offers it; :meth:`BlobStore.sync` fsyncs a few blobs or syncfs's many.

Example::

    >>> store = BlobStore("/tmp/blobs")                             # doctest: +SKIP
    >>> hexdigest, size = store.put_file("model.pt")               # doctest: +SKIP
    >>> store.sync()   # once, before the metadata that names the blob is committed   # doctest: +SKIP
    >>> store.get_file(hexdigest, "/tmp/out/model.pt")            # verified while copying  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import errno
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

from . import local_io
from .backend import DownloadItem, get_one_by_one, local_root
from .errors import (
    NO_SPACE,
    ContentChangedError,
    CorruptBlobError,
    MissingBlobsError,
    is_a_directory,
    missing_blob,
    out_of_space,
)
from .hashing import CHUNK, check_hex, new_md5
from .verified_write import file_chunks, unique_suffix, unlink_quietly, write_all, write_verified

POOL_MIN_SIZE = 128 * 1024
"""put_files stores local files smaller than this on the calling thread, larger ones on a thread pool.
A small file costs a few syscalls plus an MD5 that holds the GIL (hashlib releases it only above 2047
bytes), so handing it to a worker only adds overhead. Measured on 2 cores (ext4, 3 runs, inline vs pool):
10,000 x 1 KiB 0.8 s vs 1.5-2.1 s; 1,000 x 64 KiB 0.30 vs 0.37 s; 600 x 128 KiB about even;
400 x 256 KiB 0.49 vs 0.30 s; 120 x 1 MiB 0.57 vs 0.36 s."""

PIPELINE_MIN_SIZE = 16 * 1024 * 1024
"""A local file at least this large is stored by two threads: the caller reads and hashes, a writer thread
writes the temp file and starts its writeback early (see :func:`local_io.start_writeback`). md5 and os.write both
release the GIL, so on 2 cores a 1 GiB file (page cached, ext4) takes about max(md5, write) instead of their
sum. Smaller files keep the single-threaded loop: a thread per file would only add overhead there."""

FSYNC_MAX_BLOBS = 32
"""sync(hexdigests) with at most this many blobs fsyncs each of them (and their directories) instead of one
syncfs of the whole filesystem. syncfs also waits for every other writer's dirty data on that filesystem:
measured on the 2-core test VM (ext4), one 1 KiB blob took 0.6-3 ms with syncfs on a quiet disk but 96-119
ms while another process had 64 MiB unwritten, against 0.6-1.0 ms with fsync either way. fsync costs about
0.35 ms per blob (16 blobs: 5 ms, 64: 21 ms, 256: 93 ms, where syncfs of a quiet disk takes 1, 4 and 11
ms), so many blobs keep the single syncfs."""

_TMP_DIR = "tmp"
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NO_DIR_FSYNC = (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF)
_O_READ = os.O_RDONLY | _O_CLOEXEC
_O_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC
_O_TMPFILE = getattr(os, "O_TMPFILE", 0) | os.O_WRONLY | _O_CLOEXEC
# What open(O_TMPFILE) says where unnamed temp files are not available (old kernels say EISDIR).
_NO_TMPFILE = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOSYS}
_PREFIX_RE = re.compile(r"[0-9a-f]{2}")
_REST_RE = re.compile(r"[0-9a-f]{30}")
_syncfs = local_io.syncfs  # looked up here at each sync, so a test can watch (or replace) it


class BlobStore:
    """Content-addressed blobs in the local folder ``root`` (a path or ``file://`` URL); a sound blob that
    exists is never written again (a damaged one met while its bytes are in hand is replaced, see _commit).

    Blobs are written to a temp file in ``{root}/tmp/`` first and named only once complete (link or
    rename), so a blob's name only ever shows complete content. Writes are not fsynced one by one: call
    :meth:`sync` once before committing metadata that names the blobs (docs/architecture.md invariant 1).

    Example::

        >>> store = BlobStore("/data/blobs")                               # doctest: +SKIP
        >>> results = store.put_files(["a.txt", "b.txt"])                  # [(hex, size), ...]  # doctest: +SKIP
        >>> store.exists_many(h for h, _ in results)                       # doctest: +SKIP
        >>> store.sync()                                                   # doctest: +SKIP
    """

    is_local = True
    batched_downloads = False  # a local copy is as fast one by one (and the download cache links it)

    def __init__(self, root: str | os.PathLike[str]) -> None:
        root = os.fspath(root)
        local = local_root(root)
        if local is None:
            raise ValueError(
                f"BlobStore is the local-folder store; {root!r} is a URL. Use "
                "wandb_dagster.storage.backend.open_blob_store(root, storage_options), which picks the store "
                "for s3://, gs:// and other fsspec roots."
            )
        self.root = local
        self.max_workers = min(8, (os.cpu_count() or 1) + 1)
        self._tmpdir = f"{local}/{_TMP_DIR}"
        self._use_tmpfile = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")
        # Fan-out directories known to exist; creating them on demand keeps an empty store empty, and
        # remembering them saves a mkdir syscall per file.
        self._made: set[str] = set()
        # Set when this store created its tmp directory (and maybe the root and its parents): the next sync
        # then uses syncfs, since fsyncing blobs and their directories would not make new ancestors durable.
        self._created_root_dirs = False
        # Fan-out directories whose names this store has synced into the root (see _fsync_blobs).
        self._durable_prefixes: set[str] = set()

    def __repr__(self) -> str:
        return f"BlobStore({self.root!r})"

    def check_access(self) -> None:
        """Nothing to check: the folder is created by the first write, and a write that cannot be made
        fails naming its path."""

    # -- names ---------------------------------------------------------------------------------------------

    def blob_path(self, hexdigest: str) -> str:
        check_hex(hexdigest)
        return f"{self.root}/{hexdigest[:2]}/{hexdigest[2:]}"

    def _path(self, hexdigest: str) -> str:
        """blob_path for a digest already checked."""
        return f"{self.root}/{hexdigest[:2]}/{hexdigest[2:]}"

    def _tmp_name(self) -> str:
        return f"{self._tmpdir}/{unique_suffix()}"

    # -- existence -----------------------------------------------------------------------------------------

    def exists(self, hexdigest: str, size: int | None = None) -> bool:
        """Whether the blob is stored (and, when ``size`` is given, has that size)."""
        size_found = self._stored_size(check_hex(hexdigest))
        return size_found is not None and (size is None or size_found == size)

    def exists_many(self, hexes: Iterable[str], sizes: dict[str, int] | None = None) -> set[str]:
        """The subset of ``hexes`` that is stored (a stat each).

        ``sizes`` (hex -> expected size) makes a blob of another size count as missing: a blob left
        truncated by a crash before :meth:`sync` is then written again instead of being trusted.
        """
        wanted = {check_hex(h) for h in hexes}
        found = {}
        for h in wanted:
            try:
                found[h] = os.stat(self._path(h)).st_size
            except FileNotFoundError:
                pass
        if sizes is None:
            return set(found)
        return {h for h, n in found.items() if h not in sizes or sizes[h] == n}

    def _stored_size(self, hexdigest: str) -> int | None:
        try:
            return os.stat(self._path(hexdigest)).st_size
        except FileNotFoundError:
            return None

    # -- writing -------------------------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store in-memory bytes; returns (hex, size)."""
        hexdigest = new_md5(data).hexdigest()
        try:
            self._store_buffer(hexdigest, data)
        except OSError as exc:
            if exc.errno in NO_SPACE:
                raise out_of_space(self.root, len(data), "blobs") from None
            raise
        return hexdigest, len(data)

    def put_file(self, local_path: str | os.PathLike[str], expected_hex: str | None = None) -> tuple[str, int]:
        """Store a local file, reading it once (the bytes read feed both the MD5 and the blob).

        ``expected_hex`` is the digest the caller computed earlier (e.g. from the stat cache); if the
        bytes read now differ, :class:`ContentChangedError` is raised and nothing is stored.
        """
        if expected_hex is not None:
            check_hex(expected_hex)
        fd = os.open(local_path, _O_READ)
        try:
            return self._put_fd(fd, local_path, expected_hex)
        except OSError as exc:
            if exc.errno in NO_SPACE:
                raise out_of_space(self.root, _sizes_of([local_path]), "blobs") from None
            raise

    def _put_fd(
        self, fd: int, local_path: str | os.PathLike[str], expected_hex: str | None, size: int = -1
    ) -> tuple[str, int]:
        """put_file for an already opened source (``size`` from its fstat, if known); closes ``fd``."""
        try:
            if size < 0:
                size = os.fstat(fd).st_size
            data = b""
            if size < CHUNK:
                # One read for a small file. Asking for one byte more than fstat reported notices a file
                # that grew meanwhile; that, or a short read (a file that shrank, some FUSE/network
                # filesystems), continues as a stream from what was read.
                data = os.read(fd, size + 1)
            if len(data) == size < CHUNK:
                hexdigest = new_md5(data).hexdigest()
                if expected_hex is not None and hexdigest != expected_hex:
                    raise ContentChangedError(local_path, expected_hex, hexdigest)
                self._store_buffer(hexdigest, data)
                return hexdigest, len(data)
            return self._store_stream(fd, data, local_path, expected_hex)
        except IsADirectoryError:
            # Reading is what fails on a folder (opening it works): said here, at no cost per file.
            raise is_a_directory(local_path) from None
        finally:
            os.close(fd)

    def _store_buffer(self, hexdigest: str, data: bytes) -> None:
        """Store bytes whose digest is known: nothing to write when the blob is already there."""
        # No existence check first: absent is the common case (the SDK asks exists_many before it reads a
        # file it has seen), and naming the temp file fails with FileExistsError when the blob is there
        # (_commit), so a duplicate costs one small write and never replaces the stored blob.
        tmp, out = self._open_tmp()
        try:
            n = os.write(out, data)
            if n != len(data):  # short writes are rare on local files, but legal
                write_all(out, memoryview(data)[n:])
            self._commit(tmp, out, hexdigest, len(data), data)
        except BaseException:
            if tmp is not None:
                unlink_quietly(tmp)
            raise
        finally:
            os.close(out)

    def _store_stream(
        self, fd: int, head: bytes, local_path: str | os.PathLike[str], expected_hex: str | None
    ) -> tuple[str, int]:
        """Large file: hash while copying CHUNK pieces to a temp file, then name it (or drop it if present)."""
        h = new_md5(head)
        size = len(head)
        try:
            pipelined = os.fstat(fd).st_size >= PIPELINE_MIN_SIZE
        except OSError:
            pipelined = False
        tmp, out = self._open_tmp()
        try:
            write_all(out, head)
            if pipelined:
                size = local_io.hash_and_write_pipelined(fd, out, h, size)
            else:
                buf = bytearray(CHUNK)
                view = memoryview(buf)
                while n := os.readv(fd, [buf]):
                    h.update(view[:n])
                    write_all(out, view[:n])
                    size += n
            hexdigest = h.hexdigest()
            if expected_hex is not None and hexdigest != expected_hex:
                raise ContentChangedError(local_path, expected_hex, hexdigest)
            self._commit(tmp, out, hexdigest, size)
        except BaseException:
            if tmp is not None:
                unlink_quietly(tmp)
            raise
        finally:
            os.close(out)
        return hexdigest, size

    # Local temp files. Where Linux offers O_TMPFILE, the temp file is an unnamed inode in {root}/tmp that
    # linkat() names as the blob once complete: one directory operation instead of create + rename across
    # directories (measured: 10,000 x 1 KiB files ~25% faster), link() never replaces an existing blob, and
    # a crash leaves nothing behind. Elsewhere (NFS, macOS, no /proc) it is a named file in {root}/tmp,
    # renamed into place with os.replace. Both are atomic: the blob name only ever shows complete content.

    def _open_tmp(self) -> tuple[str | None, int]:
        """(None, fd) for an unnamed temp file, or (path, fd) for a named one; mode 0o444 either way
        (blobs are immutable, so nobody but root writes to one by accident)."""
        if self._use_tmpfile:
            try:
                return None, self._open_in_tmpdir(self._tmpdir, _O_TMPFILE)
            except OSError as exc:
                if exc.errno not in _NO_TMPFILE:
                    raise
                self._use_tmpfile = False
        tmp = self._tmp_name()
        return tmp, self._open_in_tmpdir(tmp, _O_NEW)

    def _open_in_tmpdir(self, path: str, flags: int) -> int:
        try:
            return os.open(path, flags, 0o444)
        except FileNotFoundError:
            os.makedirs(self._tmpdir, exist_ok=True)
            self._created_root_dirs = True
            return os.open(path, flags, 0o444)

    def _commit(self, tmp: str | None, fd: int, hexdigest: str, size: int, data: bytes | None = None) -> None:
        """Give a complete temp file its blob name, unless a sound blob is already there.

        The temp file holds bytes just hashed to ``hexdigest``, so a blob found under that name is checked
        as far as that is cheap before the temp is dropped (issue 18: a new log must not deduplicate onto a
        damaged blob and leave it damaged):
        - another size: the truncated leftover of a crash before sync(), replaced;
        - a small blob (``data`` is its content, in memory): compared byte for byte, one read of at most
          CHUNK; a blob that differs (a bit flip) is replaced;
        - a large blob: not read back (that would double the cost of the copy), but replaced by the temp,
          which costs one rename and leaves the name holding bytes verified a moment ago.
        Replacing is atomic (rename), so a reader sees the old inode or the new one, never a mix; two
        writers racing here hold identical bytes, so whichever lands first (link) or last (rename) is fine.
        """
        final = self._path(hexdigest)
        if tmp is None:
            try:
                self._link_into_place(fd, final, hexdigest[:2])
                return
            except FileExistsError:
                if self._is_sound(final, size, data):
                    return  # closing fd frees the unnamed temp
                tmp = self._tmp_name()
                os.link(f"/proc/self/fd/{fd}", tmp, src_dir_fd=fd, follow_symlinks=True)
        elif self._is_sound(final, size, data):
            os.unlink(tmp)
            return
        try:
            self._ensure_prefix(hexdigest[:2])
            try:
                os.replace(tmp, final)
            except FileNotFoundError:
                self._made.discard(hexdigest[:2])  # the fan-out directory vanished (gc, or by hand)
                self._ensure_prefix(hexdigest[:2])
                os.replace(tmp, final)
        except BaseException:
            unlink_quietly(tmp)  # the temp named above is ours to remove; the caller only knows the fd
            raise

    @staticmethod
    def _is_sound(final: str, size: int, data: bytes | None) -> bool:
        """Whether the blob at ``final`` can stay: it has ``size`` and, when ``data`` is given, those bytes.
        Without ``data`` (a large blob) it never stays: the caller's verified temp replaces it."""
        if data is None:
            return False
        try:
            fd = os.open(final, _O_READ)
        except FileNotFoundError:
            return False
        try:
            # One byte more than expected notices a blob that is longer than it should be.
            return os.read(fd, size + 1) == data
        finally:
            os.close(fd)

    def _link_into_place(self, fd: int, final: str, prefix: str) -> None:
        # linkat(AT_SYMLINK_FOLLOW) on the /proc link of the fd: the documented way to name an O_TMPFILE
        # without privileges. os.link only passes that flag when a dir_fd is given; the path is absolute,
        # so the dir_fd (any valid fd) is ignored.
        self._ensure_prefix(prefix)
        try:
            os.link(f"/proc/self/fd/{fd}", final, src_dir_fd=fd, follow_symlinks=True)
        except FileNotFoundError:
            self._made.discard(prefix)  # the fan-out directory vanished (gc, or by hand)
            self._ensure_prefix(prefix)
            os.link(f"/proc/self/fd/{fd}", final, src_dir_fd=fd, follow_symlinks=True)

    def _ensure_prefix(self, prefix: str) -> None:
        if prefix not in self._made:
            os.makedirs(f"{self.root}/{prefix}", exist_ok=True)
            self._made.add(prefix)

    def put_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        expected: Sequence[str | None] | None = None,
        progress: Callable[[int], Any] | None = None,
    ) -> list[tuple[str, int]]:
        """put_file for many files; returns (hex, size) in the order of ``paths``.

        ``expected`` lines up with ``paths`` (None where unknown). ``progress(nbytes)`` is called on the
        calling thread once per stored file. Small files are stored inline, larger ones by a bounded thread
        pool; the first error stops the batch and is raised.
        """
        if expected is not None and len(expected) != len(paths):
            raise ValueError(f"expected has {len(expected)} digests for {len(paths)} paths; pass one per path")
        for e in expected or ():
            if e is not None:
                check_hex(e)
        results: list[tuple[str, int] | None] = [None] * len(paths)
        # The report_progress() hook, if any, wants totals up front: one extra stat per file, only then.
        from .progress import current_hook, tracker

        track = tracker(sum(os.stat(p).st_size for p in paths) if current_hook() else 0, len(paths))
        # (index, future, fd handed to the worker or -1): kept in submission order.
        pending: collections.deque[tuple[int, Future, int]] = collections.deque()
        limit = threading.BoundedSemaphore(2 * self.max_workers)  # bounds open fds and queued work

        def report(i: int, result: tuple[str, int]) -> None:
            results[i] = result
            track.add(result[1], 1)
            if progress is not None:
                progress(result[1])

        def drain(block: bool) -> None:
            while pending and (block or pending[0][1].done()):
                i, fut, _ = pending.popleft()
                report(i, fut.result())

        def run(job: Callable[[], tuple[str, int]]) -> tuple[str, int]:
            try:
                return job()
            finally:
                limit.release()

        pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="wandb-dagster-put")
        try:
            for i, path in enumerate(paths):
                exp = expected[i] if expected is not None else None
                fd = os.open(path, _O_READ)
                try:
                    size = os.fstat(fd).st_size
                except BaseException:
                    os.close(fd)
                    raise
                if size >= POOL_MIN_SIZE:
                    # The worker continues with the open fd, so the file is opened and sized once.
                    limit.acquire()
                    job = lambda fd=fd, p=path, e=exp, n=size: self._put_fd(fd, p, e, n)  # noqa: E731
                    pending.append((i, pool.submit(run, job), fd))
                else:
                    report(i, self._put_fd(fd, path, exp, size))
                if pending:
                    drain(block=False)
            drain(block=True)
            track.finish()
        except OSError as exc:
            if exc.errno in NO_SPACE:
                # What the batch still needed: the files not stored yet (stat'ed again only on this path).
                rest = [p for p, r in zip(paths, results, strict=True) if r is None]
                raise out_of_space(self.root, _sizes_of(rest), "blobs") from None
            raise
        finally:
            for _, fut, fd in pending:
                if fut.cancel() and fd >= 0:
                    os.close(fd)  # never started, so its fd is still ours to close
            pool.shutdown(wait=True)
        return results  # type: ignore[return-value]

    # -- reading -------------------------------------------------------------------------------------------

    def open(self, hexdigest: str) -> BinaryIO:
        """The stored bytes, unverified (use :meth:`get_file` for a checked copy)."""
        path = self._path(check_hex(hexdigest))
        try:
            return open(path, "rb", buffering=0)
        except FileNotFoundError:
            raise missing_blob(hexdigest, self.root) from None

    def get_file(self, hexdigest: str, dest_path: str | os.PathLike[str]) -> None:
        """Copy a blob to ``dest_path`` through a temp file beside it, checking the MD5 on the way.

        The destination appears only if the bytes match the digest; otherwise :class:`CorruptBlobError`.
        """
        self._get(hexdigest, dest_path, None)

    def get_files(self, items: Sequence[DownloadItem]) -> None:
        """get_file for each (hex, size or None, destination), in order (a local copy gains nothing from
        batching)."""
        get_one_by_one(items, self._get)

    def _get(self, hexdigest: str, dest_path: str | os.PathLike[str], on_chunk: Callable[[int], Any] | None) -> None:
        def check(actual: str, _size: int) -> None:
            if actual != hexdigest:
                raise CorruptBlobError(hexdigest, actual, self._path(hexdigest))

        with self.open(hexdigest) as src:
            write_verified(file_chunks(src), dest_path, check, on_chunk=on_chunk)

    # -- durability and maintenance ------------------------------------------------------------------------

    def sync(self, hexdigests: Iterable[str] | None = None, sizes: dict[str, int] | None = None) -> None:
        """Make blobs durable: every blob written so far, or (given ``hexdigests``) those blobs, which are
        then also proven present (:class:`MissingBlobsError` lists those missing or of another size than
        ``sizes`` says).

        Without ``hexdigests``, or with more than :data:`FSYNC_MAX_BLOBS` of them: one syncfs of the root's
        filesystem, not an fsync per file, then a stat of each named blob (a syncfs cannot notice a missing
        file). With a few: an fsync of each named blob (whoever wrote it: a blob found already stored may be
        another writer's, not yet synced), of their fan-out directories, of the root and of its parent,
        which costs what those blobs cost rather than what every other writer on the filesystem has pending.

        Example::

            >>> store.sync([hexdigest])   # before committing the version that names it   # doctest: +SKIP
        """
        try:
            self._sync(hexdigests, sizes)
        except OSError as exc:
            # Delayed allocation: a full disk may first show when the data is flushed.
            if exc.errno in NO_SPACE:
                raise out_of_space(self.root, what="blobs") from None
            raise

    def _sync(self, hexdigests: Iterable[str] | None, sizes: dict[str, int] | None) -> None:
        wanted: set[str] | None = None
        if hexdigests is not None:
            wanted = {check_hex(h) for h in hexdigests}
            if not wanted:
                return
            if len(wanted) <= FSYNC_MAX_BLOBS and not self._created_root_dirs and os.name == "posix":
                try:
                    missing = self._fsync_blobs(sorted(wanted))
                    self._check_present(wanted, sizes, missing)
                    return
                except OSError as exc:
                    # Some filesystems (FUSE, network mounts) refuse fsync on a directory; syncfs below
                    # covers them. Anything else, e.g. EIO, is a durability failure to report.
                    if isinstance(exc, MissingBlobsError) or exc.errno not in _NO_DIR_FSYNC:
                        raise
        try:
            fd = os.open(self.root, _O_READ)
        except FileNotFoundError:
            fd = None  # nothing was ever written here
        if fd is not None:
            try:
                _syncfs(fd)
                self._created_root_dirs = False
            finally:
                os.close(fd)
        if wanted is not None:
            self._check_present(wanted, sizes)

    def _check_present(self, wanted: set[str], sizes: dict[str, int] | None, missing: Iterable[str] = ()) -> None:
        """Raise MissingBlobsError unless every wanted blob is stored with the expected size."""
        lost = set(missing) | (wanted - self.exists_many(wanted, sizes))
        if lost:
            raise MissingBlobsError(sorted(lost), self.root)

    def _fsync_blobs(self, hexes: Sequence[str]) -> list[str]:
        """fsync the named blobs and their directories; returns those that are not stored."""
        missing = []
        for hexdigest in hexes:
            try:
                local_io.fsync_path(self._path(hexdigest))
            except FileNotFoundError:
                missing.append(hexdigest)
        # The blobs' names (their links in the fan-out directories), those directories' names in the root,
        # and the root's in its parent: a name that is lost after a power cut loses the blob with it.
        prefixes = sorted({h[:2] for h in hexes if h not in missing})
        for prefix in prefixes:
            local_io.fsync_path(f"{self.root}/{prefix}")
        # A directory's name, once synced, stays durable (blob directories are never removed), so the root
        # and its parent are synced only the first time this store meets a fan-out directory; a directory
        # someone else created may not have been synced yet (its creator may have crashed first).
        if not self._durable_prefixes.issuperset(prefixes):
            local_io.fsync_path(self.root)
            local_io.fsync_path(os.path.dirname(self.root) or "/")
            self._durable_prefixes.update(prefixes)
        return missing

    def iter_hexes(self) -> Iterator[str]:
        """Every stored digest (in no particular order); temp files are not blobs and are skipped."""
        try:
            top = list(os.scandir(self.root))
        except FileNotFoundError:
            return
        for d in top:
            if _PREFIX_RE.fullmatch(d.name) and d.is_dir(follow_symlinks=False):
                for f in os.scandir(d.path):
                    if _REST_RE.fullmatch(f.name):
                        yield d.name + f.name

    def iter_blobs(self) -> Iterator[tuple[str, int]]:
        """Every stored blob as (hex, size): a stat per blob, from the same scan as :meth:`iter_hexes`."""
        try:
            top = list(os.scandir(self.root))
        except FileNotFoundError:
            return
        for d in top:
            if _PREFIX_RE.fullmatch(d.name) and d.is_dir(follow_symlinks=False):
                for f in os.scandir(d.path):
                    if _REST_RE.fullmatch(f.name):
                        try:
                            yield d.name + f.name, f.stat(follow_symlinks=False).st_size
                        except FileNotFoundError:
                            pass  # deleted since the scan (another gc)

    def delete(self, hexdigest: str) -> None:
        """Remove a blob (for gc). Missing -> FileNotFoundError naming the digest."""
        try:
            os.unlink(self._path(check_hex(hexdigest)))
        except FileNotFoundError:
            raise missing_blob(hexdigest, self.root) from None

    def remove_stale_temps(self, older_than_s: float = 24 * 3600) -> int:
        """Delete temp files left by crashed writers (for gc); returns how many were removed.

        Only files older than ``older_than_s`` go, so a write in progress elsewhere is left alone.
        """
        cutoff = time.time() - older_than_s
        removed = 0
        try:
            entries = list(os.scandir(self._tmpdir))
        except FileNotFoundError:
            return 0
        for e in entries:
            try:
                if e.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(e.path)
                    removed += 1
            except FileNotFoundError:
                pass
        return removed


def _sizes_of(paths: Iterable[str | os.PathLike[str]]) -> int | None:
    try:
        return sum(os.stat(p).st_size for p in paths)
    except OSError:
        return None
