"""The gates the test command runs: ruff (lint) and mypy (types), so `.ci/run` fails on a regression.

Each gate covers the paths listed below, the ones made clean so far; widen a list when another part of the
code is clean (``ruff check <path>``, ``mypy <path>`` from the .venv), never narrow it to get a test through.
The rules themselves are in pyproject.toml ([tool.ruff], [tool.mypy]), passed explicitly so that the gates
read the same configuration wherever pytest is started from.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Paths relative to the repository root.
RUFF_PATHS = [
    "bench",
    "dev.py",
    "example_pipelines",
    "tests",
    "wandb_dagster",
]
MYPY_PATHS = [
    "bench",
    "dev.py",
    "example_pipelines",
    "tests/storage",
    "wandb_dagster",
]

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pyproject.toml"


def _tool(module: str) -> list[str]:
    """The command that runs ``module`` with this interpreter (the .venv that `python3 dev.py test` made)."""
    if importlib.util.find_spec(module) is None:
        pytest.fail(
            f"{module} is not installed for {sys.executable}; run the tests with `python3 dev.py test`, which "
            "installs the dev extra (ruff and mypy are in it)",
            pytrace=False,
        )
    return [sys.executable, "-m", module]


def _ruff(paths: list[str]) -> subprocess.CompletedProcess[str]:
    command = [*_tool("ruff"), "check", "--no-cache", "--config", str(CONFIG), "--output-format", "concise", *paths]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _mypy(paths: list[str]) -> subprocess.CompletedProcess[str]:
    # No cache: nothing is written into the repository, and a stale cache can never hide an error.
    command = [*_tool("mypy"), "--config-file", str(CONFIG), "--cache-dir", os.devnull, *paths]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("paths", [RUFF_PATHS, MYPY_PATHS], ids=["ruff", "mypy"])
def test_every_gated_path_exists(paths: list[str]) -> None:
    # A misspelt or moved path would otherwise be checked by nobody.
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"gated paths that do not exist (moved? update tests/test_gates.py): {missing}"


def test_ruff_is_clean() -> None:
    result = _ruff(RUFF_PATHS)
    assert result.returncode == 0, (
        f"ruff check reports problems in {RUFF_PATHS}.\nFix them (`.venv/bin/ruff check --fix <path>` does the "
        f"mechanical ones); ignore a rule only in pyproject.toml, with a one-line reason.\n"
        f"{result.stdout}{result.stderr}"
    )


@pytest.mark.slow
def test_mypy_is_clean() -> None:
    result = _mypy(MYPY_PATHS)
    assert result.returncode == 0, f"mypy reports errors in {MYPY_PATHS}:\n{result.stdout}{result.stderr}"


@pytest.mark.slow
def test_the_gates_fail_on_a_regression(tmp_path: Path) -> None:
    # The gates must be able to fail: the same commands and configuration on a file with one lint problem
    # (an unused import) and one type error.
    bad = tmp_path / "regression.py"
    bad.write_text('import os\n\n\ndef half(n: int) -> int:\n    return "half"\n')
    lint = _ruff([str(bad)])
    assert lint.returncode != 0 and "F401" in lint.stdout, lint.stdout + lint.stderr
    types = _mypy([str(bad)])
    assert types.returncode != 0 and "Incompatible return value type" in types.stdout, types.stdout + types.stderr
