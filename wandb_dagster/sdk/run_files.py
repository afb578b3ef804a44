"""A run's files: ``run.save(glob)`` / ``wandb.save`` as W&B's SDK, and the uploads behind them.

    >>> run.save("checkpoints/*.pt", policy="end")        # doctest: +SKIP
    ['/home/me/train/checkpoints/a.pt']

A saved file keeps its path relative to ``base_path`` (the current folder for a relative glob; for an absolute
glob without ``base_path``, its folder's parent, so one folder level is kept, as in W&B). Its content goes to
the workspace's blob store (content-addressed) and is made durable before the store's ``run_files`` row names
it (docs/architecture.md invariant 1). Policies, as W&B's: ``"now"`` uploads once now, ``"live"`` now and
again each time the file changes (a background watcher polls it, and the run's finish takes the last
content), ``"end"`` when the run finishes. The glob is expanded when ``save`` is called: files created later
are not picked up, as in W&B.
"""

from __future__ import annotations

import glob as _glob
import os
import threading
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Literal

from wandb_dagster.storage.errors import ContentChangedError
from wandb_dagster.store.errors import BlobClaimLostError

if TYPE_CHECKING:
    from wandb_dagster.sdk.workspace import Workspace

PolicyName = Literal["live", "now", "end"]
POLICIES = ("live", "now", "end")
# How often the watcher looks at "live" files (and the console log) for changes.
WATCH_INTERVAL_S = 2.0


def relative_targets(
    glob_str: str | os.PathLike[str], base_path: str | os.PathLike[str] | None, expand_glob: bool = True
) -> list[tuple[Path, str]]:
    """The files ``run.save(glob_str, base_path)`` saves: (absolute source path, name in the run) each, as
    W&B's ``Run.save``/``_save`` resolve them. Errors as W&B's, with what to do."""
    glob_path = PurePath(os.fspath(glob_str))
    resolved_glob = PurePath(os.path.abspath(glob_path))
    if base_path is not None:
        base = PurePath(os.path.abspath(os.fspath(base_path)))
    elif not glob_path.is_absolute():
        base = PurePath(os.path.abspath("."))
    else:
        warnings.warn(
            "Saving files without folders. If you want to preserve subdirectories pass base_path to wandb.save, "
            'i.e. wandb.save("/mnt/folder/file.h5", base_path="/mnt")',
            stacklevel=3,
        )
        base = resolved_glob.parent.parent
    if not str(resolved_glob).startswith(str(base)):
        raise ValueError(
            f"Glob {str(glob_str)!r} may not walk above the base path {str(base)!r}; pass a base_path that is a "
            "prefix of the glob."
        )
    if resolved_glob == base:
        raise ValueError(f"Glob {str(glob_str)!r} cannot be the same as the base path; name files under it.")
    relative = resolved_glob.relative_to(base)
    if relative.parts and relative.parts[0] == "*":
        raise ValueError(
            f"Glob {str(glob_str)!r} may not start with '*' relative to the base path {str(base)!r}; "
            "pass a base_path above the folder to keep, as W&B requires."
        )
    if expand_glob:
        sources = [Path(p).absolute() for p in sorted(_glob.glob(str(resolved_glob)))]
    else:
        sources = [Path(resolved_glob)] if os.path.lexists(resolved_glob) else []
    out = []
    for src in sources:
        if src.is_dir():
            continue  # W&B's file pusher uploads files; a matched folder has no content of its own
        out.append((src, PurePath(*src.parts[len(base.parts) :]).as_posix()))
    return out


class RunFiles:
    """The files of one run being written: what was saved, with which policy, and the last content sent.

    ``upload`` stores a file's blob, syncs it, then records the row; a file whose (size, mtime) did not move
    since its last upload is not read again. ``live`` files and ``extra`` sources (the console log) are
    polled by a daemon thread started on first need and stopped by :meth:`close`.
    """

    def __init__(self, ws: Workspace, run_pk: int) -> None:
        self._ws = ws
        self._run_pk = run_pk
        self._lock = threading.Lock()
        self._policies: dict[str, tuple[Path, str]] = {}  # name -> (source, policy) of live and end files
        self._sent: dict[str, tuple[int, int]] = {}  # name -> (size, mtime_ns) of the content last uploaded
        self._before_poll: list[Callable[[], None]] = []
        self._skip_empty: set[str] = set()  # names not uploaded while empty (the console log of a quiet run)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def save(self, targets: list[tuple[Path, str]], policy: str) -> None:
        if policy not in POLICIES:
            raise ValueError(f'policy={policy!r} is invalid; only "live", "end" and "now" policies are supported.')
        with self._lock:
            for src, name in targets:
                if policy == "now":
                    self._policies.pop(name, None)  # saved once, as asked last
                else:
                    self._policies[name] = (src, policy)
        if policy in ("now", "live"):
            self.upload([(src, name) for src, name in targets])
        if policy == "live" and targets:
            self._start_watcher()

    def watch(self, src: Path, name: str, flush: Callable[[], None] | None = None, skip_empty: bool = False) -> None:
        """Keep ``src`` uploaded as ``name`` while the run goes on and at its end (``flush`` first, each time;
        ``skip_empty``: not while it is empty, as W&B writes no ``output.log`` for a run that printed nothing)."""
        with self._lock:
            self._policies[name] = (src, "live")
            if skip_empty:
                self._skip_empty.add(name)
            if flush is not None:
                self._before_poll.append(flush)
        self._start_watcher()

    def upload(self, targets: list[tuple[Path, str]], *, durable: bool = True) -> None:
        """Store each changed file's content as a blob, make the blobs durable, then record the rows."""
        stored: list[tuple[str, str, int]] = []
        sizes: dict[str, int] = {}
        sources: dict[str, Path] = {}
        signatures: dict[str, tuple[int, int]] = {}
        for src, name in targets:
            try:
                st = os.stat(src)
            except FileNotFoundError:
                continue  # removed since it was saved: its last content stays, as on W&B's server
            signature = (st.st_size, st.st_mtime_ns)
            if self._sent.get(name) == signature or (st.st_size == 0 and name in self._skip_empty):
                continue
            hexdigest, size = self._ws.blobs.put_file(src)
            stored.append((name, hexdigest, size))
            sizes[hexdigest] = size
            signatures[name] = signature
            sources[hexdigest] = src
        if not stored:
            return
        # A token per upload: the watcher thread and run.save may upload at once (store/blob_refs.py).
        token = uuid.uuid4().hex
        for attempt in range(2):
            self._claim(token, stored, sizes, sources, signatures)
            if not stored:
                return
            # The blobs are durable before a row names them (docs/architecture.md invariant 1); the claim
            # makes this proof last until the rows are written.
            self._ws.blobs.sync(list(sizes), sizes)
            try:
                self._ws.store.put_run_files(self._run_pk, stored, durable=durable, claim=token)
                break
            except BlobClaimLostError:
                if attempt:
                    raise
                # The claims expired between the claim and the write (a process held back a day): again.
        with self._lock:
            self._sent.update(signatures)

    def _claim(
        self,
        token: str,
        stored: list[tuple[str, str, int]],
        sizes: dict[str, int],
        sources: dict[str, Path],
        signatures: dict[str, tuple[int, int]],
    ) -> None:
        """Claim the blobs just stored (a deduplicated one may be garbage that a gc is deleting); those a gc
        deleted before the claim are stored again from their file. A file whose content changed since is
        left for the next upload (its signature is dropped, so it is read again then)."""
        deleted = self._ws.store.claim_blobs(token, list(sizes), durable=False)
        for hexdigest in sorted(deleted):
            try:
                self._ws.blobs.put_file(sources[hexdigest], expected_hex=hexdigest)
            except (ContentChangedError, FileNotFoundError):
                dropped = {name for name, h, _ in stored if h == hexdigest}
                stored[:] = [row for row in stored if row[0] not in dropped]
                for name in dropped:
                    signatures.pop(name, None)
                sizes.pop(hexdigest, None)

    def poll(self, *, durable: bool = False, final: bool = False) -> None:
        """Upload the live files that changed (``final``: the "end" files too)."""
        with self._lock:
            flushes = list(self._before_poll)
            targets = [(src, name) for name, (src, policy) in self._policies.items() if final or policy == "live"]
        for flush in flushes:
            flush()
        self.upload(targets, durable=durable)

    def _start_watcher(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._watch, name="wandb-dagster-run-files", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL_S):
            try:
                self.poll()
            except Exception as exc:  # a failed upload is retried at the next poll and at finish
                warnings.warn(f"uploading run files failed ({exc}); retrying later", RuntimeWarning, stacklevel=1)

    def close(self) -> None:
        """Stop the watcher and upload the last content of live files and the end files (durably)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        self.poll(durable=True, final=True)
