"""Low-level file I/O of the local blob store (Linux first): the pipelined copy of large files, writeback
hints, fsync by name and syncfs.

These are the per-file optimisations that make the local folder fast; they live apart from
:class:`~wandb_dagster.storage.blobs.BlobStore` so the store reads as what it does, not how Linux is asked.

Example::

    >>> fd = os.open("/data/blobs", os.O_RDONLY)          # doctest: +SKIP
    >>> syncfs(fd)    # one flush of the filesystem holding the folder, not an fsync per file  # doctest: +SKIP
"""

from __future__ import annotations

import errno
import os
import queue
import sys
import threading
from typing import Any

from .hashing import CHUNK
from .verified_write import write_all

PIPELINE_CHUNK = CHUNK
PIPELINE_BUFFERS = 4
"""Buffers of CHUNK bytes circulating between the hashing and the writing thread: bounds the memory of a
large put to PIPELINE_BUFFERS * CHUNK however large the file."""
WRITEBACK_STEP = 8 * 1024 * 1024
"""After every this many bytes written to a large blob, ask the kernel to start writing them to disk, so disk
I/O overlaps hashing and the sync() before the commit finds little left to flush."""

_O_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)

_EOF = object()
_STOPPED = object()


def hash_and_write_pipelined(fd: int, out: int, h: Any, offset: int) -> int:
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
                write_all(out, memoryview(buf)[:n])
                written += n
                free.put(buf)
                if written - flushed >= WRITEBACK_STEP:
                    start_writeback(out, flushed, written - flushed)
                    flushed = written
            if written > flushed and not stop:
                start_writeback(out, flushed, written - flushed)
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


def start_writeback(fd: int, offset: int, nbytes: int) -> None:
    """Ask Linux to start writing a range of ``fd`` to disk, without waiting for it
    (``sync_file_range(SYNC_FILE_RANGE_WRITE)``). Only a head start for the store's sync(), which still
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


def fsync_path(path: str) -> None:
    """fsync a file or directory by name (read-only is enough on Linux: blobs are 0o444)."""
    fd = os.open(path, _O_READ)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_libc_syncfs_fn: Any = None


def syncfs(fd: int) -> None:
    """syncfs(2) on the filesystem holding ``fd``: one flush for all blobs, no fsync per file."""
    # Python's os module has no syncfs; libc's is called through ctypes (it releases the GIL meanwhile).
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

