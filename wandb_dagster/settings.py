"""One place that resolves configuration: arguments > environment > defaults.

Example::

    >>> from wandb_dagster.settings import Settings
    >>> s = Settings.resolve(project="demo")
    >>> s.project
    'demo'

Environment variables (W&B's own names where W&B has one):

- ``WANDB_DAGSTER_DIR``: the embedded workspace folder (default: ``$XDG_DATA_HOME/wandb-dagster``).
- ``WANDB_DAGSTER_DATABASE_URL``: a workspace's database URL (``sqlite:///...`` or ``postgresql://...``). An SQLite
  file's folder must exist (``create=True`` makes it); the default workspace's folder is made as needed.
- ``WANDB_DAGSTER_STORAGE``: the blob storage root recorded when a workspace is first created: a folder,
  ``s3://bucket/prefix`` or ``gs://bucket/prefix`` (needs the ``s3`` / ``gcs`` extra).
- ``WANDB_DAGSTER_STORAGE_OPTIONS``: a JSON object of options for the remote storage root's filesystem
  (s3fs / gcsfs keyword arguments, e.g. ``{"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}}``).
  Without it, endpoint and credentials come from the usual environment and config files
  (``AWS_*``, ``~/.aws``; ``GOOGLE_APPLICATION_CREDENTIALS``, ``STORAGE_EMULATOR_HOST``). Storage options are
  this client's own: they are never written to the workspace database.
- ``WANDB_DAGSTER_CACHE_DIR`` / ``WANDB_DAGSTER_CACHE_SIZE``: the download cache and its bound in bytes.
- ``WANDB_DAGSTER_DOWNLOAD_HARDLINKS=1``: place downloads as hard links to the (verified) cache: instant, but
  the files are read-only and show the cache's sentinel mtime. Off by default: downloads are ordinary files.
- ``WANDB_DAGSTER_APP_URL``: the address of the web app (``wandb-dagster ui``) that shows this workspace with
  W&B's page paths (``<app>/<entity>/<project>/runs/<id>``, ``.../artifacts/<type>/<name>/<version>``). Unset:
  ``run.url``, ``report.save()`` and the other page addresses use ``DEFAULT_APP_URL`` (where ``wandb-dagster
  ui`` listens by default), and Dagster materializations carry no page links.
- ``WANDB_ENTITY``, ``WANDB_PROJECT``, ``WANDB_RUN_GROUP``, ``WANDB_JOB_TYPE``: as in W&B.
- ``WANDB_DAGSTER_ORGANIZATION``: the organization registry paths without one resolve to (default: the
  workspace's default organization, named ``default`` unless this variable was set when it was created).
- ``WANDB_USERNAME``: the current user (``Api().viewer``; default: the operating-system user).
"""

from __future__ import annotations

import dataclasses
import getpass
import json
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


def _parse_storage_options(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValueError(
            f"WANDB_DAGSTER_STORAGE_OPTIONS is not valid JSON ({exc}); set it to a JSON object of s3fs/gcsfs "
            'options, e.g. \'{"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}}\', or unset it'
        ) from None
    if not isinstance(value, dict):
        raise ValueError(
            # The value is not quoted: these options hold credentials (docs/architecture.md invariant 7).
            f"WANDB_DAGSTER_STORAGE_OPTIONS must be a JSON object (a dict of s3fs/gcsfs options), got a JSON "
            f"{type(value).__name__}"
        )
    return value


_BUCKET_ROOT_RE = re.compile(r"(s3|s3a|gs|gcs)://([^/?#]*)(/[^?#]*)?")


def _check_storage_root(storage: str) -> str:
    """Reject storage roots that cannot work or would leak a secret into the database (invariant 7)."""
    if "://" not in storage:
        return str(Path(storage).expanduser().absolute())
    from wandb_dagster.storage.uri_credentials import has_credentials, strip_credentials

    match = _BUCKET_ROOT_RE.fullmatch(storage)
    scheme = storage.split("://", 1)[0].lower()
    if scheme in ("s3", "s3a", "gs", "gcs"):
        if match is None:
            raise ValueError(
                f"Storage root {strip_credentials(storage)!r} is not of the form {scheme}://bucket or "
                f"{scheme}://bucket/prefix (no query string or fragment)."
            )
        bucket = match.group(2)
        if not bucket:
            raise ValueError(
                f"Storage root {strip_credentials(storage)!r} does not name a bucket; use {scheme}://bucket or {scheme}://bucket/prefix."
            )
        if "@" in bucket or ":" in bucket:
            raise ValueError(
                f"Storage root {storage.split('://', 1)[0]}://...@{bucket.rsplit('@', 1)[-1]} carries credentials or "
                "a port in its bucket part; the root is recorded in the workspace database, so pass credentials "
                "as storage_options (or WANDB_DAGSTER_STORAGE_OPTIONS) or the usual environment instead."
            )
        return storage.rstrip("/") if (match.group(3) or "").strip("/") else f"{scheme}://{bucket}"
    # Any other fsspec root (sftp://user:password@host/..., a signed https:// URL) is recorded as given too.
    if has_credentials(storage) or "@" in storage.split("://", 1)[1].split("/", 1)[0]:
        raise ValueError(
            f"Storage root {strip_credentials(storage)!r} carries credentials (user:password@ or a secret query "
            "parameter); the root is recorded in the workspace database, so pass credentials as storage_options "
            "(or WANDB_DAGSTER_STORAGE_OPTIONS) or the usual environment instead."
        )
    return storage


def _check_app_url(url: str) -> str:
    """An http(s) address without credentials, query or fragment, without its trailing slash."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    # Shown without userinfo, query and fragment: a rejected URL may carry a token.
    shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}" if parts.scheme else url.split("@")[-1]
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"app URL {shown!r} (WANDB_DAGSTER_APP_URL or app_url) is not an http(s) address; give the web "
            "app's address, e.g. 'https://wandb.example.com', or leave it unset"
        )
    if "@" in parts.netloc or parts.query or parts.fragment:
        # It is written into Dagster's materialization metadata, which anyone with Dagster access reads.
        raise ValueError(
            f"app URL {shown!r} carries credentials, a query or a fragment; give the bare address (it is "
            "shown in Dagster's metadata), e.g. 'https://wandb.example.com'"
        )
    return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")


def _parse_size(value: str) -> int:
    return parse_size(value, "WANDB_DAGSTER_CACHE_SIZE")


def parse_size(value: str, what: str = "size") -> int:
    """Bytes from ``'10GB'``, ``'512MiB'``, ``'1.5K'`` or ``'4096'`` (binary units, as W&B's cache sizes);
    ``what`` names the value in the error."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", value, re.IGNORECASE)
    if not match:
        raise ValueError(f"{what}={value!r} is not a size; use bytes or a suffix, e.g. '10GB' or '512MiB'")
    number, unit = match.groups()
    return int(float(number) * 1024 ** "_KMGT".index(unit.upper() or "_"))


# Where `wandb-dagster ui` listens by default (loopback only); the address pages link to when no app URL is
# configured (WANDB_DAGSTER_APP_URL / app_url), e.g. the URL report.save() prints.
DEFAULT_APP_URL = "http://127.0.0.1:8600"


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
    # repr=False: options may hold credentials (key/secret/token), which must not end up in logs either.
    storage_options: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    download_hardlinks: bool = False
    app_url: str | None = None  # the web app showing this workspace (WANDB_DAGSTER_APP_URL); None: DEFAULT_APP_URL
    # Whether opening the workspace may create a missing SQLite folder. True for the default workspace (its
    # folder is ours to make); for a URL someone gave, only when asked: a typo must not become a new workspace.
    create: bool = False
    organization: str | None = None  # None: the workspace's default organization
    username: str = ""  # resolve() sets it: WANDB_USERNAME or the operating-system user

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
        app_url: str | None = None,
        create: bool | None = None,
        organization: str | None = None,
    ) -> Settings:
        env = os.environ
        # Paths are made absolute here: the storage root is recorded in the database and read by clients
        # started from other folders.
        root = Path(root_dir or env.get("WANDB_DAGSTER_DIR") or _data_home() / "wandb-dagster").expanduser().absolute()
        url = database_url or env.get("WANDB_DAGSTER_DATABASE_URL") or f"sqlite:///{root / 'store.db'}"
        storage = _check_storage_root(storage_root or env.get("WANDB_DAGSTER_STORAGE") or str(root / "blobs"))
        if storage_options is None:
            raw_options = env.get("WANDB_DAGSTER_STORAGE_OPTIONS", "").strip()
            storage_options = _parse_storage_options(raw_options) if raw_options else {}
        elif not isinstance(storage_options, dict):
            raise ValueError(
                f"storage_options must be a dict of s3fs/gcsfs options, got {type(storage_options).__name__}"
            )
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
            app_url=_check_app_url(app) if (app := app_url or env.get("WANDB_DAGSTER_APP_URL", "").strip()) else None,
            create=bool(create) if create is not None else not (database_url or env.get("WANDB_DAGSTER_DATABASE_URL")),
            organization=organization or env.get("WANDB_DAGSTER_ORGANIZATION") or None,
            username=env.get("WANDB_USERNAME") or _default_entity(),
        )

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)
