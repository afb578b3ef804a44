"""wandb.Histogram, wandb.Html and wandb.plot (issue 12), as W&B defines them (docs/behaviour.md section 9)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.storage.hashing import b64_to_hex


def test_a_histogram_from_a_sequence_is_numpy_binning_in_64_bins():
    values = [0.1, 0.2, 0.2, 0.9, 1.5]
    counts, edges = np.histogram(values, bins=64)
    hist = wandb.Histogram(values)
    assert hist.to_json() == {"_type": "histogram", "values": counts.tolist(), "bins": edges.tolist()}
    assert len(wandb.Histogram(values, num_bins=4).histogram) == 4


def test_a_histogram_from_np_histogram_keeps_counts_and_edges():
    hist = wandb.Histogram(np_histogram=np.histogram([1, 2, 2, 3], bins=2))
    assert (hist.histogram, hist.bins) == ([1, 3], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="one more bin edge than counts"):
        wandb.Histogram(np_histogram=([1, 2], [0.0, 1.0]))
    with pytest.raises(ValueError, match="at most 512 bins"):
        wandb.Histogram(np_histogram=([0] * 513, list(range(514))))
    with pytest.raises(ValueError, match=r"\(counts, bin_edges\)"):
        wandb.Histogram(np_histogram=([1],))


def test_a_histogram_without_numpy_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "numpy", None)  # as when NumPy is not installed
    with pytest.raises(ImportError, match=r"pip install numpy .*wandb-dagster\[media\]"):
        wandb.Histogram([1, 2, 3])
    # A precomputed histogram needs no NumPy.
    assert wandb.Histogram(np_histogram=([1], [0, 1])).bins == [0, 1]


def test_a_logged_histogram_is_inline_in_the_history(any_ws_env):
    with wandb.init(project="p") as run:
        run.log({"weights": wandb.Histogram(np_histogram=([2, 1], [0.0, 0.5, 1.0]))})
        run.log({"grads": {"w": wandb.Histogram(np_histogram=([1], [0.0, 1.0]))}})
    rows = wandb.Api().run(f"p/{run.id}").history(pandas=False)
    assert rows[0]["weights"] == {"_type": "histogram", "values": [2, 1], "bins": [0.0, 0.5, 1.0]}
    assert rows[1]["grads"] == {"w": {"_type": "histogram", "values": [1], "bins": [0.0, 1.0]}}


def test_a_histogram_in_an_artifact_round_trips(ws_env):
    with wandb.init(project="p") as run:
        art = wandb.Artifact("h", "stats")
        art.add(wandb.Histogram(np_histogram=([3], [0, 1])), "dist")
        run.log_artifact(art)
    assert wandb.Api().artifact("p/h:v0").get("dist") == wandb.Histogram(np_histogram=([3], [0, 1]))


def test_html_is_a_file_with_w_and_b_injection(any_ws_env, tmp_path):
    page = wandb.Html("<html><body>hi</body></html>")
    assert page.html == '<html><head><base target="_blank"></head><body>hi</body></html>'
    assert wandb.Html("<p>x</p>", inject=False).html == "<p>x</p>"
    (tmp_path / "page.html").write_text("<h1>file</h1>")
    from_file = wandb.Html(str(tmp_path / "page.html"), inject=False)
    assert from_file.html == "<h1>file</h1>"
    with wandb.init(project="p") as run:
        run.log({"page": from_file, "pages": [from_file, page]})
        art = wandb.Artifact("site", "html")
        art.add(page, "index")
        run.log_artifact(art)
    row = wandb.Api().run(f"p/{run.id}").history(pandas=False)[0]
    assert row["page"]["_type"] == "html-file"
    assert row["page"]["path"].startswith("media/html/page_0_") and row["page"]["path"].endswith(".html")
    with Workspace.default().blobs.open(b64_to_hex(row["page"]["digest"])) as f:
        assert f.read() == b"<h1>file</h1>"
    # A list of pages is W&B's {"_type": "html", "count", "html": [...]}.
    assert (row["pages"]["_type"], row["pages"]["count"]) == ("html", 2)
    assert [p["_type"] for p in row["pages"]["html"]] == ["html-file", "html-file"]
    assert wandb.Api().artifact("p/site:v0").get("index").html == page.html


def test_plot_presets_build_w_and_b_tables_and_specs():
    table = wandb.Table(columns=["x", "y"], data=[[1, 1], [2, 4]])
    cases = {
        "wandb/line/v0": (wandb.plot.line(table, "x", "y", stroke=None, title="t"), {"x": "x", "y": "y", "stroke": None}),
        "wandb/scatter/v0": (wandb.plot.scatter(table, "x", "y", title="t"), {"x": "x", "y": "y"}),
        "wandb/bar/v0": (wandb.plot.bar(table, "x", "y", title="t"), {"label": "x", "value": "y"}),
        "wandb/histogram/v0": (wandb.plot.histogram(table, "y", title="t"), {"value": "y"}),
    }  # fmt: skip
    for spec_name, (chart, fields) in cases.items():
        assert (chart.spec.spec_name, chart.spec.fields, chart.spec.string_fields) == (spec_name, fields, {"title": "t"})
        assert chart.table is table
    series = wandb.plot.line_series(xs=[0, 1], ys=[[10, 20], [30, 40]], keys=["a", "b"], title="s", xname="epoch")
    assert series.spec.spec_name == "wandb/lineseries/v0"
    assert series.spec.string_fields == {"title": "s", "xname": "epoch"}
    assert series.table.columns == ["step", "lineKey", "lineVal"]
    assert series.table.data == [[0, "a", 10], [1, "a", 20], [0, "b", 30], [1, "b", 40]]
    with pytest.raises(ValueError, match="2 keys for 1 y series"):
        wandb.plot.line_series(xs=[0], ys=[[1]], keys=["a", "b"])


def test_confusion_matrix_counts_as_w_and_b():
    chart = wandb.plot.confusion_matrix(y_true=[0, 1, 1, 2], preds=[0, 1, 2, 2], class_names=["a", "b", "c"])
    assert chart.spec.spec_name == "wandb/confusion_matrix/v1"
    assert chart.table.columns == ["Actual", "Predicted", "nPredictions"]
    counts = {(a, p): n for a, p, n in chart.table.data}
    assert counts[("a", "a")] == 1 and counts[("b", "b")] == 1 and counts[("b", "c")] == 1 and counts[("c", "c")] == 1
    assert sum(counts.values()) == 4 and len(counts) == 9
    from_probs = wandb.plot.confusion_matrix(probs=[[0.9, 0.1], [0.2, 0.8]], y_true=[0, 0])
    assert [row[:2] for row in from_probs.table.data if row[2]] == [["Class_1", "Class_1"], ["Class_1", "Class_2"]]
    with pytest.raises(ValueError, match="not both"):
        wandb.plot.confusion_matrix(probs=[[1.0]], preds=[0], y_true=[0])
    with pytest.raises(ValueError, match="3 distinct true labels for 2 class names"):
        wandb.plot.confusion_matrix(y_true=[0, 1, 2], preds=[0, 0, 0], class_names=["a", "b"])


def test_a_logged_chart_logs_its_table_and_its_panel_in_the_config(any_ws_env):
    table = wandb.Table(columns=["x", "y"], data=[[1, 1], [2, 4]])
    with wandb.init(project="p") as run:
        run.log({"squares": wandb.plot.line(table, "x", "y", title="Squares")})
        run.log({"eval": {"cm": wandb.plot.confusion_matrix(y_true=[0, 1], preds=[0, 1])}})
        run.log({"split": wandb.plot.scatter(table, "x", "y", split_table=True)})
    api_run = wandb.Api().run(f"p/{run.id}")
    rows = api_run.history(pandas=False)
    assert rows[0]["squares_table"]["_type"] == "table-file" and "squares" not in rows[0]
    assert rows[1]["eval.cm_table"]["_type"] == "table-file"  # as W&B: a nested chart's key is its dotted path
    assert rows[2]["Custom Chart Tables/split_table"]["_type"] == "table-file"
    visualize = api_run.config["_wandb"]["visualize"]
    assert sorted(visualize) == ["eval.cm", "split", "squares"]
    panel = visualize["squares"]
    assert panel["panel_type"] == "Vega2"
    assert panel["panel_config"]["panelDefId"] == "wandb/line/v0"
    assert panel["panel_config"]["fieldSettings"] == {"x": "x", "y": "y", "stroke": None}
    assert panel["panel_config"]["stringSettings"] == {"title": "Squares"}
    query = panel["panel_config"]["userQuery"]["queryFields"][0]["fields"][3]
    assert query == {"name": "summaryTable", "args": [{"name": "tableKey", "value": "squares_table"}], "fields": []}
    back = [a for a in api_run.logged_artifacts() if a.name.startswith(f"run-{run.id}-squares_table")][0]
    assert back.get("squares_table").data == [[1, 1], [2, 4]]


def test_a_logged_array_of_more_than_32_values_is_a_32_bin_histogram_as_in_w_and_b(any_ws_env):
    big = np.linspace(0.0, 1.0, 100)
    with wandb.init(project="p") as run:
        run.log({"weights": big, "small": np.arange(4), "one": np.array([[2.5]]), "nested": {"w": big}})
        run.summary["kept"] = np.arange(40)  # the summary keeps an array set directly as its values
    api_run = wandb.Api().run(f"p/{run.id}")
    row = api_run.history(pandas=False)[0]
    counts, edges = np.histogram(big, bins=32)
    expected = {"_type": "histogram", "values": counts.tolist(), "bins": edges.tolist()}
    assert row["weights"] == expected and row["nested"] == {"w": expected}
    assert (row["small"], row["one"]) == ([0, 1, 2, 3], 2.5)
    assert api_run.summary_metrics["weights"] == expected
    assert api_run.summary_metrics["kept"] == list(range(40))
