"""Floats come back as floats, with their value, on SQLite and PostgreSQL (issue 18): jsonb prints numbers
in plain decimal notation, so ``1e308`` used to come back from PostgreSQL as a 309-digit ``int``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import wandb_dagster as wandb

FLOATS = {
    "max": 1.7976931348623157e308,
    "e308": 1e308,
    "e300": 1.5e300,
    "e20": 1e20,
    "e16": 1e16,
    "negative": -2.5e250,
    "whole": 3.0,
    "tiny": 5e-324,
    "small": 1.25e-7,
    "plain": 0.1,
    "nested": {"list": [1e300, 2.0, 1], "deep": {"x": 6.02e23}},
}


def _check(got: object, want: object, where: str) -> None:
    if isinstance(want, dict):
        # The Public API hands out a nested summary as W&B's SummarySubDict, a mapping rather than a dict.
        assert isinstance(got, Mapping) and set(got) == set(want), f"{where}: {got!r}"
        for k in want:
            _check(got[k], want[k], f"{where}.{k}")
        return
    assert type(got) is type(want), f"{where}: {got!r} is {type(got).__name__}, expected {type(want).__name__}"
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _check(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert isinstance(got, float) and (got == want or math.isclose(got, want, rel_tol=0)), where
    else:
        assert got == want, where


def test_metadata_config_and_summary_floats_round_trip_as_floats(any_ws_env: Path):
    (any_ws_env / "a.txt").write_text("hello\n")
    with wandb.init(project="p", config={"cfg": FLOATS}) as run:
        run.summary["s"] = FLOATS
        artifact = wandb.Artifact("ds", type="dataset", metadata={"m": FLOATS})
        artifact.add_file("a.txt")
        run.log_artifact(artifact)
        run_id = run.id
    api = wandb.Api(overrides={"project": "p"})
    _check(api.artifact("ds:v0").metadata["m"], FLOATS, "metadata")
    logged_run = api.run(f"p/{run_id}")
    _check(logged_run.config["cfg"], FLOATS, "config")
    _check(logged_run.summary["s"], FLOATS, "summary")
