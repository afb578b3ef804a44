"""A run's files in the query API (``run.files()``, ``run.file(name)``): the files it saved (``run.save``,
the console's ``output.log``) and the media files its history and summary name (``media/images/...``,
``media/table/...``), read from the workspace's blob store.

    >>> row = api_run.history(pandas=False)[0]                                  # doctest: +SKIP
    >>> api_run.file(row["sample"]["path"]).download(root="out").name          # doctest: +SKIP
    'out/media/images/sample_0_....png'

W&B lists every file its server holds for the run; here a run's files are those it saved (the store's
``run_files`` rows) and the media its values name (the bytes live in the blob store, content-addressed:
docs/behaviour.md section 9).
"""

from __future__ import annotations

import mimetypes
import os
import re
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from wandb_dagster.sdk.data_types import media_files
from wandb_dagster.sdk.download import Destinations
from wandb_dagster.storage.hashing import b64_to_hex, hex_to_b64

if TYPE_CHECKING:
    from wandb_dagster.api.objects import Run
    from wandb_dagster.sdk.workspace import Workspace


class File:
    """One file of a run: ``name`` (its path, e.g. ``media/images/sample_0_<hash>.png``), ``size`` in bytes,
    ``md5`` (base64, as W&B's), ``mimetype``, and :meth:`download`."""

    def __init__(self, ws: Workspace, run: Run, name: str, digest: str, size: int) -> None:
        self._ws = ws
        self.run = run
        self.name = name
        self.md5 = digest
        self.size = size
        self.mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"

    @property
    def url(self) -> str:
        """Where the file is: the run's URL and the file's name (there is no file server)."""
        return f"{self.run.url}/files/{self.name}"

    def download(self, root: str | os.PathLike[str] = ".", replace: bool = False, exist_ok: bool = False) -> IO[str]:
        """Write the file to ``root/<name>`` (its MD5 checked on the way) and return it opened for reading, as
        W&B's ``File.download``: an existing file is a ValueError unless ``replace`` (write it again) or
        ``exist_ok`` (keep it)."""
        dest = Destinations(Path(root))(self.name)  # never outside root (invariant 6)
        if dest.exists() and not replace:
            if exist_ok:
                return open(dest)  # noqa: SIM115 - returned open, as W&B's File.download
            raise ValueError(
                f"{dest} already exists; pass replace=True to overwrite it or exist_ok=True to keep it as it is."
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._ws.blobs.get_file(b64_to_hex(self.md5), dest)
        return open(dest)  # noqa: SIM115

    def __repr__(self) -> str:
        return f"<File {self.name} ({self.mimetype}) {self.size} bytes>"


def run_files(
    ws: Workspace, run: Run, summary: dict[str, Any], names: list[str] | None, pattern: str | None
) -> list[File]:
    """The run's files named by ``names``, or matching the SQL LIKE ``pattern`` (``%.png``), or all of them:
    the saved files by name, then the media files in the order they were first logged."""
    if names and pattern:
        raise ValueError(
            "run.files(): querying for files by both names and pattern is not supported; give a list of names or "
            "a pattern to match."
        )
    regex = None if pattern is None else re.compile(_like_to_regex(pattern), re.S)
    found: dict[str, File] = {}

    def wanted(name: str) -> bool:
        return not (name in found or (names and name not in names) or (regex is not None and not regex.fullmatch(name)))

    for saved in ws.store.run_files(run._record.pk):
        if wanted(saved.name):
            found[saved.name] = File(ws, run, saved.name, hex_to_b64(saved.digest), saved.size)
    for value in (*run.scan_history(), summary):
        for name, digest, size in media_files(value):
            if wanted(name):
                found[name] = File(ws, run, name, digest, size)
    return list(found.values())


def _like_to_regex(pattern: str) -> str:
    # MySQL's LIKE, as W&B's pattern: % any run of characters, _ one character, \ escapes.
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return "".join(out)
