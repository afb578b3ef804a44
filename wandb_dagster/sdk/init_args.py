"""The arguments of ``init``, checked and resolved before anything is opened or written.

:func:`validate` turns what ``wandb.init`` was given (and the ``WANDB_*`` environment variables that stand in
for arguments) into :class:`InitArgs`; a bad value is a ValueError that names it.

    >>> from wandb_dagster.sdk.init_args import validate
    >>> validate(id="a b")                                 # doctest: +SKIP
    Traceback (most recent call last):
    ValueError: Run id 'a b' is invalid: ids are non-empty and contain no '/', ':' or spaces.
"""

from __future__ import annotations

import os
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wandb_dagster.sdk.names import normalize_project_name, validate_tags
from wandb_dagster.sdk.values import json_value
from wandb_dagster.settings import Settings

_MODES = (None, "online", "offline", "disabled", "shared", "dryrun", "run")
# W&B's older spellings of the modes (its Settings accepts them).
_MODE_ALIASES = {"dryrun": "offline", "run": "online"}
CONFIG_DEFAULTS_FILE = "config-defaults.yaml"
_RESUME_MODES = (None, "allow", "must", "never", "auto")
_RUN_ID_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class InitArgs:
    """What ``init`` was asked for, checked. ``tags``, ``name`` and ``notes`` stay None when not given (a
    resumed run keeps its own then); ``config`` is JSON already."""

    settings: Settings
    mode: str | None
    run_id: str
    resume: str | None
    config: dict[str, Any]
    config_defaults: dict[str, Any]
    tags: list[str] | None
    name: str | None
    group: str | None
    job_type: str | None
    notes: str | None

    @property
    def resumed(self) -> bool:
        """True when the run continues one that exists (resume "allow", "must" or "auto")."""
        return self.resume in ("allow", "must", "auto")


def new_run_id() -> str:
    return "".join(secrets.choice(_RUN_ID_ALPHABET) for _ in range(8))


def check_mode(mode: str | None) -> None:
    if mode not in _MODES:
        raise ValueError(f"mode={mode!r} is invalid: use 'online', 'offline' or 'disabled'.")


def resolve_mode(mode: str | None) -> str | None:
    """``mode``, else ``WANDB_MODE``, checked; W&B's ``dryrun``/``run`` read as ``offline``/``online``.
    Every mode runs locally; ``disabled`` records into a throwaway workspace (sdk/run.py)."""
    if mode is None:
        env = os.environ.get("WANDB_MODE", "").strip()
        if env:
            if env not in _MODES:
                raise ValueError(
                    f"WANDB_MODE={env!r} is invalid: use 'online', 'offline' or 'disabled', or unset it."
                )
            mode = env
    check_mode(mode)
    return _MODE_ALIASES.get(mode, mode) if mode is not None else None


def _env(name: str) -> str | None:
    """A W&B environment variable that stands in for an init argument (unset or empty: None)."""
    value = os.environ.get(name)
    return value if value else None


def _env_tags() -> list[str] | None:
    raw = _env("WANDB_TAGS")
    if raw is None:
        return None
    # W&B splits WANDB_TAGS on commas.
    return [tag.strip() for tag in raw.split(",") if tag.strip()]


def config_defaults(directory: str | os.PathLike | None = None) -> dict[str, Any]:
    """``config-defaults.yaml`` of the working directory (or ``directory``), as W&B reads it: each key
    holds ``{desc: ..., value: ...}`` and its ``value`` is the default; ``wandb_version: 1`` is skipped.
    **Ours**: a key without ``value`` (``lr: 0.1``) is taken as it is, where W&B fails. No file: ``{}``."""
    path = os.path.join(os.fspath(directory) if directory is not None else os.getcwd(), CONFIG_DEFAULTS_FILE)
    if not os.path.isfile(path):
        return {}
    try:
        import yaml
    except ImportError:
        raise ValueError(
            f"{path} exists but PyYAML is not installed, so it cannot be read; pip install pyyaml, or remove "
            "the file."
        ) from None
    try:
        with open(path, encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path} cannot be read as YAML ({exc}); fix or remove it.") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(
            f"{path} must map config keys to values (e.g. 'epochs: {{desc: ..., value: 100}}'), got "
            f"{type(loaded).__name__}; fix or remove it."
        )
    version = loaded.pop("wandb_version", None)
    if version not in (None, 1):
        raise ValueError(f"{path} has wandb_version {version!r}; only version 1 is known.")
    return {
        str(k): json_value(v["value"] if isinstance(v, dict) and "value" in v else v, f"config.{k}")
        for k, v in loaded.items()
    }


def validate(
    *,
    project: str | None = None,
    entity: str | None = None,
    config: dict | Any = None,
    job_type: str | None = None,
    name: str | None = None,
    tags: Sequence[str] | None = None,
    group: str | None = None,
    id: str | None = None,
    resume: bool | str | None = None,
    notes: str | None = None,
    settings: Settings | dict | None = None,
    mode: str | None = None,
    config_exclude_keys: Sequence[str] | None = None,
    config_include_keys: Sequence[str] | None = None,
) -> InitArgs:
    """Check ``init``'s arguments (those it does not accept for W&B compatibility only) and resolve them.

    An argument wins over the W&B environment variable that stands in for it: ``WANDB_MODE``,
    ``WANDB_RUN_ID``, ``WANDB_RESUME``, ``WANDB_NAME``, ``WANDB_NOTES``, ``WANDB_TAGS`` (comma-separated),
    ``WANDB_RUN_GROUP``, ``WANDB_JOB_TYPE`` (and ``WANDB_ENTITY``/``WANDB_PROJECT`` in Settings).
    """
    mode = resolve_mode(mode)
    if resume is None:
        resume = _env("WANDB_RESUME")
    if name is None:
        name = _env("WANDB_NAME")
    if notes is None:
        notes = _env("WANDB_NOTES")
    if tags is None:
        tags = _env_tags()
    resolved = resolve_settings(settings, entity, project)
    if normalize_project_name(resolved.project) != resolved.project:
        resolved = resolved.replace(project=normalize_project_name(resolved.project))
    cfg = _config(config, config_exclude_keys, config_include_keys)
    for what, text in (("name", name), ("group", group), ("job_type", job_type), ("notes", notes)):
        # PostgreSQL cannot store NUL in text (docs/architecture.md, "Input limits"): refused on both.
        if isinstance(text, str) and "\x00" in text:
            raise ValueError(
                f"Run {what} {text!r} contains a NUL character (\\x00), which cannot be stored; remove it."
            )
    return InitArgs(
        settings=resolved,
        mode=mode,
        run_id=_run_id(id),
        resume=_resume_mode(resume),
        config={k: json_value(v, f"config.{k}") for k, v in cfg.items()},
        config_defaults=config_defaults(),
        tags=None if tags is None else validate_tags(list(tags)),
        name=name,
        group=group or _env("WANDB_RUN_GROUP"),
        job_type=job_type or _env("WANDB_JOB_TYPE"),
        notes=notes,
    )


def resolve_settings(settings: Any, entity: str | None, project: str | None) -> Settings:
    """``settings`` (None, a dict of Settings fields, or Settings) with ``entity``/``project`` applied."""
    if settings is None:
        return Settings.resolve(entity=entity, project=project)
    if isinstance(settings, Settings):
        return settings.replace(**{k: v for k, v in (("entity", entity), ("project", project)) if v})
    if isinstance(settings, dict):
        known = set(Settings.__dataclass_fields__)
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"Unknown settings {unknown}; valid settings: {sorted(known)}.")
        return Settings.resolve(entity=entity, project=project, **settings)
    raise ValueError(f"settings must be a dict or wandb_dagster.Settings, got {type(settings).__name__}.")


def _run_id(given: str | None) -> str:
    run_id = given or os.environ.get("WANDB_RUN_ID") or new_run_id()
    if not isinstance(run_id, str) or not run_id or any(c in run_id for c in "/: "):
        raise ValueError(f"Run id {run_id!r} is invalid: ids are non-empty and contain no '/', ':' or spaces.")
    return run_id


def _resume_mode(resume: bool | str | None) -> str | None:
    """``resume=True`` is "allow", False is None (a new run)."""
    mode = {True: "allow", False: None}.get(resume, resume) if isinstance(resume, bool) else resume
    if mode not in _RESUME_MODES:
        raise ValueError(f"resume={resume!r} is invalid: use 'allow', 'must', 'never', 'auto' or True.")
    return mode


def _config(config: Any, exclude: Sequence[str] | None, include: Sequence[str] | None) -> dict[str, Any]:
    """``config`` (a dict, or an object such as argparse.Namespace) as a dict, filtered by the key lists."""
    cfg = dict(config or {}) if isinstance(config, dict) or config is None else dict(vars(config))
    if exclude:
        cfg = {k: v for k, v in cfg.items() if k not in exclude}
    if include:
        cfg = {k: v for k, v in cfg.items() if k in include}
    return cfg
