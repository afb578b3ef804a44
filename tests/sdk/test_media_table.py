"""wandb.Table (issue 12): building and reading, typed columns, logged in runs (a run_table artifact) and
stored in artifacts, read back through the Public API (docs/behaviour.md section 9)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk.data_types.table import sanitize_artifact_name
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.storage.hashing import b64_to_hex


def test_rows_and_columns_are_added_and_read_as_in_w_and_b():
    table = wandb.Table(columns=["x", "y"], data=[[1, 2.0], [2, 4.0]])
    table.add_data(3, 6.0)
    table.add_column("label", ["a", "b", "c"])
    assert table.columns == ["x", "y", "label"]
    assert table.get_column("y") == [2.0, 4.0, 6.0]
    assert table.get_column("x", convert_to="numpy").tolist() == [1, 2, 3]
    assert list(table.iterrows()) == [(0, [1, 2.0, "a"]), (1, [2, 4.0, "b"]), (2, [3, 6.0, "c"])]
    assert table.get_index() == [0, 1, 2]
    # NumPy values are recorded as plain JSON values.
    table.add_data(np.int64(4), np.float32(8.0), "d")
    assert table.data[-1] == [4, 8.0, "d"]
    # A column added to an empty table makes its rows.
    empty = wandb.Table(columns=[])
    empty.add_column("a", [1, 2])
    assert empty.data == [[1], [2]]


def test_dataframes_in_and_out():
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    table = wandb.Table(dataframe=frame)
    assert (table.columns, table.data) == (["a", "b"], [[1, "x"], [2, "y"]])
    assert wandb.Table(data=frame) == table  # as W&B: a DataFrame as data is the same
    assert table.get_dataframe().equals(frame)
    # As W&B: NaN, pandas' missing value, counts as None in a column of any type.
    gaps = wandb.Table(dataframe=pd.DataFrame({"name": ["a", None, float("nan")]}))
    assert len(gaps.data) == 3 and gaps.get_column("name")[0] == "a"
    with pytest.raises(TypeError, match="not optional"):
        wandb.Table(columns=["name"], data=[["a"], [float("nan")]], optional=False)


def test_wrong_shapes_and_types_are_refused_and_leave_the_table_as_it_was():
    table = wandb.Table(columns=["n", "s"], data=[[1, "a"]])
    with pytest.raises(ValueError, match="got 1 values for 2 columns"):
        table.add_data(1)
    with pytest.raises(ValueError, match="got 3 values for a table of 1 rows"):
        table.add_column("c", [1, 2, 3])
    # As W&B: a column's type is fixed by its first value; a row or column that does not fit changes nothing.
    with pytest.raises(TypeError, match=r"column 'n' holds number values; 'oops' is a string.*allow_mixed_types"):
        table.add_data("oops", "b")
    with pytest.raises(TypeError, match="column 'c' holds number values"):
        wandb.Table(columns=["c"], data=[[1], ["x"]])
    table.add_data(2, "b")
    with pytest.raises(TypeError, match="column 'q' holds string values"):
        table.add_column("q", ["x", 2])
    assert (table.columns, table.data) == (["n", "s"], [[1, "a"], [2, "b"]])
    # None is fine in an optional column (the default), not in one that is not.
    table.add_data(None, "c")
    with pytest.raises(TypeError, match="column 'a' is not optional"):
        wandb.Table(columns=["a"], data=[[None]], optional=False)
    mixed = wandb.Table(columns=["m"], data=[[1], ["x"]], allow_mixed_types=True)
    assert mixed.get_column("m") == [1, "x"]
    with pytest.raises(TypeError, match="holds number values"):
        wandb.Table(columns=["d"], dtype=int, data=[["x"]])
    with pytest.raises(ValueError, match="unique"):
        wandb.Table(columns=["a", "a"])
    with pytest.raises(ValueError, match="cannot hold a table"):
        wandb.Table(columns=["t"], data=[[wandb.Table(columns=["x"])]])


def test_sanitized_run_table_names_match_w_and_b():
    assert sanitize_artifact_name("run-abc-preds") == "run-abc-preds"
    # The suffix is W&B's: urlsafe base64 of the name's CRC32 (computed here as W&B's code does).
    assert sanitize_artifact_name("run-abc-val/preds") == "run-abc-valpreds-9mOZOA"


def test_a_logged_table_is_a_run_table_artifact_readable_through_the_public_api(any_ws_env):
    table = wandb.Table(columns=["x", "img"])
    table.add_data(1, wandb.Image(np.zeros((2, 2)), caption="zero"))
    table.add_data(2, wandb.Image(np.full((2, 2), 255, dtype=np.uint8)))
    with wandb.init(project="p") as run:
        run.log({"preds": table})
    api_run = wandb.Api().run(f"p/{run.id}")
    value = api_run.history(pandas=False)[0]["preds"]
    assert (value["_type"], value["ncols"], value["nrows"], value["log_mode"]) == ("table-file", 2, 2, "IMMUTABLE")
    assert value["path"] == f"media/table/preds_0_{value['sha256'][:20]}.table.json"
    logged = api_run.logged_artifacts()
    assert [(a.name, a.type) for a in logged] == [(f"run-{run.id}-preds:v0", "run_table")]
    assert value["artifact_path"] == f"wandb-artifact://_id/{logged[0].id}/preds.table.json"
    assert value["_latest_artifact_path"] == f"wandb-artifact://tester/p/run-{run.id}-preds:latest/preds.table.json"
    # The history's file is the artifact's entry: the blob it names holds the table's JSON.
    with Workspace.default().blobs.open(b64_to_hex(value["digest"])) as f:
        payload = f.read()
    assert hashlib.sha256(payload).hexdigest() == value["sha256"] and len(payload) == value["size"]
    assert json.loads(payload)["columns"] == ["x", "img"]
    back = logged[0].get("preds")
    assert isinstance(back, wandb.Table) and back.get_column("x") == [1, 2]
    images = back.get_column("img")
    assert images[0].caption == "zero" and images[0].image.size == (2, 2)
    assert images == table.get_column("img")


def test_a_logged_dataframe_is_a_table(ws_env):
    with wandb.init(project="p") as run:
        run.log({"frame": pd.DataFrame({"a": [1, 2]})})
    assert wandb.Api().run(f"p/{run.id}").history(pandas=False)[0]["frame"]["_type"] == "table-file"


def test_a_table_in_an_artifact_round_trips(any_ws_env):
    table = wandb.Table(columns=["id", "score"], data=[[1, 0.5], [2, float("nan")]])
    with wandb.init(project="p") as run:
        art = wandb.Artifact("results", "eval")
        assert art.add(table, "scores").path == "scores.table.json"
        run.log_artifact(art)
    got = wandb.Api().artifact("p/results:latest").get("scores")
    assert got.columns == ["id", "score"]
    assert got.get_column("id") == [1, 2]
    assert got.get_column("score")[0] == 0.5
    got.add_data(3, 0.7)  # a read table takes rows like a new one


def test_the_readme_media_block_runs_as_written(ws_env):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Media\n", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```python\n(.*?)```", section, re.S)
    ns: dict = {}
    exec(compile(block, "README.md (Media)", "exec", dont_inherit=True), ns)  # noqa: S102 - the README's code
    first, second = ns["api_run"].history(pandas=False)
    assert first["sample"]["_type"] == "image-file" and first["weights"]["_type"] == "histogram"
    assert second["predictions"]["_type"] == "table-file" and second["pr_table"]["_type"] == "table-file"
    assert wandb.Api().artifact("bikes/eval-set:latest").get("predictions").get_column("prediction") == [0.9, 0.4]
    assert (ws_env / "out" / ns["sample"]["path"]).is_file()


def _table_versions(run_id: str, name: str) -> list[str]:
    return [a.name for a in wandb.Api().run(f"p/{run_id}").logged_artifacts() if a.name.startswith(name)]


def test_an_immutable_table_relogged_after_a_change_records_what_was_first_logged(ws_env):
    table = wandb.Table(columns=["a"], data=[[1]])
    with wandb.init(project="p") as run:
        run.log({"t": table})
        run.log({"t": table})  # unchanged: the same file, no new version (W&B's bound table)
        with pytest.warns(UserWarning, match="log_mode='IMMUTABLE' that has been logged already"):
            table.add_data(2)
        run.log({"t": table})
    first, second, third = (row["t"] for row in wandb.Api().run(f"p/{run.id}").history(pandas=False))
    assert first == second == third and first["nrows"] == 1
    assert _table_versions(run.id, f"run-{run.id}-t") == [f"run-{run.id}-t:v0"]


def test_a_mutable_table_is_logged_again_after_a_change(ws_env):
    table = wandb.Table(columns=["a"], data=[[1]], log_mode="MUTABLE")
    with wandb.init(project="p") as run:
        run.log({"t": table})
        table.add_data(2)
        run.log({"t": table})
    first, second = (row["t"] for row in wandb.Api().run(f"p/{run.id}").history(pandas=False))
    assert (first["nrows"], second["nrows"]) == (1, 2) and first["sha256"] != second["sha256"]
    assert _table_versions(run.id, f"run-{run.id}-t") == [f"run-{run.id}-t:v0", f"run-{run.id}-t:v1"]
    assert wandb.Api().artifact(f"p/run-{run.id}-t:v1").get("t").get_column("a") == [1, 2]


def test_an_incremental_table_logs_only_new_rows_and_continues_in_a_resumed_run(any_ws_env):
    table = wandb.Table(columns=["step", "loss"], log_mode="INCREMENTAL")
    with pytest.raises(ValueError, match="add_column.*not supported.*INCREMENTAL"):
        table.add_column("x", [])
    with wandb.init(project="p", id="incr1") as run:
        table.add_data(0, 1.0)
        run.log({"losses": table})
        table.add_data(1, 0.5)
        table.add_data(2, 0.25)
        run.log({"losses": table})
        with wandb.init(project="p", reinit="create_new") as other, pytest.raises(ValueError, match="one run"):
            other.log({"losses": table})
    first, second = (row["losses"] for row in wandb.Api().run("p/incr1").history(pandas=False))
    assert first["_type"] == second["_type"] == "incremental-table-file"
    assert (first["increment_num"], second["increment_num"]) == (0, 1)
    assert (first["nrows"], second["nrows"]) == (1, 3)
    assert first["previous_increments_paths"] == [] and second["previous_increments_paths"] == [first["artifact_path"]]
    # One artifact, each version the previous one plus the new increment; each increment holds its rows.
    latest = wandb.Api().artifact("p/run-incr1-incr-losses:latest")
    assert latest.type == "wandb-run-incremental-table" and latest.version == "v1"
    entries = sorted(latest.manifest.entries)
    assert [e.split("-")[0] for e in entries] == ["0", "1"]
    assert [latest.get(e).data for e in entries] == [[[0, 1.0]], [[1, 0.5], [2, 0.25]]]
    # A resumed run continues the count from its summary, as W&B's does.
    with wandb.init(project="p", id="incr1", resume="must") as run:
        again = wandb.Table(columns=["step", "loss"], data=[[3, 0.1]], log_mode="INCREMENTAL")
        run.log({"losses": again})
    third = wandb.Api().run("p/incr1").history(pandas=False)[2]["losses"]
    assert third["increment_num"] == 2
    assert third["previous_increments_paths"] == [first["artifact_path"], second["artifact_path"]]


def test_a_bad_value_beside_a_table_fails_the_call_before_the_table_is_logged(ws_env):
    with wandb.init(project="p") as run:
        with pytest.raises(ValueError, match="'bad' has type object"):
            run.log({"t": wandb.Table(columns=["a"], data=[[1]]), "bad": object()})
        assert wandb.Api().run(f"p/{run.id}").logged_artifacts() == []


def test_an_image_column_as_numpy_is_its_pixels():
    table = wandb.Table(columns=["img"])
    table.add_data(wandb.Image(np.array([[0, 255], [255, 0]], dtype=np.uint8), normalize=False))
    table.add_data(wandb.Image(np.array([[1, 2], [3, 4]], dtype=np.uint8), normalize=False))
    assert table.get_column("img", convert_to="numpy").tolist() == [[[0, 255], [255, 0]], [[1, 2], [3, 4]]]
