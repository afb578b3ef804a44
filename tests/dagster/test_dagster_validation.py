"""Failing before the compute runs: options checked when definitions load (also under `dagster definitions
validate`), the workspace checked in resource setup, no silent creation of a mistyped SQLite workspace, sensors
on a collection that does not exist, and input errors that say what exists and whose input failed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from wandb_dagster.dagster import validate_definitions

# ------------------------------------------------------------------------ options, when definitions load


def test_validate_definitions_names_asset_bad_key_and_closest() -> None:
    @dg.asset(metadata={"wandb": {"serialiser": "joblib"}})
    def features() -> dict:
        return {}

    @dg.asset(ins={"features": dg.AssetIn(metadata={"wandb": {"aliass": "production"}})},
              metadata={"wandb": {"link_to": [{"target": "wandb-registry-model/m", "alias": ["staging"]}]}})
    def model(features: dict) -> dict:
        return features

    @dg.op(out=dg.Out(metadata={"wandb": {"typ": "model"}}))
    def step() -> int:
        return 1

    @dg.job
    def op_job() -> None:
        step()

    with pytest.raises(ValueError) as raised:
        validate_definitions(dg.Definitions(assets=[features, model], jobs=[op_job]))
    message = str(raised.value)
    assert "4 problems" in message
    assert "asset 'features': unknown option 'serialiser' (did you mean 'serializer'?)" in message
    assert "valid keys: ['type', 'description', 'aliases'" in message
    # An input's problem names the downstream asset and its input, and what it reads.
    assert "input 'features' of asset 'model' (reads asset 'features'): unknown option 'aliass' (did you mean " \
           "'alias'?)" in message
    assert "link_to.0: unknown key 'alias' (did you mean 'aliases'?); valid keys: ['target', 'aliases']" in message
    assert "output 'result' of op 'step': unknown option 'typ' (did you mean 'type'?)" in message


def test_validate_definitions_returns_valid_definitions() -> None:
    @dg.asset(metadata={"wandb": {"serializer": "json", "link_to": "wandb-registry-model/m"}})
    def features() -> dict:
        return {}

    @dg.asset(ins={"features": dg.AssetIn(metadata={"wandb": {"alias": "production"}})})
    def model(features: dict) -> dict:
        return features

    defs = dg.Definitions(assets=[features, model, dg.AssetSpec("external")])
    assert validate_definitions(defs) is defs


_DEFS_FILE = '''
import dagster as dg
from wandb_dagster.dagster import WandbArtifactIOManager, WandbResource, validate_definitions

@dg.asset(metadata={{"wandb": {output}}})
def trained_model() -> dict:
    return {{}}

@dg.asset(ins={{"trained_model": dg.AssetIn(metadata={{"wandb": {input}}})}})
def evaluation(trained_model: dict) -> float:
    return 1.0

wandb = WandbResource(database_url="sqlite:////nonexistent/never/opened.db")
defs = validate_definitions(dg.Definitions(
    assets=[trained_model, evaluation],
    resources={{"wandb": wandb, "io_manager": WandbArtifactIOManager(wandb=wandb)}},
))
'''


def _definitions_validate(tmp_path: Path, output: dict, input: dict) -> subprocess.CompletedProcess:
    """``dagster definitions validate`` (the venv's console script, as a user runs it) on a small module."""
    path = tmp_path / "defs.py"
    path.write_text(_DEFS_FILE.format(output=output, input=input))
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DAGSTER_HOME": str(home)}
    dagster = Path(sys.executable).parent / "dagster"
    return subprocess.run(
        [str(dagster), "definitions", "validate", "-f", str(path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=180,
    )


@pytest.mark.parametrize(
    ("output", "input", "expected"),
    [
        ({"serialiser": "joblib"}, {}, "asset 'trained_model': unknown option 'serialiser' (did you mean 'serializer'?)"),
        # An output's aliases are a list under "aliases"; "alias" is the input's key.
        ({"alias": ["staging"]}, {}, "asset 'trained_model': unknown option 'alias' (did you mean 'aliases'?)"),
        ({}, {"aliases": "production"},
         "input 'trained_model' of asset 'evaluation' (reads asset 'trained_model'): unknown option 'aliases' "
         "(did you mean 'alias'?)"),
        ({"link_to": [{"target": "wandb-registry-model/m", "alias": ["staging"]}]}, {},
         "link_to.0: unknown key 'alias' (did you mean 'aliases'?)"),
    ],
    ids=["serialiser", "output-alias", "input-aliases", "link_to-alias"],
)
def test_dagster_definitions_validate_fails_on_a_typo(tmp_path: Path, output: dict, input: dict, expected: str) -> None:
    bad = _definitions_validate(tmp_path, output, input)
    text = bad.stdout + bad.stderr
    assert bad.returncode != 0, text
    assert expected in text, text


def test_dagster_definitions_validate_passes_valid_options(tmp_path: Path) -> None:
    good = _definitions_validate(tmp_path, {"serializer": "joblib", "aliases": ["staging"]}, {"alias": "production"})
    # Loading opens no workspace (the URL's folder does not exist): only the options are checked, so a code
    # location loads where the database is not reachable; the workspace is checked when a run sets it up.
    assert good.returncode == 0, good.stdout + good.stderr
