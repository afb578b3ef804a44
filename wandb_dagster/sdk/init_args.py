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

_MODES = (None, "online", "offline", "disabled", "shared")
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
    """Check ``init``'s arguments (those it does not accept for W&B compatibility only) and resolve them."""
    check_mode(mode)
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
        tags=None if tags is None else validate_tags(list(tags)),
        name=name,
        group=group or os.environ.get("WANDB_RUN_GROUP"),
        job_type=job_type or os.environ.get("WANDB_JOB_TYPE"),
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
