"""Writing a file that appears only complete and verified: hash while copying, temp name, check, rename.

Every download path uses :func:`write_verified`: a blob store's ``get_file``/``get_files`` (local folder,
fsspec, S3/GCS), the download cache filling an entry, and reference downloads. The bytes are read once;
each buffer feeds the MD5 and the destination; the temp file gets the final name only once the caller's
check of (digest, size) passed, and it is removed on any failure, so a destination only ever shows
verified content.

Example::

    >>> def check(actual_hex, size):                                                 # doctest: +SKIP
    ...     if actual_hex != expected:
    ...         raise ValueError(f"got {actual_hex}")
    >>> with open("blob", "rb", buffering=0) as src:                                 # doctest: +SKIP
    ...     write_verified(file_chunks(src), "out/model.pt", check)
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .errors import NO_SPACE, StorageFullError, out_of_space
from .hashing import CHUNK, new_md5

NAME_MAX = 255
"""Longest file name, in bytes, on the filesystems we write to (ext4, xfs, btrfs, tmpfs, APFS). A constant,
not pathconf(): asking the filesystem would cost a syscall per file."""

_O_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
# A temp name is ".{name}.{suffix}.part"; a name of at most this many characters (4 bytes each at most)
# always fits with a suffix of up to 40 characters, so only longer names pay for measuring their bytes.
_SHORT_NAME = (NAME_MAX - 40 - len("...part")) // 4


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


def temp_beside(dest: str) -> str:
    """A temp name in the folder of ``dest`` (absolute): ``.{name}.{suffix}.part``, hidden and unique.

    A long ``name`` is cut (by bytes) so that the temp name stays within NAME_MAX: a destination whose own
    name fits must never fail because its temp name does not (ENAMETOOLONG).
    """
    parent, name = os.path.split(dest)
    suffix = unique_suffix()
    if len(name) > _SHORT_NAME:
        room = NAME_MAX - len(suffix) - len("...part")
        encoded = os.fsencode(name)
        if len(encoded) > room:
            name = os.fsdecode(encoded[:room])  # surrogateescape: exactly those bytes, even mid-character
    return f"{parent}/.{name}.{suffix}.part"


def read_buffer_size(f: Any, size_hint: int | None = None) -> int:
    """A buffer size for streaming ``f``: CHUNK, or less for a small file, because allocating (and
    zeroing) 1 MiB costs more than copying a few KiB when there are thousands of files."""
    size: int | None
    try:
        size = os.fstat(f.fileno()).st_size
    except (AttributeError, OSError, ValueError):  # not a local file (io.UnsupportedOperation is an OSError)
        size = size_hint
    return CHUNK if size is None else max(1, min(CHUNK, size + 1))


def file_chunks(src: Any, size_hint: int | None = None) -> Iterator[memoryview]:
    """The content of ``src`` (a binary file with ``readinto``) in pieces read into one reused buffer; each
    piece is valid until the next is asked for."""
    buf = bytearray(read_buffer_size(src, size_hint))
    view = memoryview(buf)
    while n := src.readinto(buf):
        yield view[:n]


def read_chunks(src: Any) -> Iterator[bytes]:
    """The content of a file-like object that only offers ``read(n)`` (network bodies), CHUNK at a time."""
    while chunk := src.read(CHUNK):
        yield chunk


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def open_new(path: str, mode: int = 0o666) -> int:
    """Create ``path`` exclusively (O_EXCL); its folder is created only when missing (one syscall less)."""
    try:
        return os.open(path, _O_NEW, mode)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, _O_NEW, mode)


def write_verified(
    chunks: Iterable[bytes | memoryview],
    dest: str | os.PathLike[str],
    check: Callable[[str, int], None],
    *,
    tmp: str | None = None,
    mode: int = 0o666,
    seal: Callable[[int], None] | None = None,
    place: Callable[[str, str], None] | None = None,
    on_chunk: Callable[[int], Any] | None = None,
) -> tuple[str, int]:
    """Copy ``chunks`` to ``dest`` through a temp file, hashing the same buffers; returns (hex MD5, size).

    ``check(hex, size)`` raises to refuse the content (wrong digest, wrong size): the temp file is then
    removed and ``dest`` is left as it was. ``tmp`` is the temp file's path (default: beside ``dest``, see
    :func:`temp_beside`), created with ``mode``; ``seal(fd)`` runs on verified content before the file is
    closed (the download cache sets its sentinel mtime there); ``place(tmp, dest)`` names it (default
    ``os.replace``); ``on_chunk(nbytes)`` is told of each piece written (progress).
    """
    if tmp is None:
        dest = os.path.abspath(os.fspath(dest))
        tmp = temp_beside(dest)
    fd = open_new(tmp, mode)
    try:
        h = new_md5()
        size = 0
        try:
            for chunk in chunks:
                h.update(chunk)
                write_all(fd, chunk)
                size += len(chunk)
                if on_chunk is not None:
                    on_chunk(len(chunk))
            actual = h.hexdigest()
            check(actual, size)
            if seal is not None:
                seal(fd)
        finally:
            os.close(fd)
        if place is None:
            os.replace(tmp, dest)
        else:
            place(tmp, os.fspath(dest))
    except BaseException as exc:
        unlink_quietly(tmp)
        if isinstance(exc, OSError) and exc.errno in NO_SPACE and not isinstance(exc, StorageFullError):
            raise out_of_space(os.path.dirname(tmp), what="the files being written") from None
        raise
    return actual, size
