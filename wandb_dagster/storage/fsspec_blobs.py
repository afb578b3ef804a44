"""Blobs on any fsspec filesystem that has no store of its own (``memory://``, ``sftp://``, ``abfs://``, ...).

The generic implementation of :class:`~wandb_dagster.storage.backend.BlobBackend`, through fsspec's
filesystem API only: a blob is written to ``{root}/tmp/`` and moved to its name once complete (``mv`` is a
rename where the filesystem has one, copy + delete elsewhere), so a blob's name only ever shows complete
content. Local folders and S3/GCS buckets have faster stores (blobs.py, remote_blobs.py); build stores with
:func:`~wandb_dagster.storage.backend.open_blob_store`.

Example::

    >>> store = open_blob_store("memory://blobs")                 # doctest: +SKIP
    >>> store.put_bytes(b"hello\\n")                               # doctest: +SKIP
    ('b1946ac92492d2347c6235b4d2611184', 6)
"""

from __future__ import annotations

import collections
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

from .backend import DownloadItem, get_one_by_one
from .errors import ContentChangedError, CorruptBlobError, MissingBlobsError, is_a_directory, missing_blob
from .hashing import CHUNK, check_hex, new_md5
from .progress import current_hook, tracker
from .verified_write import file_chunks, unique_suffix, write_verified

EXISTS_SINGLE = 16
"""Up to this many digests, exists_many asks per blob; beyond, it lists the fan-out directories."""

_PREFIX_RE = re.compile(r"[0-9a-f]{2}")
_REST_RE = re.compile(r"[0-9a-f]{30}")


class FsspecBlobStore:
    """Content-addressed blobs under an fsspec URL; ``storage_options`` go to the filesystem."""

    is_local = False
    batched_downloads = False
    max_workers = 16

    def __init__(self, root: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> None:
        import fsspec  # only fsspec roots pay for importing fsspec and its protocol registry

        root = os.fspath(root)
        self._fs, path = fsspec.core.url_to_fs(root, **(storage_options or {}))
        self.root = root.rstrip("/")
        self._fsroot = path.rstrip("/")
        self._tmpdir = f"{self._fsroot}/tmp"

    def __repr__(self) -> str:
        return f"FsspecBlobStore({self.root!r})"

    def check_access(self) -> None:
        """Nothing is checked up front (a generic filesystem has no cheap, telling probe); the first
        transfer reports what fsspec raises."""

    # -- names ---------------------------------------------------------------------------------------------

    def blob_path(self, hexdigest: str) -> str:
        check_hex(hexdigest)
        return f"{self.root}/{hexdigest[:2]}/{hexdigest[2:]}"

    def _path(self, hexdigest: str) -> str:
        """Path in the filesystem's own terms (no protocol); the digest must already be checked."""
        return f"{self._fsroot}/{hexdigest[:2]}/{hexdigest[2:]}"

    # -- existence -----------------------------------------------------------------------------------------

    def exists(self, hexdigest: str, size: int | None = None) -> bool:
        size_found = self._stored_size(check_hex(hexdigest))
        return size_found is not None and (size is None or size_found == size)

    def exists_many(self, hexes: Iterable[str], sizes: dict[str, int] | None = None) -> set[str]:
        wanted = {check_hex(h) for h in hexes}
        found = self._sizes(wanted)
        if sizes is None:
            return set(found)
        return {h for h, n in found.items() if h not in sizes or sizes[h] == n}

    def _stored_size(self, hexdigest: str) -> int | None:
        try:
            return int(self._fs.info(self._path(hexdigest))["size"])
        except FileNotFoundError:
            return None

    def _sizes(self, wanted: set[str]) -> dict[str, int]:
        if len(wanted) <= EXISTS_SINGLE:
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
        hexdigest = new_md5(data).hexdigest()
        self._store_buffer(hexdigest, data)
        return hexdigest, len(data)

    def put_file(self, local_path: str | os.PathLike[str], expected_hex: str | None = None) -> tuple[str, int]:
        """Store a local file, reading it once: a small one whole, a large one streamed to a temp file."""
        if expected_hex is not None:
            check_hex(expected_hex)
        try:
            with open(local_path, "rb", buffering=0) as src:
                size = os.fstat(src.fileno()).st_size
                # One byte more than fstat reported: a file that grew meanwhile is streamed instead.
                head = src.read(size + 1) if size < CHUNK else b""
                if len(head) == size < CHUNK:
                    hexdigest = new_md5(head).hexdigest()
                    if expected_hex is not None and hexdigest != expected_hex:
                        raise ContentChangedError(local_path, expected_hex, hexdigest)
                    self._store_buffer(hexdigest, head)
                    return hexdigest, size
                return self._store_stream(src, head, local_path, expected_hex)
        except IsADirectoryError:
            raise is_a_directory(local_path) from None

    def _store_buffer(self, hexdigest: str, data: bytes) -> None:
        # The bytes are in hand, so a stored blob of their size is compared with them before it is trusted:
        # a new log must not deduplicate onto a damaged blob (issue 18). Small blobs only: one read each.
        if self._stored_size(hexdigest) != len(data) or self._fs.cat_file(self._path(hexdigest)) != data:
            tmp = f"{self._tmpdir}/{unique_suffix()}"
            self._fs.pipe_file(tmp, data)
            self._commit(tmp, hexdigest)

    def _store_stream(
        self, src: BinaryIO, head: bytes, local_path: str | os.PathLike[str], expected_hex: str | None
    ) -> tuple[str, int]:
        h = new_md5(head)
        size = len(head)
        tmp = f"{self._tmpdir}/{unique_suffix()}"
        try:
            with self._fs.open(tmp, "wb") as out:
                out.write(head)
                for chunk in file_chunks(src):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            hexdigest = h.hexdigest()
            if expected_hex is not None and hexdigest != expected_hex:
                raise ContentChangedError(local_path, expected_hex, hexdigest)
            # The temp holds bytes verified just now: it replaces whatever is stored under the name (a sound
            # blob with the same bytes, or a damaged one), which costs a rename where reading the stored blob
            # back to check it would cost a second pass over a large file.
            self._commit(tmp, hexdigest)
        except BaseException:
            try:
                self._fs.rm_file(tmp)
            except FileNotFoundError:
                pass
            raise
        return hexdigest, size

    def _commit(self, tmp: str, hexdigest: str) -> None:
        # mv is a rename where the filesystem has one and copy + delete elsewhere (where the copy is atomic).
        self._fs.makedirs(f"{self._fsroot}/{hexdigest[:2]}", exist_ok=True)
        self._fs.mv(tmp, self._path(hexdigest))

    def put_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        expected: Sequence[str | None] | None = None,
        progress: Callable[[int], Any] | None = None,
    ) -> list[tuple[str, int]]:
        """put_file for many files on a bounded thread pool (each file is a few round trips); results in
        the order of ``paths``; the first error stops the batch."""
        if expected is not None and len(expected) != len(paths):
            raise ValueError(f"expected has {len(expected)} digests for {len(paths)} paths; pass one per path")
        for e in expected or ():
            if e is not None:
                check_hex(e)
        results: list[tuple[str, int] | None] = [None] * len(paths)
        track = tracker(sum(os.stat(p).st_size for p in paths) if current_hook() else 0, len(paths))
        pending: collections.deque[tuple[int, Future]] = collections.deque()
        limit = threading.BoundedSemaphore(2 * self.max_workers)  # bounds queued work

        def run(path: str | os.PathLike[str], exp: str | None) -> tuple[str, int]:
            try:
                return self.put_file(path, exp)
            finally:
                limit.release()

        def drain(block: bool) -> None:
            while pending and (block or pending[0][1].done()):
                i, fut = pending.popleft()
                results[i] = result = fut.result()
                track.add(result[1], 1)
                if progress is not None:
                    progress(result[1])

        pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="wandb-dagster-put")
        try:
            for i, path in enumerate(paths):
                limit.acquire()
                pending.append((i, pool.submit(run, path, expected[i] if expected is not None else None)))
                drain(block=False)
            drain(block=True)
            track.finish()
        finally:
            for _, fut in pending:
                fut.cancel()
            pool.shutdown(wait=True)
        return results  # type: ignore[return-value]

    # -- reading -------------------------------------------------------------------------------------------

    def open(self, hexdigest: str) -> BinaryIO:
        path = self._path(check_hex(hexdigest))
        try:
            return self._fs.open(path, "rb")
        except FileNotFoundError:
            raise missing_blob(hexdigest, self.root) from None

    def get_file(self, hexdigest: str, dest_path: str | os.PathLike[str]) -> None:
        self._get(hexdigest, dest_path, None)

    def get_files(self, items: Sequence[DownloadItem]) -> None:
        get_one_by_one(items, self._get)

    def _get(self, hexdigest: str, dest_path: str | os.PathLike[str], on_chunk: Callable[[int], Any] | None) -> None:
        def check(actual: str, _size: int) -> None:
            if actual != hexdigest:
                raise CorruptBlobError(hexdigest, actual, self.blob_path(hexdigest))

        with self.open(hexdigest) as src:
            write_verified(file_chunks(src), dest_path, check, on_chunk=on_chunk)

    # -- durability and maintenance ------------------------------------------------------------------------

    def sync(self, hexdigests: Iterable[str] | None = None, sizes: dict[str, int] | None = None) -> None:
        """Nothing to flush: fsspec filesystems have no flush to ask for; a write that returned is as durable
        as the filesystem makes it (memory: never; remote services: acknowledged). Named blobs are proven
        present: MissingBlobsError lists those missing or of another size."""
        if hexdigests is None:
            return
        wanted = {check_hex(h) for h in hexdigests}
        lost = wanted - self.exists_many(wanted, sizes)
        if lost:
            raise MissingBlobsError(sorted(lost), self.root)

    def iter_hexes(self) -> Iterator[str]:
        root = self._fsroot.strip("/")
        for path in self._fs.find(self._fsroot):
            rel = path.strip("/")
            if not rel.startswith(root):
                continue
            prefix, _, rest = rel[len(root) :].lstrip("/").partition("/")
            if _PREFIX_RE.fullmatch(prefix) and _REST_RE.fullmatch(rest):
                yield prefix + rest

    def iter_blobs(self) -> Iterator[tuple[str, int]]:
        root = self._fsroot.strip("/")
        for path, info in self._fs.find(self._fsroot, detail=True).items():
            rel = path.strip("/")
            if not rel.startswith(root):
                continue
            prefix, _, rest = rel[len(root) :].lstrip("/").partition("/")
            if _PREFIX_RE.fullmatch(prefix) and _REST_RE.fullmatch(rest):
                yield prefix + rest, int(info.get("size") or 0)

    def delete(self, hexdigest: str) -> None:
        try:
            self._fs.rm_file(self._path(check_hex(hexdigest)))
        except FileNotFoundError:
            raise missing_blob(hexdigest, self.root) from None

    def remove_stale_temps(self, older_than_s: float = 24 * 3600) -> int:
        cutoff = time.time() - older_than_s
        removed = 0
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
