"""The import contract, read from the source (an AST walk over wandb_dagster/, imports inside functions and
under TYPE_CHECKING included):

- only wandb_dagster/store/ knows SQL: no module outside it imports SQLAlchemy, the store's schema or any
  store module that builds SQL; outside the store, only the package itself (``Store`` and its errors),
  ``store.records``, ``store.errors`` and ``store.scope`` (the typed scope the API reads with) are public;
- the layers are settings < storage < store < sdk < api < app < dagster < cli (reports/ and launch/ sit with
  api): a module imports its own layer and those below it, never one above;
- ``import wandb_dagster`` does not import dagster (the Dagster integration is optional).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "wandb_dagster"
# app is the web app (`wandb-dagster ui`, Starlette); cli (the wandb-dagster command line) is on top.
LAYERS = ("settings", "storage", "store", "sdk", "api", "app", "dagster", "cli")
# Packages that sit with the api layer: the Report API (``Api().reports`` returns its objects) and Launch
# (``Api().job(...).call`` enqueues through it).
API_LEVEL_PACKAGES = {"reports", "launch"}
# The package's __init__ re-exports the SDK and the Api, and plot.py the SDK's charts (``wandb.plot``): they
# sit with the api layer.
TOP_LEVEL_LAYER = "api"
TOP_LEVEL_MODULES = {"__init__.py", "plot.py"}
STORE_PUBLIC = {"wandb_dagster.store", "wandb_dagster.store.records", "wandb_dagster.store.errors",
                "wandb_dagster.store.scope"}
# Files that may still break the SQL rule, each with the reason; keep this empty.
SQL_ALLOWED: set[str] = set()
# Imports of a higher layer that are known and not fixed yet: (file, module) -> why; keep this empty.
LAYER_EXCEPTIONS = {
    # The storage-root check reuses the credential detector of storage/ (a leaf module importing nothing of
    # the package); it goes when that helper moves below settings (or the check into storage/).
    ("settings.py", "wandb_dagster.storage.uri_credentials"): "storage-root credential check",
}


def _modules() -> dict[str, Path]:
    return {str(path.relative_to(PACKAGE)): path for path in sorted(PACKAGE.rglob("*.py"))}


def _module_name(relative: str) -> str:
    parts = ["wandb_dagster", *Path(relative).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(relative: str, source: str) -> list[tuple[int, str]]:
    """(line, module) of every import in ``source``: ``from a import b`` gives ``a.b`` when that is a
    module of the package, else ``a``; relative imports are resolved against ``relative``."""
    package = _module_name(relative).split(".")
    if not relative.endswith("__init__.py"):
        package = package[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add((node.lineno, full if base.startswith("wandb_dagster") and _is_module(full) else base))
    return sorted(found)


def _sql_violations(relative: str, source: str) -> list[str]:
    bad = []
    for line, name in imports(relative, source):
        sql = name == "sqlalchemy" or name.startswith("sqlalchemy.")
        internal = name.startswith("wandb_dagster.store.") and name not in STORE_PUBLIC
        if sql or internal:
            bad.append(f"wandb_dagster/{relative}:{line} imports {name}")
    return bad


def _layer(relative: str) -> str:
    first = Path(relative).parts[0]
    if first in TOP_LEVEL_MODULES:
        return TOP_LEVEL_LAYER
    if first == "__main__.py":  # python -m wandb_dagster: the command line
        return "cli"
    name = first.removesuffix(".py")
    return "api" if name in API_LEVEL_PACKAGES else name


def _layer_violations(relative: str, source: str) -> list[str]:
    own = LAYERS.index(_layer(relative))
    bad = []
    for line, name in imports(relative, source):
        parts = name.split(".")
        if parts[0] == "dagster" and own < LAYERS.index("dagster"):
            bad.append(f"wandb_dagster/{relative}:{line} imports dagster (only wandb_dagster/dagster/ may)")
        if (relative, name) in LAYER_EXCEPTIONS:
            continue
        target = "api" if len(parts) > 1 and parts[1] in API_LEVEL_PACKAGES else (parts[1] if len(parts) > 1 else "")
        if parts[0] == "wandb_dagster" and target in LAYERS and LAYERS.index(target) > own:
            bad.append(f"wandb_dagster/{relative}:{line} ({LAYERS[own]}) imports {name} ({target}, a higher layer)")
    return bad


def test_only_the_store_imports_sqlalchemy_and_the_store_internals() -> None:
    bad = []
    for relative, path in _modules().items():
        if relative.startswith("store/") or relative in SQL_ALLOWED:
            continue
        bad += _sql_violations(relative, path.read_text())
    assert not bad, (
        "only wandb_dagster/store/ may build SQL; outside it use Store's methods and "
        f"{sorted(STORE_PUBLIC)}:\n" + "\n".join(bad)
    )


def test_the_allow_lists_name_imports_that_still_exist() -> None:
    modules = _modules()
    for relative in SQL_ALLOWED:
        assert relative in modules, f"{relative} is allow-listed but does not exist; remove it from SQL_ALLOWED"
        assert _sql_violations(relative, modules[relative].read_text()), (
            f"{relative} no longer imports SQL; remove it from SQL_ALLOWED"
        )
    for relative, name in LAYER_EXCEPTIONS:
        found = [imported for _, imported in imports(relative, modules[relative].read_text())]
        assert name in found, f"{relative} no longer imports {name}; remove it from LAYER_EXCEPTIONS"


def test_layers_import_only_themselves_and_lower_layers() -> None:
    bad = []
    for relative, path in _modules().items():
        bad += _layer_violations(relative, path.read_text())
    assert not bad, f"layers are {' < '.join(LAYERS)}; a module may not import a higher one:\n" + "\n".join(bad)


def test_the_checks_see_what_they_forbid() -> None:
    # The walk must catch every form of import, or the contract above passes vacuously.
    source = (
        "import sqlalchemy as sa\n"
        "from sqlalchemy.engine import make_url\n"
        "def f():\n    from wandb_dagster.store import schema, Store\n"
        "from ..store.paging import Driver\n"
        "from wandb_dagster.api import Api\n"
    )
    found = _sql_violations("sdk/example.py", source)
    assert [v.split(" imports ")[1] for v in found] == [
        "sqlalchemy", "sqlalchemy.engine", "wandb_dagster.store.schema", "wandb_dagster.store.paging"
    ]
    assert _layer_violations("sdk/example.py", source) == [
        "wandb_dagster/sdk/example.py:6 (sdk) imports wandb_dagster.api (api, a higher layer)"
    ]
    assert _layer_violations("store/example.py", "import dagster\n") == [
        "wandb_dagster/store/example.py:1 imports dagster (only wandb_dagster/dagster/ may)"
    ]


def test_import_wandb_dagster_does_not_import_dagster() -> None:
    code = "import sys, wandb_dagster; print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
