"""Content-addressed blob storage: ``{root}/{hex[:2]}/{hex[2:]}``, named by the MD5 of the content.

A local root (a path or ``file://`` URL) is handled with plain ``os`` calls, because per-file overhead is
what decides the speed of logging many small files; ``s3://`` and ``gs://`` roots get the object-store
implementation in ``remote_blobs.py`` (batched, concurrent, streamed); any other root goes through the
generic fsspec filesystem API.

Example::

    >>> store = BlobStore("/tmp/blobs")                             # doctest: +SKIP
    >>> hexdigest, size = store.put_file("model.pt")               # doctest: +SKIP
    >>> store.sync()   # once, before the metadata that names the blob is committed   # doctest: +SKIP
    >>> store.get_file(hexdigest, "/tmp/out/model.pt")            # verified while copying  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import errno
import itertools
import os
import queue
import re
import sys
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Sequence

from .errors import ContentChangedError, CorruptBlobError
from .hashing import CHUNK, check_hex, new_md5

POOL_MIN_SIZE = 128 * 1024
"""put_files stores local files smaller than this on the calling thread, larger ones on a thread pool.
A small file costs a few syscalls plus an MD5 that holds the GIL (hashlib releases it only above 2047
bytes), so handing it to a worker only adds overhead. Measured on 2 cores (ext4, 3 runs, inline vs pool):
10,000 x 1 KiB 0.8 s vs 1.5-2.1 s; 1,000 x 64 KiB 0.30 vs 0.37 s; 600 x 128 KiB about even;
400 x 256 KiB 0.49 vs 0.30 s; 120 x 1 MiB 0.57 vs 0.36 s."""

PIPELINE_MIN_SIZE = 16 * 1024 * 1024
"""A local file at least this large is stored by two threads: the caller reads and hashes, a writer thread
writes the temp file and starts its writeback early (see :func:`_start_writeback`). md5 and os.write both
release the GIL, so on 2 cores a 1 GiB file (page cached, ext4) takes about max(md5, write) instead of their
sum. Smaller files keep the single-threaded loop: a thread per file would only add overhead there."""
PIPELINE_CHUNK = CHUNK
PIPELINE_BUFFERS = 4
"""Buffers of CHUNK bytes circulating between the hashing and the writing thread: bounds the memory of a
large put to PIPELINE_BUFFERS * CHUNK however large the file."""
WRITEBACK_STEP = 8 * 1024 * 1024
"""After every this many bytes written to a large blob, ask the kernel to start writing them to disk, so disk
I/O overlaps hashing and the sync() before the commit finds little left to flush."""

FSYNC_MAX_BLOBS = 32
"""sync(hexdigests) with at most this many blobs fsyncs each of them (and their directories) instead of one
syncfs of the whole filesystem. syncfs also waits for every other writer's dirty data on that filesystem:
measured on the 2-core test VM (ext4), one 1 KiB blob took 0.6-3 ms with syncfs on a quiet disk but 96-119
ms while another process had 64 MiB unwritten, against 0.6-1.0 ms with fsync either way. fsync costs about
0.35 ms per blob (16 blobs: 5 ms, 64: 21 ms, 256: 93 ms, where syncfs of a quiet disk takes 1, 4 and 11
ms), so many blobs keep the single syncfs."""

_TMP_DIR = "tmp"
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_READ = os.O_RDONLY | _O_CLOEXEC
_O_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC
_O_TMPFILE = getattr(os, "O_TMPFILE", 0) | os.O_WRONLY | _O_CLOEXEC
# What open(O_TMPFILE) says where unnamed temp files are not available (old kernels say EISDIR).
_NO_TMPFILE = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOSYS}
_PREFIX_RE = re.compile(r"[0-9a-f]{2}")
_REST_RE = re.compile(r"[0-9a-f]{30}")
_OBJECT_STORE_RE = re.compile(r"(s3|s3a|gs|gcs)://", re.IGNORECASE)
_REMOTE_EXISTS_SINGLE = 16  # up to this many digests, ask per blob; beyond, list the fan-out directories


def _new_process_tag() -> str:
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


_process_tag = _new_process_tag()
_tmp_counter = itertools.count()


def _reset_after_fork() -> None:
    global _process_tag, _tmp_counter
    _process_tag, _tmp_counter = _new_process_tag(), itertools.count()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def unique_suffix() -> str:
    """A name part unique across threads, processes and machines sharing a directory.

    pid + a random tag (fresh in a forked child) + a counter; creating files with O_EXCL turns the
    impossible collision into an error rather than a shared file. No syscall per name: this runs per blob.
    """
    return f"{_process_tag}-{next(_tmp_counter)}"


def read_buffer_size(f: Any, size_hint: int | None = None) -> int:
    """A buffer size for streaming ``f``: CHUNK, or less for a small file, because allocating (and
    zeroing) 1 MiB costs more than copying a few KiB when there are thousands of files."""
    try:
        size = os.fstat(f.fileno()).st_size
    except (AttributeError, OSError, ValueError):  # not a local file (io.UnsupportedOperation is an OSError)
        size = size_hint
    return CHUNK if size is None else max(1, min(CHUNK, size + 1))


def _local_root(root: str) -> str | None:
    """The absolute directory a root names on this machine, or None for a remote (fsspec) root."""
    if root.startswith("file://"):
        # file:///abs/path and file://localhost/abs/path, %-escapes decoded; any other host is an error.
        parsed = urllib.parse.urlparse(root)
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(
                f"Storage root {root!r} names host {parsed.netloc!r}; a file:// root must be on this machine "
                "(file:///abs/path). Use s3:// or gs:// for shared storage."
            )
        root = urllib.parse.unquote(parsed.path)
    elif "://" in root or "::" in root:
        return None
    path = os.path.abspath(os.path.expanduser(root))
    return path.rstrip("/") or "/"


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class BlobStore:
    """Content-addressed blobs under ``root``; a blob that exists is never written again.

    Blobs are written to a temp file in ``{root}/tmp/`` first and named only once complete (link or
    rename), so a blob's name only ever shows complete content. Writes are not fsynced one by one: call
    :meth:`sync` once before committing metadata that names the blobs (design invariant 1).

    Example::

        >>> store = BlobStore("/data/blobs")                               # doctest: +SKIP
        >>> results = store.put_files(["a.txt", "b.txt"])                  # [(hex, size), ...]  # doctest: +SKIP
        >>> store.exists_many(h for h, _ in results)                       # doctest: +SKIP
        >>> store.sync()                                                   # doctest: +SKIP
    """

    def __new__(cls, root: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> "BlobStore":
        # s3:// and gs:// roots get the object-store implementation (storage/remote_blobs.py), so every caller
        # keeps writing BlobStore(root) whatever the root is.
        if cls is BlobStore and _OBJECT_STORE_RE.match(os.fspath(root)):
            from .remote_blobs import ObjectStoreBlobs

            return super().__new__(ObjectStoreBlobs)
        return super().__new__(cls)

    def __init__(self, root: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> None:
        root = os.fspath(root)
        local = _local_root(root)
        self.is_local = local is not None
        self.max_workers = min(8, (os.cpu_count() or 1) + 1) if self.is_local else 16
        if local is not None:
            self.root = local
            self._fs = None
            self._fsroot = local
        else:
            import fsspec  # only remote roots pay for importing fsspec and its protocol registry

            self._fs, path = fsspec.core.url_to_fs(root, **(storage_options or {}))
            self.root = root.rstrip("/")
            self._fsroot = path.rstrip("/")
        self._tmpdir = f"{self._fsroot}/{_TMP_DIR}"
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

    # -- names ---------------------------------------------------------------------------------------------

    def blob_path(self, hexdigest: str) -> str:
        check_hex(hexdigest)
        return f"{self.root}/{hexdigest[:2]}/{hexdigest[2:]}"

    def _path(self, hexdigest: str) -> str:
        """Path in the filesystem's own terms (no protocol); the digest must already be checked."""
        return f"{self._fsroot}/{hexdigest[:2]}/{hexdigest[2:]}"

    def _tmp_name(self) -> str:
        return f"{self._tmpdir}/{unique_suffix()}"

    # -- existence -----------------------------------------------------------------------------------------

    def exists(self, hexdigest: str, size: int | None = None) -> bool:
        """Whether the blob is stored (and, when ``size`` is given, has that size)."""
        size_found = self._stored_size(check_hex(hexdigest))
        return size_found is not None and (size is None or size_found == size)

    def exists_many(self, hexes: Iterable[str], sizes: dict[str, int] | None = None) -> set[str]:
        """The subset of ``hexes`` that is stored, in one batch.

        ``sizes`` (hex -> expected size) makes a blob of another size count as missing: a blob left
        truncated by a crash before :meth:`sync` is then written again instead of being trusted.
        """
        wanted = {check_hex(h) for h in hexes}
        if self.is_local:
            found = {}
            for h in wanted:
                try:
                    found[h] = os.stat(self._path(h)).st_size
                except FileNotFoundError:
                    pass
        else:
            found = self._remote_sizes(wanted)
        if sizes is None:
            return set(found)
        return {h for h, n in found.items() if h not in sizes or sizes[h] == n}

    def _stored_size(self, hexdigest: str) -> int | None:
        try:
            if self._fs is None:
                return os.stat(self._path(hexdigest)).st_size
            return int(self._fs.info(self._path(hexdigest))["size"])
        except FileNotFoundError:
            return None

    def _remote_sizes(self, wanted: set[str]) -> dict[str, int]:
        if len(wanted) <= _REMOTE_EXISTS_SINGLE:
            return {h: n for h in wanted if (n := self._stored_size(h)) is not None}
        # One listing per fan-out directory instead of one request per blob.
        found: dict[str, int] = {}
        by_prefix: dict[str, set[str]] = collections.defaultdict(set)
        for h in wanted:
            by_prefix[h[:2]].add(h[2:])
        for prefix, rests in by_prefix.items():
            directory = f"{self._fsroot}/{prefix}"
            self._fs.invalidate_cache(directory)  # another writer may have added blobs since we last looked
            try:
                listing = self._fs.ls(directory, detail=True)
            except FileNotFoundError:
                continue
            for info in listing:
                rest = info["name"].rstrip("/").rsplit("/", 1)[-1]
                if rest in rests and info.get("type", "file") == "file":
                    found[prefix + rest] = int(info["size"])
        return found

    # -- writing -------------------------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store in-memory bytes; returns (hex, size)."""
        hexdigest = new_md5(data).hexdigest()
        self._store_buffer(hexdigest, data)
        return hexdigest, len(data)

    def put_file(self, local_path: str | os.PathLike[str], expected_hex: str | None = None) -> tuple[str, int]:
        """Store a local file, reading it once (the bytes read feed both the MD5 and the blob).

        ``expected_hex`` is the digest the caller computed earlier (e.g. from the stat cache); if the
        bytes read now differ, :class:`ContentChangedError` is raised and nothing is stored.
        """
        if expected_hex is not None:
            check_hex(expected_hex)
        fd = os.open(local_path, _O_READ)
        return self._put_fd(fd, local_path, expected_hex)

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
        finally:
            os.close(fd)

    def _store_buffer(self, hexdigest: str, data: bytes) -> None:
        """Store bytes whose digest is known: nothing to write when the blob is already there."""
        if self._fs is not None:
            if self._stored_size(hexdigest) != len(data):
                tmp = self._tmp_name()
                self._fs.pipe_file(tmp, data)
                self._commit_remote(tmp, hexdigest)
            return
        # No existence check first: absent is the common case (the SDK asks exists_many before it reads a
        # file it has seen), and naming the temp file fails with FileExistsError when the blob is there
        # (_commit_local), so a duplicate costs one small write and never replaces the stored blob.
        tmp, out = self._open_local_tmp()
        try:
            n = os.write(out, data)
            if n != len(data):  # short writes are rare on local files, but legal
                _write_all(out, memoryview(data)[n:])
            self._commit_local(tmp, out, hexdigest, len(data))
        except BaseException:
            if tmp is not None:
                _unlink_quietly(tmp)
            raise
        finally:
            os.close(out)

    def _store_stream(
        self, fd: int, head: bytes, local_path: str | os.PathLike[str], expected_hex: str | None
    ) -> tuple[str, int]:
        """Large file: hash while copying CHUNK pieces to a temp file, then name it (or drop it if present)."""
        h = new_md5(head)
        size = len(head)
        if self._fs is not None:
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            tmp = self._tmp_name()
            try:
                with self._fs.open(tmp, "wb") as out:
                    out.write(head)
                    while n := os.readv(fd, [buf]):
                        h.update(view[:n])
                        out.write(view[:n])
                        size += n
                hexdigest = self._check_streamed(h, local_path, expected_hex)
                if self._stored_size(hexdigest) == size:
                    self._fs.rm_file(tmp)
                else:
                    self._commit_remote(tmp, hexdigest)
            except BaseException:
                try:
                    self._fs.rm_file(tmp)
                except FileNotFoundError:
                    pass
                raise
            return hexdigest, size
        try:
            pipelined = os.fstat(fd).st_size >= PIPELINE_MIN_SIZE
        except OSError:
            pipelined = False
        tmp, out = self._open_local_tmp()
        try:
            _write_all(out, head)
            if pipelined:
                size = _hash_and_write_pipelined(fd, out, h, size)
            else:
                buf = bytearray(CHUNK)
                view = memoryview(buf)
                while n := os.readv(fd, [buf]):
                    h.update(view[:n])
                    _write_all(out, view[:n])
                    size += n
            hexdigest = self._check_streamed(h, local_path, expected_hex)
            self._commit_local(tmp, out, hexdigest, size)
        except BaseException:
            if tmp is not None:
                _unlink_quietly(tmp)
            raise
        finally:
            os.close(out)
        return hexdigest, size

    @staticmethod
    def _check_streamed(h, local_path: str | os.PathLike[str], expected_hex: str | None) -> str:
        hexdigest = h.hexdigest()
        if expected_hex is not None and hexdigest != expected_hex:
            raise ContentChangedError(local_path, expected_hex, hexdigest)
        return hexdigest

    # Local temp files. Where Linux offers O_TMPFILE, the temp file is an unnamed inode in {root}/tmp that
    # linkat() names as the blob once complete: one directory operation instead of create + rename across
    # directories (measured: 10,000 x 1 KiB files ~25% faster), link() never replaces an existing blob, and
    # a crash leaves nothing behind. Elsewhere (NFS, macOS, no /proc) it is a named file in {root}/tmp,
    # renamed into place with os.replace. Both are atomic: the blob name only ever shows complete content.

    def _open_local_tmp(self) -> tuple[str | None, int]:
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

    def _commit_local(self, tmp: str | None, fd: int, hexdigest: str, size: int) -> None:
        """Give a complete temp file its blob name, unless a blob of that size is already there.

        A blob of another size is the truncated leftover of a crash before sync(): it is replaced. Two
        writers racing here hold identical bytes, so whichever lands first (link) or last (rename) is fine.
        """
        final = self._path(hexdigest)
        if tmp is None:
            try:
                self._link_into_place(fd, final, hexdigest[:2])
                return
            except FileExistsError:
                if self._stored_size(hexdigest) == size:
                    return  # never rewrite an existing blob; closing fd frees the unnamed temp
                tmp = self._tmp_name()
                os.link(f"/proc/self/fd/{fd}", tmp, src_dir_fd=fd, follow_symlinks=True)
        elif self._stored_size(hexdigest) == size:
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
            _unlink_quietly(tmp)  # the temp named above is ours to remove; the caller only knows the fd
            raise

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
            os.makedirs(f"{self._fsroot}/{prefix}", exist_ok=True)
            self._made.add(prefix)

    def _commit_remote(self, tmp: str, hexdigest: str) -> None:
        # Generic fsspec: mv is a rename where the filesystem has one and copy + delete on object stores
        # (where the copy is itself atomic). The S3/GCS issue can replace this with a direct PUT.
        self._fs.makedirs(f"{self._fsroot}/{hexdigest[:2]}", exist_ok=True)
        self._fs.mv(tmp, self._path(hexdigest))

    def put_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        expected: Sequence[str | None] | None = None,
        progress: Callable[[int], Any] | None = None,
    ) -> list[tuple[str, int]]:
        """put_file for many files; returns (hex, size) in the order of ``paths``.

        ``expected`` lines up with ``paths`` (None where unknown). ``progress(nbytes)`` is called on the
        calling thread once per stored file. Small local files are stored inline, larger ones (and every
        file of a remote root) by a bounded thread pool; the first error stops the batch and is raised.
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
                if self._fs is not None:
                    limit.acquire()
                    pending.append((i, pool.submit(run, lambda p=path, e=exp: self.put_file(p, e)), -1))
                else:
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
        finally:
            for _, fut, fd in pending:
                if fut.cancel() and fd >= 0:
                    os.close(fd)  # never started, so its fd is still ours to close
            pool.shutdown(wait=True)
        return results  # type: ignore[return-value]

    # -- reading -------------------------------------------------------------------------------------------

    def _missing(self, hexdigest: str) -> FileNotFoundError:
        return FileNotFoundError(
            f"blob {hexdigest} is not in the blob store at {self.root!r}; the version that names it is "
            "incomplete or the blob was deleted (log the file again to restore it)"
        )

    def open(self, hexdigest: str) -> BinaryIO:
        """The stored bytes, unverified (use :meth:`get_file` for a checked copy)."""
        path = self._path(check_hex(hexdigest))
        try:
            if self._fs is None:
                return open(path, "rb", buffering=0)
            return self._fs.open(path, "rb")
        except FileNotFoundError:
            raise self._missing(hexdigest) from None

    def get_file(self, hexdigest: str, dest_path: str | os.PathLike[str]) -> None:
        """Copy a blob to ``dest_path`` through a temp file beside it, checking the MD5 on the way.

        The destination appears only if the bytes match the digest; otherwise :class:`CorruptBlobError`.
        """
        dest = os.path.abspath(os.fspath(dest_path))
        parent, name = os.path.split(dest)
        h = new_md5()
        tmp = f"{parent}/.{name}.{unique_suffix()}.part"
        with self.open(hexdigest) as src:
            try:
                out = os.open(tmp, _O_NEW, 0o666)
            except FileNotFoundError:  # create the parent only when missing: one syscall less per file
                os.makedirs(parent, exist_ok=True)
                out = os.open(tmp, _O_NEW, 0o666)
            try:
                try:
                    buf = bytearray(read_buffer_size(src))
                    view = memoryview(buf)
                    while n := src.readinto(buf):
                        h.update(view[:n])
                        _write_all(out, view[:n])
                finally:
                    os.close(out)
                actual = h.hexdigest()
                if actual != hexdigest:
                    raise CorruptBlobError(hexdigest, actual, self.blob_path(hexdigest))
                os.replace(tmp, dest)
            except BaseException:
                _unlink_quietly(tmp)
                raise

    # -- durability and maintenance ------------------------------------------------------------------------

    def sync(self, hexdigests: Iterable[str] | None = None) -> None:
        """Make blobs durable: every blob written so far, or (given ``hexdigests``) those blobs.

        Without ``hexdigests``, or with more than :data:`FSYNC_MAX_BLOBS` of them: one syncfs of the root's
        filesystem, not an fsync per file. With a few: an fsync of each named blob (whoever wrote it: a blob
        found already stored may be another writer's, not yet synced), of their fan-out directories, of the
        root and of its parent, which costs what those blobs cost rather than what every other writer on the
        filesystem has pending. A named blob that is not stored raises FileNotFoundError. Remote roots need
        nothing: object stores acknowledge a write only once it is durable.

        Example::

            >>> store.sync([hexdigest])   # before committing the version that names it   # doctest: +SKIP
        """
        if self._fs is not None:
            return
        if hexdigests is not None:
            wanted = set(hexdigests)
            if not wanted:
                return
            if len(wanted) <= FSYNC_MAX_BLOBS and not self._created_root_dirs and os.name == "posix":
                try:
                    self._fsync_blobs(sorted(check_hex(h) for h in wanted))
                    return
                except OSError as exc:
                    # Some filesystems (FUSE, network mounts) refuse fsync on a directory; syncfs below
                    # covers them. Anything else, e.g. EIO, is a durability failure to report.
                    if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF):
                        raise
        try:
            fd = os.open(self.root, _O_READ)
        except FileNotFoundError:
            return  # nothing was ever written here
        try:
            _syncfs(fd)
            self._created_root_dirs = False
        finally:
            os.close(fd)

    def _fsync_blobs(self, hexes: Sequence[str]) -> None:
        for hexdigest in hexes:
            try:
                _fsync_path(self._path(hexdigest))
            except FileNotFoundError:
                raise self._missing(hexdigest) from None
        # The blobs' names (their links in the fan-out directories), those directories' names in the root,
        # and the root's in its parent: a name that is lost after a power cut loses the blob with it.
        prefixes = sorted({h[:2] for h in hexes})
        for prefix in prefixes:
            _fsync_path(f"{self._fsroot}/{prefix}")
        # A directory's name, once synced, stays durable (blob directories are never removed), so the root
        # and its parent are synced only the first time this store meets a fan-out directory; a directory
        # someone else created may not have been synced yet (its creator may have crashed first).
        if not self._durable_prefixes.issuperset(prefixes):
            _fsync_path(self._fsroot)
            _fsync_path(os.path.dirname(self._fsroot.rstrip("/")) or "/")
            self._durable_prefixes.update(prefixes)

    def iter_hexes(self) -> Iterator[str]:
        """Every stored digest (in no particular order); temp files are not blobs and are skipped."""
        if self._fs is None:
            try:
                top = list(os.scandir(self.root))
            except FileNotFoundError:
                return
            for d in top:
                if _PREFIX_RE.fullmatch(d.name) and d.is_dir(follow_symlinks=False):
                    for f in os.scandir(d.path):
                        if _REST_RE.fullmatch(f.name):
                            yield d.name + f.name
            return
        root = self._fsroot.strip("/")
        for path in self._fs.find(self._fsroot):
            rel = path.strip("/")
            if not rel.startswith(root):
                continue
            prefix, _, rest = rel[len(root) :].lstrip("/").partition("/")
            if _PREFIX_RE.fullmatch(prefix) and _REST_RE.fullmatch(rest):
                yield prefix + rest

    def delete(self, hexdigest: str) -> None:
        """Remove a blob (for gc). Missing -> FileNotFoundError naming the digest."""
        path = self._path(check_hex(hexdigest))
        try:
            if self._fs is None:
                os.unlink(path)
            else:
                self._fs.rm_file(path)
        except FileNotFoundError:
            raise self._missing(hexdigest) from None

    def remove_stale_temps(self, older_than_s: float = 24 * 3600) -> int:
        """Delete temp files left by crashed writers (for gc); returns how many were removed.

        Only files older than ``older_than_s`` go, so a write in progress elsewhere is left alone.
        """
        cutoff = time.time() - older_than_s
        removed = 0
        if self._fs is None:
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
        try:
            names = self._fs.ls(self._tmpdir, detail=False)
        except FileNotFoundError:
            return 0
        for name in names:
            try:
                stale = self._fs.modified(name).timestamp() < cutoff
            except (NotImplementedError, FileNotFoundError):
                continue  # no timestamps on this filesystem: leave the file rather than guess
            if stale:
                self._fs.rm_file(name)
                removed += 1
        return removed


_EOF = object()
_STOPPED = object()


def _hash_and_write_pipelined(fd: int, out: int, h: Any, offset: int) -> int:
    """Copy the rest of ``fd`` to ``out`` (already holding ``offset`` bytes) and hash it into ``h``; returns
    the total size.

    Three stages joined by queues, with PIPELINE_BUFFERS buffers going round: a reader thread fills a
    buffer, the calling thread hashes it, a writer thread writes it (starting writeback as it goes) and
    hands it back to the reader. MD5 is the slowest stage, so the caller does nothing else. The bytes
    written are the very bytes hashed, so the blob always matches its digest even if the source changes
    meanwhile. Any error, in any stage, stops all of them before this returns, so the caller may close
    ``out`` and drop the temp file.
    """
    free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
    filled: queue.SimpleQueue[Any] = queue.SimpleQueue()
    hashed: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
    for _ in range(PIPELINE_BUFFERS):
        free.put(bytearray(PIPELINE_CHUNK))
    failure: list[BaseException] = []
    stop = False

    def read_loop() -> None:
        try:
            while (buf := free.get()) is not None and not stop:
                n = os.readv(fd, [buf])
                if not n:
                    filled.put(_EOF)
                    return
                filled.put((buf, n))
            filled.put(_STOPPED)
        except BaseException as exc:
            filled.put(exc)

    def write_loop() -> None:
        written = flushed = offset
        try:
            while (item := hashed.get()) is not None and not stop:
                buf, n = item
                _write_all(out, memoryview(buf)[:n])
                written += n
                free.put(buf)
                if written - flushed >= WRITEBACK_STEP:
                    _start_writeback(out, flushed, written - flushed)
                    flushed = written
            if written > flushed and not stop:
                _start_writeback(out, flushed, written - flushed)
        except BaseException as exc:
            failure.append(exc)
            free.put(None)  # the reader stops, and with it the caller

    threads = [
        threading.Thread(target=read_loop, name="wandb-dagster-blob-reader", daemon=True),
        threading.Thread(target=write_loop, name="wandb-dagster-blob-writer", daemon=True),
    ]
    for t in threads:
        t.start()
    size = offset
    try:
        while (item := filled.get()) is not _EOF and item is not _STOPPED:
            if isinstance(item, BaseException):
                raise item
            h.update(memoryview(item[0])[: item[1]])
            hashed.put(item)
            size += item[1]
    except BaseException:
        stop = True
        raise
    finally:
        hashed.put(None)
        free.put(None)
        for t in threads:
            t.join()
    if failure:
        raise failure[0]
    return size


_libc_sync_file_range: Any = None


def _start_writeback(fd: int, offset: int, nbytes: int) -> None:
    """Ask Linux to start writing a range of ``fd`` to disk, without waiting for it
    (``sync_file_range(SYNC_FILE_RANGE_WRITE)``). Only a head start for :meth:`BlobStore.sync`, which still
    makes the blobs durable: where the call is missing or refused, nothing happens."""
    global _libc_sync_file_range
    fn = _libc_sync_file_range
    if fn is None:
        fn = _libc_sync_file_range = _load_libc_sync_file_range()
    if fn is not False and fn(fd, offset, nbytes, _SYNC_FILE_RANGE_WRITE) != 0:
        import ctypes

        if ctypes.get_errno() in (errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.ESPIPE):
            _libc_sync_file_range = False  # not supported here: stop asking
        # Other errors (EIO, ENOSPC) are left for sync() to report with the blobs' durability.


def _fsync_path(path: str) -> None:
    """fsync a file or directory by name (read-only is enough on Linux: blobs are 0o444)."""
    fd = os.open(path, _O_READ)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_libc_syncfs_fn: Any = None


def _syncfs(fd: int) -> None:
    """syncfs(2) on the filesystem holding ``fd``: one flush for all blobs, no fsync per file."""
    native = getattr(os, "syncfs", None)
    if native is not None:
        native(fd)
        return
    global _libc_syncfs_fn
    if _libc_syncfs_fn is None:
        _libc_syncfs_fn = _load_libc_syncfs()
    if _libc_syncfs_fn is not False:
        import ctypes

        if _libc_syncfs_fn(fd) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EOPNOTSUPP):
            # Since Linux 5.8 syncfs reports writeback errors: the data may not be on disk.
            raise OSError(err, f"syncfs failed: {os.strerror(err)}; the blobs written may not be durable")
    os.sync()  # no syncfs (not Linux): flushes every filesystem, slower but just as durable


_SYNC_FILE_RANGE_WRITE = 2  # from <fcntl.h>; the same value on every Linux architecture


def _load_libc_sync_file_range():
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).sync_file_range  # releases the GIL while it runs
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _load_libc_syncfs():
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)  # the process's own symbols include libc on Linux
        fn = libc.syncfs
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn
