"""``wandb.Settings(...)``, ``wandb.setup(...)``, ``wandb.teardown()`` and ``wandb.login(...)``, as W&B's SDK has them.

    >>> import wandb_dagster as wandb
    >>> wandb.setup(wandb.Settings(mode="offline", project="demo"))     # doctest: +SKIP
    >>> run = wandb.init(settings=wandb.Settings(run_group="exp-1"))    # doctest: +SKIP

A ``Settings`` holds W&B setting names. Those that mean something here are used: ``mode``, ``project``,
``entity``, ``run_id``, ``run_name``, ``run_notes``, ``run_tags``, ``run_group``, ``run_job_type``,
``resume``, ``reinit``, the run's console capture and system metrics (``console``, ``x_disable_stats``,
``x_stats_sampling_interval``, ``x_stats_disk_paths``: :func:`run_options`), and this project's workspace
settings (``database_url``, ``storage_root``, ``storage_options``, ``cache_dir``, ``cache_size``,
``root_dir``, ``download_hardlinks``...). W&B's settings about its server and its background process
(``silent``, ``start_method``, other ``x_*``...) are accepted and have no effect (docs/behaviour.md section
5). A name W&B does not have is a ValueError naming the valid ones. ``wandb.init``'s own arguments win over
its settings, and those over the settings given to ``wandb.setup``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from wandb_dagster.settings import Settings as WorkspaceSettings

# W&B setting name -> the wandb.init argument it stands for.
INIT_SETTINGS = {
    "mode": "mode", "project": "project", "entity": "entity", "run_id": "id", "run_name": "name",
    "run_notes": "notes", "run_tags": "tags", "run_group": "group", "run_job_type": "job_type",
    "resume": "resume", "reinit": "reinit",
}  # fmt: skip
# W&B settings that concern its server, console, background process or code saving: accepted, no effect.
NO_EFFECT_SETTINGS = frozenset(
    (  # noqa: SIM905  (a word list reads better as words)
    "anonymous api_key app_url base_url code_dir console_multipart disable_code disable_git "
    "disable_job_creation email heartbeat_seconds host identity_token_file ignore_globs init_timeout "
    "insecure_disable_ssl label_disable notebook_name program program_abspath program_relpath quiet "
    "relogin save_code show_colors show_emoji show_errors show_info show_warnings silent "
    "start_method strict sweep_id sync_tensorboard table_raise_on_max_row_limit_exceeded username "
    "x_disable_machine_info x_disable_meta x_disable_service x_label x_primary "
    "x_show_operation_stats x_update_finish_state "
    ).split()
)
WORKSPACE_SETTINGS = frozenset(f.name for f in dataclasses.fields(WorkspaceSettings))
# W&B settings of the run's console capture and system monitor (run_options), with their older names.
RUN_SETTINGS = frozenset(
    ("console", "x_disable_stats", "x_stats_sampling_interval", "x_stats_disk_paths", "_disable_stats",
     "_stats_sample_rate_seconds")
)  # fmt: skip


class Settings:
    """W&B-style settings: ``wandb.Settings(mode="offline", run_group="g")``; see the module docstring.

    ``Settings.resolve(...)`` resolves this project's workspace configuration
    (:meth:`wandb_dagster.settings.Settings.resolve`).
    """

    resolve = staticmethod(WorkspaceSettings.resolve)

    def __init__(self, **settings: Any) -> None:
        unknown = sorted(
            k for k in settings
            if k not in INIT_SETTINGS and k not in WORKSPACE_SETTINGS and k not in NO_EFFECT_SETTINGS
            and k not in RUN_SETTINGS and not k.startswith(("x_", "_"))
        )  # fmt: skip
        if unknown:
            raise ValueError(
                f"Unknown settings {unknown}; settings used here: {sorted(INIT_SETTINGS)} and "
                f"{sorted(WORKSPACE_SETTINGS)} (W&B's others, such as 'silent' or 'start_method', are accepted "
                "and have no effect)."
            )
        object.__setattr__(self, "_values", dict(settings))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._values.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        merged = Settings(**{**self._values, name: value})
        object.__setattr__(self, "_values", merged._values)

    def update(self, settings: Settings | dict[str, Any] | None = None, **values: Any) -> None:
        """Set several settings at once (W&B's ``Settings.update``)."""
        more = settings._values if isinstance(settings, Settings) else dict(settings or {})
        object.__setattr__(self, "_values", Settings(**{**self._values, **more, **values})._values)

    def merged_over(self, base: Settings | None) -> Settings:
        """These settings, with ``base``'s where these leave a setting unset."""
        return Settings(**{**(base._values if base is not None else {}), **self._values})

    def init_values(self) -> dict[str, Any]:
        """The ``wandb.init`` arguments these settings stand for."""
        return {INIT_SETTINGS[k]: v for k, v in self._values.items() if k in INIT_SETTINGS and v is not None}

    def workspace_values(self) -> dict[str, Any]:
        """The workspace settings (``Settings.resolve`` arguments) among these."""
        # entity and project are init arguments (INIT_SETTINGS), which win over settings there.
        return {
            k: v for k, v in self._values.items()
            if k in WORKSPACE_SETTINGS and k not in INIT_SETTINGS and v is not None
        }  # fmt: skip

    def __repr__(self) -> str:
        shown = {k: ("***" if k in ("storage_options", "api_key") else v) for k, v in self._values.items()}
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


_global: Settings | None = None


class _Setup:
    """What ``wandb.setup()`` returns: the process-wide settings."""

    def __init__(self, settings: Settings | None) -> None:
        self.settings = settings or Settings()

    def __repr__(self) -> str:
        return f"<wandb setup {self.settings!r}>"


def setup(settings: Settings | dict[str, Any] | None = None) -> _Setup:
    """``wandb.setup``: settings every later ``init`` starts from (its own settings and arguments win)."""
    global _global
    if settings is not None:
        given = settings if isinstance(settings, Settings) else Settings(**dict(settings))
        _global = given.merged_over(_global)
    return _Setup(_global)


def teardown(exit_code: int | None = None) -> None:
    """``wandb.teardown``: finish the runs still active and forget the settings ``setup`` was given."""
    global _global
    from wandb_dagster.sdk import run as run_mod

    for active in list(run_mod._active_runs):
        active.finish(exit_code=exit_code)
    _global = None


def global_settings() -> Settings | None:
    return _global


def for_init(settings: Any) -> tuple[dict[str, Any], Any]:
    """``init``'s ``settings`` over ``setup``'s: (the init arguments they stand for, what to resolve the
    workspace settings from: a WorkspaceSettings, a dict of its fields, or None)."""
    if isinstance(settings, WorkspaceSettings):
        return (_global.init_values() if _global is not None else {}), settings
    if settings is None:
        merged = _global
    elif isinstance(settings, Settings):
        merged = settings.merged_over(_global)
    elif isinstance(settings, dict):
        merged = Settings(**settings).merged_over(_global)
    else:
        raise ValueError(f"settings must be a dict or wandb_dagster.Settings, got {type(settings).__name__}.")
    if merged is None:
        return {}, None
    return merged.init_values(), (merged.workspace_values() or None)


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What a run captures besides what it logs: the console (``console``: W&B's modes, ``"off"`` for none)
    and system metrics (off when ``disable_stats``; a sample every ``stats_interval`` seconds; disk usage of
    ``stats_disk_paths``)."""

    console: str = "auto"
    disable_stats: bool = False
    stats_interval: float = 15.0  # W&B's default x_stats_sampling_interval
    stats_disk_paths: tuple[str, ...] = ("/",)


# W&B setting -> its environment variables (W&B maps WANDB_X_NAME and WANDB__NAME to x_name).
_RUN_ENV = {
    "console": ("WANDB_CONSOLE",),
    "x_disable_stats": ("WANDB_X_DISABLE_STATS", "WANDB__DISABLE_STATS"),
    "x_stats_sampling_interval": ("WANDB_X_STATS_SAMPLING_INTERVAL", "WANDB__STATS_SAMPLING_INTERVAL"),
    "x_stats_disk_paths": ("WANDB_X_STATS_DISK_PATHS", "WANDB__STATS_DISK_PATHS"),
}
# Older W&B names of the same settings.
_RUN_ALIASES = {"_disable_stats": "x_disable_stats", "_stats_sample_rate_seconds": "x_stats_sampling_interval"}


def run_options(settings: Any, environ: Mapping[str, str] | None = None) -> RunOptions:
    """The run options ``init``'s ``settings`` (over ``setup``'s, over the environment) ask for, as W&B
    resolves ``console``, ``x_disable_stats``, ``x_stats_sampling_interval`` and ``x_stats_disk_paths``."""
    from wandb_dagster.sdk.console import CONSOLE_MODES

    env = os.environ if environ is None else environ
    merged: Settings | None
    if isinstance(settings, Settings):
        merged = settings.merged_over(_global)
    elif isinstance(settings, dict):
        merged = Settings(**settings).merged_over(_global)
    else:
        merged = _global
    given = dict(merged._values) if merged is not None else {}
    values: dict[str, Any] = {}
    for name, variables in _RUN_ENV.items():
        for var in variables:
            if env.get(var, "").strip():
                values[name] = env[var].strip()
                break
    for old, new in _RUN_ALIASES.items():
        if given.get(old) is not None:
            values[new] = given[old]
    values.update({k: v for k, v in given.items() if k in _RUN_ENV and v is not None})
    console = str(values.get("console", "auto"))
    if console not in CONSOLE_MODES:
        raise ValueError(f"console={console!r} is invalid; use one of {list(CONSOLE_MODES)} (or WANDB_CONSOLE=off).")
    disable = values.get("x_disable_stats", False)
    if isinstance(disable, str):
        if disable.lower() not in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            raise ValueError(f"x_disable_stats={disable!r} is not a boolean; use true or false.")
        disable = disable.lower() in ("true", "1", "yes", "on")
    raw_interval = values.get("x_stats_sampling_interval", 15.0)
    try:
        interval = float(raw_interval)
    except (TypeError, ValueError):
        raise ValueError(
            f"x_stats_sampling_interval={raw_interval!r} is not a number of seconds; use e.g. 15."
        ) from None
    if not interval >= 0.1:
        raise ValueError(
            f"x_stats_sampling_interval={raw_interval!r} is too small: the stats sampling interval cannot be less "
            "than 0.1 seconds, as in W&B."
        )
    paths = values.get("x_stats_disk_paths", ("/",))
    if isinstance(paths, str):
        paths = [p for p in paths.split(",") if p]
    return RunOptions(
        console=console, disable_stats=bool(disable), stats_interval=interval, stats_disk_paths=tuple(paths or ())
    )


def login(
    key: str | None = None,
    relogin: bool | None = None,
    host: str | None = None,
    force: bool | None = None,
    timeout: int | None = None,
    verify: bool = True,
    referrer: str | None = None,
    anonymous: Any = None,
) -> bool:
    """``wandb.login``: accepted, and returns False, as W&B's login does offline ("unable to verify").

    There is no server and no account: a workspace is reached with its database URL, and who may use it
    is decided by the database's and the bucket's own permissions (README, "Where things live").
    """
    return False
