"""Progress of long transfers (uploads and downloads of blobs), for a command line or a notebook to show.

A hook is any callable ``hook(bytes_done, bytes_total, files_done, files_total)``. Install one for a block of
code with :func:`report_progress`; every batch transfer started inside the block (on this thread or in this
asyncio task) reports to it: logging an artifact (``add_file``/``add_dir``/``log_artifact``) and downloading
one. Each batch reports from 0 to its own totals; calls are throttled (at most about ten a second, plus the
first and the last), come from one thread at a time and must return quickly.

Example::

    >>> from wandb_dagster.storage.progress import report_progress
    >>> def show(bytes_done, bytes_total, files_done, files_total):
    ...     print(f"{files_done}/{files_total} files, {bytes_done}/{bytes_total} bytes")
    >>> with report_progress(show):                       # doctest: +SKIP
    ...     artifact.download()
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol


class ProgressHook(Protocol):
    def __call__(self, bytes_done: int, bytes_total: int, files_done: int, files_total: int) -> None: ...


# What report_progress accepts: the protocol (parameter names documented) or any callable of four ints.
_Hook = ProgressHook | Callable[[int, int, int, int], None]

_current: contextvars.ContextVar[_Hook | None] = contextvars.ContextVar(
    "wandb_dagster_progress_hook", default=None
)

_MIN_INTERVAL_S = 0.1


@contextlib.contextmanager
def report_progress(hook: _Hook | None) -> Iterator[None]:
    """Send the progress of every blob transfer started inside the block to ``hook`` (None: report nothing)."""
    if hook is not None and not callable(hook):
        raise TypeError(
            f"report_progress needs a callable hook(bytes_done, bytes_total, files_done, files_total), got "
            f"{type(hook).__name__}"
        )
    token = _current.set(hook)
    try:
        yield
    finally:
        _current.reset(token)


def current_hook() -> _Hook | None:
    """The hook installed by the innermost :func:`report_progress` block, if any."""
    return _current.get()


class _Tracker:
    """Counts one batch's progress (thread-safe) and calls the hook, throttled."""

    def __init__(self, hook: _Hook | None, bytes_total: int, files_total: int) -> None:
        self._hook = hook
        self.bytes_total = bytes_total
        self.files_total = files_total
        self.bytes_done = 0
        self.files_done = 0
        self._lock = threading.Lock()
        self._last = 0.0
        self._sent = (0, 0)  # (bytes_done, files_done) of the last call
        if hook is not None:
            hook(0, bytes_total, 0, files_total)

    def add(self, nbytes: int = 0, files: int = 0) -> None:
        if self._hook is None:
            return
        with self._lock:
            self.bytes_done += nbytes
            self.files_done += files
            now = time.monotonic()
            if now - self._last < _MIN_INTERVAL_S and self.files_done < self.files_total:
                return
            self._last = now
            self._sent = (self.bytes_done, self.files_done)
            self._hook(self.bytes_done, self.bytes_total, self.files_done, self.files_total)

    def finish(self) -> None:
        """The last call, with the final counts (skipped if the throttled calls already reported them)."""
        if self._hook is None:
            return
        with self._lock:
            if self._sent == (self.bytes_done, self.files_done):
                return
            self._sent = (self.bytes_done, self.files_done)
            self._hook(self.bytes_done, self.bytes_total, self.files_done, self.files_total)


def tracker(bytes_total: int, files_total: int) -> _Tracker:
    """A tracker for one batch, reporting to the current hook (a no-op without one)."""
    return _Tracker(current_hook(), bytes_total, files_total)
