"""``import wandb_dagster`` stays light (issue 17: at most 0.15 s): SQLAlchemy and the store's SQL modules are
imported when a workspace is first opened (``init``, ``Api()``), not by the import; the names they provide
still resolve from the package and from ``wandb_dagster.store``."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_import_wandb_dagster_does_not_import_sqlalchemy() -> None:
    code = "import sys, wandb_dagster; print(sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy'))"
    assert _run(code) == "[]"


def test_the_lazy_names_resolve_on_first_use() -> None:
    code = (
        "import sys, wandb_dagster as wandb\n"
        "from wandb_dagster.store import EVENT_TYPES, Store, validate_filter\n"
        "from wandb_dagster import Api\n"
        "print(Api is wandb.Api, Store.__name__, 'CREATE_ARTIFACT' in EVENT_TYPES, callable(validate_filter),\n"
        "      callable(wandb.plot.line), 'sqlalchemy' in sys.modules)"
    )
    assert _run(code) == "True Store True True True True"
