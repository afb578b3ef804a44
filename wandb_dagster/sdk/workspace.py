"""A workspace: one metadata store plus the blob storage it records, and this machine's caches.

Example::

    >>> from wandb_dagster.settings import Settings
    >>> from wandb_dagster.sdk.workspace import Workspace
    >>> ws = Workspace.for_settings(Settings.resolve())   # doctest: +SKIP
    >>> ws.store.dialect                                   # doctest: +SKIP
    'sqlite'
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import TYPE_CHECKING, Any

from wandb_dagster.settings import DEFAULT_APP_URL, Settings
from wandb_dagster.storage.backend import open_blob_store
from wandb_dagster.storage.cache import DownloadCache
from wandb_dagster.storage.statcache import StatCache

if TYPE_CHECKING:
    from wandb_dagster.store import Store


def _options_digest(options: dict[str, Any]) -> str:
    """A digest of storage options, for telling workspaces apart without keeping credentials in a key.

    Values that are not JSON (a session object) count by their repr: two such options are the same only
    when they are the same object, so a second caller never gets a store made with another's options.
    """
    text = json.dumps(options, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


class Workspace:
    """Everything a client needs to read and write one workspace. Shared by the clients that name the same
    database, cache folder and storage options (see :meth:`for_settings`)."""

    _open: dict[tuple[str, str, str], Workspace] = {}
    _lock = threading.Lock()

    def __init__(self, settings: Settings) -> None:
        from wandb_dagster.store import Store  # SQLAlchemy: imported by the first workspace, not by the package

        self.settings = settings
        self.store: Store = Store.open(
            settings.database_url,
            storage_root=settings.storage_root,
            create=settings.create,
            organization=settings.organization,
        )
        # The database, not this client's settings, says where blobs live (docs/architecture.md: a workspace is named
        # by one database URL).
        try:
            self.blobs = open_blob_store(self.store.storage_root, settings.storage_options)
            # A bucket that is missing, refuses our credentials or cannot be reached is reported now, naming
            # the root, rather than halfway through logging an artifact.
            self.blobs.check_access()
        except BaseException:
            self.store.close()
            raise
        self.statcache = StatCache(settings.cache_dir / "statcache.db")
        # The download cache keeps its tamper-evident record of verified entries in the same stat cache.
        self.cache = DownloadCache(
            settings.cache_dir, settings.cache_size, hardlinks=settings.download_hardlinks, record=self.statcache
        )

    @staticmethod
    def _key(settings: Settings) -> tuple[str, str, str]:
        # The storage options are part of the key (as a digest: they may hold credentials): a caller with
        # other credentials or another endpoint must not silently get a store opened with someone else's.
        return (settings.database_url, str(settings.cache_dir), _options_digest(settings.storage_options))

    @classmethod
    def for_settings(cls, settings: Settings) -> Workspace:
        """The open workspace for these settings (database URL, cache folder, storage options), opened on
        first use."""
        key = cls._key(settings)
        with cls._lock:
            ws = cls._open.get(key)
            if ws is None:
                ws = cls._open[key] = cls(settings)
            return ws

    @classmethod
    def current(cls, settings: Settings) -> Workspace | None:
        """The workspace :meth:`for_settings` would return, if it is open already (None: it is not)."""
        with cls._lock:
            return cls._open.get(cls._key(settings))

    @classmethod
    def default(cls, **overrides: Any) -> Workspace:
        return cls.for_settings(Settings.resolve(**overrides))

    @classmethod
    def close_all(cls) -> None:
        """Close every open workspace (tests use this to start from a clean slate)."""
        with cls._lock:
            for ws in cls._open.values():
                ws.store.close()
                ws.statcache.close()
            cls._open.clear()

    @property
    def url(self) -> str:
        return self.settings.database_url

    def page_url(self, *parts: str) -> str:
        """The page of ``parts`` (W&B's page path: entity, project, "runs", id ...) in the web app that serves
        this workspace (``wandb-dagster ui``): ``WANDB_DAGSTER_APP_URL``/app_url, else http://127.0.0.1:8600.

            >>> ws.page_url("tester", "bikes", "runs", "abc123")   # doctest: +SKIP
            'http://127.0.0.1:8600/tester/bikes/runs/abc123'
        """
        from urllib.parse import quote

        base = (self.settings.app_url or DEFAULT_APP_URL).rstrip("/")
        return "/".join([base, *(quote(part, safe="") for part in parts)])

    @property
    def display_url(self) -> str:
        """The database URL with any password masked: safe to show, log or record."""
        return self.store.display_url

    def __repr__(self) -> str:
        return f"Workspace({self.display_url!r}, storage_root={self.store.storage_root!r})"
