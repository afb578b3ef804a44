"""Console capture: what the process writes to ``sys.stdout``/``sys.stderr`` during a run becomes the run's
``output.log`` file, as W&B's. The console keeps working: every write goes to the original stream first.

W&B's ``console`` setting (``WANDB_CONSOLE``): ``"off"`` captures nothing; ``"wrap"`` and ``"auto"`` (the
default) wrap the streams' ``write`` methods. W&B's ``"redirect"`` (file-descriptor level, which also sees
output written by C code) is taken as ``"wrap"`` here, and so are ``"wrap_raw"``/``"wrap_emu"``: only what goes
through Python's ``sys.stdout``/``sys.stderr`` is captured (docs/behaviour.md section 9).
"""

from __future__ import annotations

import io
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

CONSOLE_MODES = ("auto", "off", "wrap", "redirect", "wrap_raw", "wrap_emu")
OUTPUT_LOG = "output.log"


class _Tee:
    """Stands in for ``sys.stdout``/``sys.stderr``: writes go to the original stream, then (while the
    capture is active) to the run's log. Everything else (``encoding``, ``isatty``, ``fileno``...) is the
    original stream's, so code that inspects the console sees the console."""

    def __init__(self, original: TextIO, capture: ConsoleCapture) -> None:
        self._original = original
        self._capture = capture

    def write(self, text: str) -> int:
        written = self._original.write(text)
        if self._capture.active and isinstance(text, str):
            self._capture.record(text)
        return written

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


class ConsoleCapture:
    """Tees ``sys.stdout`` and ``sys.stderr`` into ``path`` from :meth:`start` until :meth:`stop`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.active = False
        self._lock = threading.Lock()
        self._sink: io.TextIOWrapper | None = None
        self._tees: dict[str, _Tee] = {}

    def start(self) -> None:
        self._sink = open(self.path, "a", encoding="utf-8", errors="replace", newline="")  # noqa: SIM115
        for name in ("stdout", "stderr"):
            original = getattr(sys, name)
            if original is None:  # pythonw, some daemons: there is no console to tee
                continue
            tee = _Tee(original, self)
            self._tees[name] = tee
            setattr(sys, name, tee)
        self.active = True

    def record(self, text: str) -> None:
        with self._lock:
            if self._sink is not None:
                self._sink.write(text)

    def flush(self) -> None:
        """Make what was captured so far readable in the file (before it is uploaded)."""
        with self._lock:
            if self._sink is not None:
                self._sink.flush()

    def stop(self) -> None:
        """Stop capturing and put the original streams back. A stream replaced again since (by another
        run's capture, or by the user) is left as it is; this capture's tee in it just passes writes on."""
        self.active = False
        for name, tee in self._tees.items():
            if getattr(sys, name) is tee:
                setattr(sys, name, tee._original)
        self._tees = {}
        with self._lock:
            if self._sink is not None:
                self._sink.close()
                self._sink = None
