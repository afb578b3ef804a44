"""The seed documents: W&B documentation pages kept beside the repository, in ``../shared/seeds``.

They are not part of the repository, so a clone without ``../shared`` has none. Tests that read them call
:func:`seed_path` (or :func:`seed_blocks`): in CI (``CI=true``) a missing seed is a failure that says where
it was looked for; elsewhere the test skips with that reason. The behaviours those tests check are also
checked by tests/sdk/test_seed_behaviours.py, with the samples copied in, so they stay tested without the
seeds. ``WANDB_DAGSTER_SEEDS_DIR`` points the tests at another folder of seeds.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import wandb_dagster

SEEDS_DIR_ENV = "WANDB_DAGSTER_SEEDS_DIR"
# tests/sdk/_seeds.py -> the folder that holds the repository -> shared/seeds
DEFAULT_SEEDS_DIR = Path(__file__).resolve().parents[3] / "shared" / "seeds"


def seeds_dir() -> Path:
    return Path(os.environ.get(SEEDS_DIR_ENV) or DEFAULT_SEEDS_DIR)


def _required() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def seed_path(prefix: str, folder: Path | None = None) -> Path:
    """The seed document named ``{prefix}_*.txt`` (e.g. ``"003"``) in ``folder`` (default :func:`seeds_dir`).

    When there is none: fails under ``CI=true``, skips elsewhere; more than one is always a failure.
    """
    folder = seeds_dir() if folder is None else folder
    found = sorted(folder.glob(f"{prefix}_*.txt"))
    if len(found) == 1:
        return found[0]
    if found:
        pytest.fail(f"several seed documents match {prefix}_*.txt in {folder}: {[p.name for p in found]}")
    reason = (
        f"seed document {prefix}_*.txt not found in {folder} (the seeds live beside the repository, in "
        f"../shared/seeds; {SEEDS_DIR_ENV} names another folder)"
    )
    if _required():
        pytest.fail(
            f"{reason}. CI=true requires the seed tests: check out ../shared next to the repository.",
            pytrace=False,
        )
    pytest.skip(reason)


def seed_blocks(prefix: str, folder: Path | None = None) -> list[str]:
    """The ```python blocks of a seed document, in order."""
    blocks: list[str] = []
    current: list[str] | None = None
    for line in seed_path(prefix, folder).read_text(encoding="utf-8").splitlines():
        if current is None and line.strip() == "```python":
            current = []
        elif current is not None and line.strip() == "```":
            blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def run_block(code: str, namespace: dict, **placeholders: str) -> dict:
    """Run a seed's code block as written, ``wandb`` being wandb_dagster; ``<name>`` placeholders replaced."""
    # Only the line "import wandb" (not "import wandb_dagster.reports as wr", which a block may hold).
    code = re.sub(r"^[ \t]*import wandb[ \t]*(#.*)?$", "", code, flags=re.M)
    for key, value in placeholders.items():
        code = code.replace(f"<{key}>", value)
    assert not re.search(r'"<[a-z-]+>"', code), f"unreplaced placeholder in:\n{code}"
    namespace.setdefault("wandb", wandb_dagster)
    exec(compile(code, "<seed>", "exec"), namespace)
    return namespace
