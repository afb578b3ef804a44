"""One place that resolves configuration: arguments > environment > defaults.

Example::

    >>> from wandb_dagster.settings import Settings
    >>> s = Settings.resolve(project="demo")
    >>> s.project
    'demo'

Environment variables (W&B's own names where W&B has one):

- ``WANDB_DAGSTER_DIR``: the embedded workspace folder (default: ``$XDG_DATA_HOME/wandb-dagster``).
- ``WANDB_DAGSTER_DATABASE_URL``: a workspace's database URL (``sqlite:///...`` or ``postgresql://...``).
- ``WANDB_DAGSTER_STORAGE``: the blob storage root recorded when a workspace is first created.
- ``WANDB_DAGSTER_CACHE_DIR`` / ``WANDB_DAGSTER_CACHE_SIZE``: the download cache and its bound in bytes.
- ``WANDB_DAGSTER_DOWNLOAD_HARDLINKS=1``: place downloads as hard links to the (verified) cache: instant, but
  the files are read-only and show the cache's sentinel mtime. Off by default: downloads are ordinary files.
- ``WANDB_ENTITY``, ``WANDB_PROJECT``, ``WANDB_RUN_GROUP``, ``WANDB_JOB_TYPE``: as in W&B.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import re
from pathlib import Path
from typing import Any

DEFAULT_PROJECT = "uncategorized"
DEFAULT_CACHE_SIZE = 10 * 1024**3


def _data_home() -> Path:
    # XDG base directory rules: an absolute XDG_DATA_HOME wins, else ~/.local/share.
    xdg = os.environ.get("XDG_DATA_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg)
    return Path.home() / ".local" / "share"


def _cache_home() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg)
    return Path.home() / ".cache"


def _default_entity() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "user"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", user) or "user"


def _parse_size(value: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", value, re.IGNORECASE)
    if not match:
        raise ValueError(
            f"WANDB_DAGSTER_CACHE_SIZE={value!r} is not a size; use bytes or a suffix, e.g. '10GB' or '512MiB'"
        )
    number, unit = match.groups()
    return int(float(number) * 1024 ** "_KMGT".index(unit.upper() or "_"))


@dataclasses.dataclass(frozen=True)
class Settings:
    """Resolved configuration for one client. Build it with :meth:`resolve`."""

    root_dir: Path
    database_url: str
    storage_root: str
    cache_dir: Path
    cache_size: int
    entity: str
    project: str
    storage_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    download_hardlinks: bool = False

    @classmethod
    def resolve(
        cls,
        *,
        root_dir: str | os.PathLike | None = None,
        database_url: str | None = None,
        storage_root: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        cache_size: int | None = None,
        entity: str | None = None,
        project: str | None = None,
        storage_options: dict[str, Any] | None = None,
        download_hardlinks: bool | None = None,
    ) -> "Settings":
        env = os.environ
        # Paths are made absolute here: the storage root is recorded in the database and read by clients
        # started from other folders.
        root = Path(root_dir or env.get("WANDB_DAGSTER_DIR") or _data_home() / "wandb-dagster").expanduser().absolute()
        url = database_url or env.get("WANDB_DAGSTER_DATABASE_URL") or f"sqlite:///{root / 'store.db'}"
        storage = storage_root or env.get("WANDB_DAGSTER_STORAGE") or str(root / "blobs")
        if "://" not in storage:
            storage = str(Path(storage).expanduser().absolute())
        cache = Path(
            cache_dir or env.get("WANDB_DAGSTER_CACHE_DIR") or _cache_home() / "wandb-dagster"
        ).expanduser().absolute()
        if cache_size is None:
            raw = env.get("WANDB_DAGSTER_CACHE_SIZE")
            cache_size = _parse_size(raw) if raw else DEFAULT_CACHE_SIZE
        return cls(
            root_dir=root,
            database_url=url,
            storage_root=storage,
            cache_dir=cache,
            cache_size=cache_size,
            entity=entity or env.get("WANDB_ENTITY") or _default_entity(),
            project=project or env.get("WANDB_PROJECT") or DEFAULT_PROJECT,
            storage_options=dict(storage_options or {}),
            download_hardlinks=(
                env.get("WANDB_DAGSTER_DOWNLOAD_HARDLINKS", "") in ("1", "true", "True")
                if download_hardlinks is None
                else download_hardlinks
            ),
        )

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)
