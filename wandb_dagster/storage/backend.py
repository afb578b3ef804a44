"""What a blob store must do, and the factory that picks one for a root.

Blobs are content-addressed: ``{root}/{hex[:2]}/{hex[2:]}``, named by the MD5 of the content, the same
layout on every backend (a root can be copied between a folder and a bucket as is). Three implementations:

========================================  =============================================================
root                                      implementation
========================================  =============================================================
a path, ``file:///abs/path``              :class:`~wandb_dagster.storage.blobs.BlobStore` (plain ``os``
                                          calls: per-file overhead decides the speed of small files)
``s3://bucket/prefix``, ``gs://...``      :class:`~wandb_dagster.storage.remote_blobs.ObjectStoreBlobs`
                                          (batched, concurrent, streamed; request counts are tested)
any other fsspec URL (``memory://``, ...)  :class:`~wandb_dagster.storage.fsspec_blobs.FsspecBlobStore`
========================================  =============================================================

Callers use only what :class:`BlobBackend` lists, never ``getattr``/``hasattr`` probes: a capability that
differs between backends is an attribute of the protocol (``is_local``, ``batched_downloads``).

Example::

    >>> store = open_blob_store("/tmp/blobs")                      # doctest: +SKIP
    >>> hexdigest, size = store.put_file("model.pt")               # doctest: +SKIP
    >>> store.sync([hexdigest])   # before the metadata that names the blob is committed   # doctest: +SKIP
    >>> store.get_file(hexdigest, "/tmp/out/model.pt")             # verified while copying  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, BinaryIO, Protocol, runtime_checkable

from .hashing import check_hex
from .progress import tracker

_OBJECT_STORE_RE = re.compile(r"(s3|s3a|gs|gcs)://", re.IGNORECASE)

DownloadItem = tuple[str, "int | None", "str | os.PathLike[str]"]
"""(hex digest, size or None when unknown, destination path) of one blob to download."""


@runtime_checkable
class BlobBackend(Protocol):
    """A content-addressed blob store. A blob that exists is never written again, and a blob's name only
    ever shows complete content (docs/architecture.md invariant 1: metadata names a blob only after :meth:`sync`)."""

    root: str
    """The root as given (a local root: its absolute path), without a trailing slash."""
    is_local: bool
    """True when blobs are files on this machine: :meth:`blob_path` is then a path ``open()`` can read."""
    max_workers: int
    """How many transfers the store runs at once (callers size their own pools by it)."""
    batched_downloads: bool
    """True where one batched, concurrent :meth:`get_files` beats fetching blobs one by one (object
    stores); False where a per-blob fetch is as fast (local folder, generic fsspec)."""

    def blob_path(self, hexdigest: str) -> str:
        """The blob's location, ``{root}/{hex[:2]}/{hex[2:]}`` (ValueError for anything but an MD5 hex)."""
        ...

    def exists(self, hexdigest: str, size: int | None = None) -> bool:
        """Whether the blob is stored (and, when ``size`` is given, has that size)."""
        ...

    def exists_many(self, hexes: Iterable[str], sizes: dict[str, int] | None = None) -> set[str]:
        """The subset of ``hexes`` that is stored, in one batch. ``sizes`` (hex -> expected size) makes a
        blob of another size count as missing (e.g. truncated by a crash before :meth:`sync`)."""
        ...

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store in-memory bytes; returns (hex, size)."""
        ...

    def put_file(self, local_path: str | os.PathLike[str], expected_hex: str | None = None) -> tuple[str, int]:
        """Store a local file, reading it once; (hex, size). ``expected_hex``: the digest computed earlier;
        other bytes now -> ContentChangedError and nothing stored. A folder -> IsADirectoryError."""
        ...

    def put_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        expected: Sequence[str | None] | None = None,
        progress: Callable[[int], Any] | None = None,
    ) -> list[tuple[str, int]]:
        """put_file for many files, in the order of ``paths``; ``expected`` lines up with them (None where
        unknown); ``progress(nbytes)`` once per stored file, on the calling thread. The first error stops
        the batch. The :func:`~wandb_dagster.storage.progress.report_progress` hook sees the batch."""
        ...

    def open(self, hexdigest: str) -> BinaryIO:
        """The stored bytes as a binary file object, unverified (prefer :meth:`get_file`)."""
        ...

    def get_file(self, hexdigest: str, dest_path: str | os.PathLike[str]) -> None:
        """Copy a blob to ``dest_path`` (temp file beside it, then rename), checking the MD5 on the way:
        CorruptBlobError and ``dest_path`` untouched otherwise; a missing blob -> FileNotFoundError."""
        ...

    def get_files(self, items: Sequence[DownloadItem]) -> None:
        """get_file for many (hex, size or None, destination) items; the first error stops the batch.
        The :func:`~wandb_dagster.storage.progress.report_progress` hook sees the batch."""
        ...

    def sync(self, hexdigests: Iterable[str] | None = None, sizes: dict[str, int] | None = None) -> None:
        """Make blobs durable: every blob written so far, or those named. Call it before committing
        metadata that names them (a bucket's write is durable once acknowledged: nothing to flush there).

        Named blobs are also proven present, whatever their count: one that is missing, or (``sizes``: hex
        -> expected size) of another size, raises :class:`~wandb_dagster.storage.errors.MissingBlobsError`
        listing every such blob (docs/architecture.md invariant 1)."""
        ...

    def check_access(self) -> None:
        """Raise StorageAccessError naming the root and what to do if the store cannot be used; called when
        a workspace opens, so a missing bucket or refused credentials show up at once."""
        ...

    def iter_hexes(self) -> Iterator[str]:
        """Every stored digest (in no particular order); temp files are not blobs and are skipped."""
        ...

    def iter_blobs(self) -> Iterator[tuple[str, int]]:
        """Every stored blob as (hex digest, size in bytes), in no particular order (for gc and verify: one
        listing, no request per blob on a bucket)."""
        ...

    def delete(self, hexdigest: str) -> None:
        """Remove a blob (for gc). Missing -> FileNotFoundError naming the digest."""
        ...

    def remove_stale_temps(self, older_than_s: float = 24 * 3600) -> int:
        """Delete temp files (a bucket: unfinished multipart uploads) older than ``older_than_s`` left by
        crashed writers (for gc); returns how many."""
        ...


def local_root(root: str) -> str | None:
    """The absolute directory a root names on this machine, or None for a URL (fsspec, bucket)."""
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


def open_blob_store(root: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> BlobBackend:
    """The blob store for ``root``: a local folder, an S3/GCS bucket, or any other fsspec filesystem.

    ``storage_options`` go to fsspec (s3fs, gcsfs, ...) as keyword arguments (endpoint, credentials); a
    local root takes none. Nothing is read or written here: call ``check_access()`` to find out early
    whether a bucket can be used.
    """
    root = os.fspath(root)
    if _OBJECT_STORE_RE.match(root):
        from .remote_blobs import ObjectStoreBlobs

        return ObjectStoreBlobs(root, storage_options)
    if local_root(root) is not None:
        from .blobs import BlobStore

        return BlobStore(root)
    from .fsspec_blobs import FsspecBlobStore

    return FsspecBlobStore(root, storage_options)


def get_one_by_one(
    items: Sequence[DownloadItem], get_one: Callable[[str, str | os.PathLike[str], Callable[[int], Any]], None]
) -> None:
    """get_files for stores without a batched transfer: ``get_one(hex, dest, on_chunk)`` per item, in order,
    with the progress of the whole batch reported to the current hook."""
    for h, _, _ in items:
        check_hex(h)  # every digest before the first byte moves
    track = tracker(sum(s or 0 for _, s, _ in items), len(items))
    for h, _, dest in items:
        get_one(h, dest, track.add)
        track.add(0, 1)
    track.finish()
