"""The command an agent runs for a trial of a sweep with a ``program``: W&B's ``command`` and its macros.

As W&B's agent (wandb ``wandb_agent.Agent._command_run`` and ``sdk/launch/sweeps/utils``):

- the command defaults to ``${env} ${interpreter} ${program} ${args}``;
- an element that is exactly ``${name}`` expands to a list of elements (an unknown name to none), any
  other element is kept as it is, after ``${envvar:NAME}`` inside it is replaced by that environment
  variable (its name when unset);
- ``${env}`` is ``/usr/bin/env`` (nothing on Windows); ``${program}`` the configuration's ``program``;
  **ours**: ``${interpreter}`` is the agent's own Python (``sys.executable``), where W&B writes
  ``python``, so the program sees the packages the agent has, in or out of a virtual environment;
- the arguments are the trial's top-level parameters (a nested one is one argument holding its dict),
  written with Python's ``str``: ``${args}`` ``--lr=0.1``; ``${args_no_hyphens}`` ``lr=0.1``;
  ``${args_no_equals}`` ``--lr 0.1``; ``${args_no_boolean_flags}`` ``--flag`` for True, nothing for False;
  ``${args_json}`` one element, the JSON object; ``${args_json_file}`` the path of a file holding it;
  ``${args_append_hydra}`` ``+lr=0.1``; ``${args_override_hydra}`` ``++lr=0.1``.

The trial's parameters are also written, as W&B does, to ``<WANDB_DIR>/wandb/sweep-<id>/config-<run>.yaml``
(``WANDB_SWEEP_PARAM_PATH``): ``{name: {value: ...}}`` with ``wandb_version: 1``.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]
_ENVVAR = re.compile(r"\$\{envvar\:([A-Z0-9_]*)\}")


def macros(params: Mapping[str, Any]) -> dict[str, list[str]]:
    """Every argument macro's expansion for a trial's (nested) parameters, as W&B's
    ``create_sweep_command_args`` builds them.

        >>> macros({"lr": 0.1, "fast": False})["args"]
        ['--lr=0.1', '--fast=False']
    """
    out: dict[str, list[str]] = {k: [] for k in (
        "args", "args_no_hyphens", "args_no_equals", "args_no_boolean_flags", "args_append_hydra",
        "args_override_hydra",
    )}  # fmt: skip
    for name, value in params.items():
        flag = f"{name}={value}"
        out["args"].append("--" + flag)
        out["args_no_hyphens"].append(flag)
        out["args_no_equals"] += [f"--{name}", str(value)]
        out["args_append_hydra"].append("+" + flag)
        out["args_override_hydra"].append("++" + flag)
        if isinstance(value, bool):
            if value:
                out["args_no_boolean_flags"].append("--" + name)
        else:
            out["args_no_boolean_flags"].append("--" + flag)
    out["args_json"] = [json.dumps(dict(params))]
    return out


def _param_file_text(params: Mapping[str, Any]) -> str:
    document = {"wandb_version": 1, **{name: {"value": value} for name, value in params.items()}}
    try:
        import yaml
    except ImportError:
        return json.dumps(document, indent=2) + "\n"  # JSON is YAML too
    return yaml.safe_dump(document, default_flow_style=False, sort_keys=False)


def build(
    config: Mapping[str, Any], params: Mapping[str, Any], *, sweep_id: str, run_id: str, base_dir: str
) -> tuple[list[str], dict[str, str]]:
    """The argument list to run for a trial, and the files written for it (``param_path``, and
    ``args_json_file`` when the command uses it)."""
    folder = Path(base_dir) / "wandb" / f"sweep-{sweep_id}"
    folder.mkdir(parents=True, exist_ok=True)
    files = {"param_path": str(folder / f"config-{run_id}.yaml")}
    Path(files["param_path"]).write_text(_param_file_text(params))
    expansions = macros(params)
    expansions["env"] = [] if platform.system() == "Windows" else ["/usr/bin/env"]
    expansions["interpreter"] = [sys.executable]
    expansions["program"] = [str(config["program"])] if config.get("program") else []
    command = [str(c) for c in config.get("command") or DEFAULT_COMMAND]
    if "${args_json_file}" in command:
        files["args_json_file"] = str(folder / f"config-{run_id}.json")
        Path(files["args_json_file"]).write_text(expansions["args_json"][0])
        expansions["args_json_file"] = [files["args_json_file"]]
    out: list[str] = []
    for element in command:
        element = _ENVVAR.sub(lambda m: os.environ.get(m.group(1), m.group(1)), element)
        if element.startswith("${") and element.endswith("}"):
            out += expansions.get(element[2:-1]) or []
        else:
            out.append(element)
    return out, files
