"""Reports (wandb_dagster.reports, W&B's Report API): saved in the workspace and loaded back, run sets that
select runs as Api().runs does, the data each panel shows, and the checks that name a bad argument. On
SQLite and PostgreSQL where a workspace is written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import wandb_dagster as wandb
import wandb_dagster.reports as wr
from wandb_dagster.reports.data import MAX_POINTS, downsample
from wandb_dagster.reports.render import render
from wandb_dagster.reports.runset import parse_filters


def _runs(project: str = "bikes") -> list[str]:
    ids = []
    for lr, layers, group in ((0.1, 1, "a"), (0.01, 2, "a"), (0.001, 3, "b")):
        with wandb.init(project=project, config={"lr": lr, "layers": layers}, group=group) as run:
            for step in range(20):
                run.log({"loss": lr * (20 - step), "acc": step / 20})
            run.summary["best_acc"] = layers / 3
            ids.append(run.id)
    return ids


def test_a_report_is_saved_updated_listed_and_loaded_back(any_ws_env, capsys):
    report = wr.Report(project="bikes", title="Bike runs: v1", description="first", width="fluid",
                       blocks=[wr.H1("Top"), wr.P(["see ", wr.Link("docs", url="https://example.com")])])
    url = report.save()
    assert url == report.url and f"Saved report to: {url}" in capsys.readouterr().err
    assert re.fullmatch(r"http://127\.0\.0\.1:8600/tester/bikes/reports/Bike-runs%3A-v1--Vmlldz[A-Za-z0-9]+", url)
    first_id = report.id
    report.title, report.description = "Bike runs", "second"
    report.blocks.append(wr.HorizontalRule())
    assert report.save().endswith(f"/tester/bikes/reports/Bike-runs--{first_id}")  # the same report, updated
    assert report.id == first_id
    loaded = wr.Report.from_url(url)  # the id decides: an old title in the URL still finds it
    assert loaded == report and loaded.width == "fluid" and loaded.description == "second"
    assert loaded.created_at is not None and loaded.updated_at >= loaded.created_at
    api = wandb.Api()
    other = wr.Report(project="bikes", title="Other")
    other.save()
    assert [r.title for r in api.reports("bikes")] == ["Other", "Bike runs"]  # newest first
    assert [r.id for r in api.reports("tester/bikes", name="Bike runs")] == [first_id]
    assert [r.id for r in api.reports("bikes", name=first_id)] == [first_id]
    assert api.from_path(report.path) == report
    clone_url = report.save(clone=True)
    assert report.id != first_id and clone_url.endswith(report.id)
    assert report.delete() and not report.delete()
    with pytest.raises(ValueError, match="no report .* check the URL"):
        wr.Report.from_url(clone_url)
    with pytest.raises(ValueError, match="save it as a new report with save\\(clone=True\\)"):
        report.save()


def test_the_url_uses_the_configured_app(ws_env, monkeypatch):
    monkeypatch.setenv("WANDB_DAGSTER_APP_URL", "https://wandb.example.com/")
    report = wr.Report(project="p", title="T")
    assert report.save().startswith("https://wandb.example.com/tester/p/reports/T--")
    with pytest.raises(AttributeError, match="save\\(\\) it first"):
        _ = wr.Report(project="p").url
    with pytest.raises(ValueError, match="is not a report URL"):
        wr.Report.from_url("https://wandb.example.com/tester/p/runs/abc")


def test_runsets_select_order_and_group_runs_as_api_runs_does(any_ws_env):
    a, b, c = _runs()
    panel = wr.LinePlot(title="Loss", y=["loss"])

    def shown(runset: wr.Runset, plot: wr.LinePlot = panel) -> list[str]:
        report = wr.Report(project="bikes", blocks=[wr.PanelGrid(runsets=[runset], panels=[plot])])
        (chart,) = render(report, wandb.Api()).data["charts"].values()
        return [s["name"] for s in chart["series"]]

    names = {r.id: r.name for r in wandb.Api().runs("bikes")}
    assert shown(wr.Runset()) == [names[c], names[b], names[a]]  # W&B's default order: newest first
    assert shown(wr.Runset(filters="Config('lr') <= 0.01")) == [names[c], names[b]]
    assert shown(wr.Runset(filters={"config.lr": {"$gte": 0.01}}, order=[wr.OrderBy("CreatedTimestamp", True)])) == [
        names[a], names[b]]  # fmt: skip
    assert shown(wr.Runset(filters="SummaryMetric('best_acc') > 0.5 and not Group = 'b'")) == [names[b]]
    assert shown(wr.Runset(order=[wr.OrderBy(wr.Config("layers"), ascending=True)])) == [names[a], names[b], names[c]]
    assert shown(wr.Runset(query=names[a])) == [names[a]]
    assert len(shown(wr.Runset(filters="CreatedTimestamp within_last 1 days"))) == 3  # evaluated when shown
    assert shown(wr.Runset(filters="Runtime < 0")) == []
    assert shown(wr.Runset(groupby=["group"])) == ["group: b", "group: a"]
    by_acc = wr.LinePlot(x=wr.Metric("acc"), y=["loss"])  # any history key as the x axis
    assert shown(wr.Runset(filters=f"ID = '{a}'"), by_acc) == [names[a]]
    # Grouped: the mean of the group's runs at each step, with the min-max band.
    report = wr.Report(project="bikes", blocks=[wr.PanelGrid(panels=[wr.LinePlot(y=["loss"], groupby="group")])])
    (chart,) = render(report, wandb.Api()).data["charts"].values()
    group_a = next(s for s in chart["series"] if s["name"] == "group: a")
    assert group_a["y"][0] == pytest.approx((0.1 * 20 + 0.01 * 20) / 2)
    assert (group_a["min"][0], group_a["max"][0]) == pytest.approx((0.01 * 20, 0.1 * 20))
    # As W&B's BetaReport (what Api().reports returns there): sections, their runs, names, spec, user.
    saved = wr.Report(project="bikes", title="Runs", blocks=[wr.H1("x"), wr.PanelGrid(runsets=[
        wr.Runset(filters="Group = 'b'"), wr.Runset(filters="Group = 'a'")])])  # fmt: skip
    saved.save()
    (listed,) = wandb.Api().reports("bikes", name="Runs")
    assert listed.display_name == "Runs" and listed.name == saved.id and listed.user == {"username": wandb.Api().settings.username}
    assert [r.id for r in listed.runs(listed.sections[0])] == [c, b, a] == [r.id for r in listed.runs(0)]
    assert listed.spec["blocks"][0] == {"@type": "H1", "text": "x", "collapsed_blocks": None}
    # A filter the workspace refuses fails at save, naming the run set.
    bad = wr.Report(project="bikes", blocks=[wr.PanelGrid(runsets=[wr.Runset(name="mine", filters={"$where": 1})])])
    with pytest.raises(ValueError, match="run set 'mine' cannot be read"):
        bad.save()


def test_each_panel_shows_its_data(ws_env):
    import numpy as np

    a, b, c = _runs()
    with wandb.init(project="bikes", id=a, resume="allow") as run:
        run.log({"sample": wandb.Image(np.zeros((4, 4, 3), dtype=np.uint8), caption="zeros")})
    report = wr.Report(project="bikes", title="All panels", blocks=[
        wr.TableOfContents(), wr.H2("Charts"), wr.MarkdownBlock("**bold** <script>alert(1)</script>"),
        wr.CodeBlock("print('<hi>')", language="python"), wr.Image("javascript:alert(1)", caption="no"),
        wr.PanelGrid(panels=[
            wr.LinePlot(y=["loss", "acc"], smoothing=0.5, log_y=True, range=(0.001, None)),
            wr.BarPlot(metrics=["best_acc"]), wr.ScalarChart(metric=wr.SummaryMetric("best_acc")),
            wr.ScatterPlot(x="config.lr", y="best_acc", log_x=True),
            wr.ParallelCoordinatesPlot(columns=[wr.ParallelCoordinatesPlotColumn(wr.Config("lr")), "best_acc"]),
            wr.RunComparer(diff_only=True), wr.MediaBrowser(media_keys=["sample"]),
        ]),
    ])  # fmt: skip
    out = render(report, wandb.Api())
    body = out.body
    assert '<a href="#h1-charts">Charts</a>' in body and 'id="h1-charts"' in body
    assert "<strong>bold</strong>" in body and "<script>" not in body and "&lt;script&gt;" in body
    assert "print(&#x27;&lt;hi&gt;&#x27;)" in body and "javascript:" not in body
    for url in (" javascript:alert(1)", "java\tscript:alert(1)", "//evil.example/x", "vbscript:x"):
        shown = render(wr.Report(project="bikes", blocks=[wr.P([wr.Link("x", url=url)])]), wandb.Api()).body
        assert "<a " not in shown, url
    (chart,) = out.data["charts"].values()
    assert len(chart["series"]) == 6 and chart["smoothing"] == 0.5 and chart["log_y"] and chart["range"] == [0.001, None]
    assert body.count('class="wd-bar"') == 3
    assert '<div class="wd-scalar">0.6667</div>' in body and "mean of 3 runs" in body
    assert body.count('class="wd-dot"') == 3 and 'data-lines="3"' in body
    assert "config.lr" in body and "config.layers" in body  # they differ between runs
    assert re.search(r'<img src="data:image/png;base64,[^"]+" alt="sample">', body) and "zeros" in body


def test_a_broken_media_blob_shows_as_missing(ws_env):
    import numpy as np

    with wandb.init(project="bikes") as run:
        run.log({"sample": wandb.Image(np.zeros((4, 4, 3), dtype=np.uint8))})
    row = wandb.Api().run(f"bikes/{run.id}").history(pandas=False)[0]
    from wandb_dagster.sdk.workspace import Workspace
    from wandb_dagster.storage.hashing import b64_to_hex

    Workspace.default().blobs.delete(b64_to_hex(row["sample"]["digest"]))
    report = wr.Report(project="bikes", blocks=[wr.PanelGrid(panels=[wr.MediaBrowser(media_keys=["sample"])])])
    assert '<span class="wd-missing">missing</span>' in render(report, wandb.Api()).body


def test_long_series_are_downsampled_keeping_each_buckets_extremes(ws_env):
    xs = list(range(10_000))
    ys = [float(i % 100) for i in xs]
    ys[5_000] = 1e6  # a spike survives as the bucket's maximum
    out = downsample(xs, ys)
    assert len(out["x"]) <= MAX_POINTS and len(out["y"]) == len(out["min"]) == len(out["max"]) == len(out["x"])
    assert max(out["max"]) == 1e6 and min(out["min"]) == 0.0
    assert downsample([1, 2], [3.0, 4.0]) == {"x": [1, 2], "y": [3.0, 4.0], "min": None, "max": None}


def test_to_html_writes_one_self_contained_file(ws_env, tmp_path):
    _runs()
    report = wr.Report(project="bikes", title="Offline", blocks=[wr.PanelGrid(panels=[wr.LinePlot(y=["loss"])])])
    path = report.to_html(tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert path == str(tmp_path / "report.html")
    assert "WDCharts" in page and "uPlot" in page and 'id="wd-report-data"' in page
    # Nothing to fetch: no external script, stylesheet or image.
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"(https?:)?//", page)
    # Without a path (a notebook's display): the same page inline, so it shows without the app running.
    frame = report.to_html(height=400)
    assert frame.startswith('<iframe srcdoc="&lt;!DOCTYPE html&gt;') and "height:400px" in frame
    assert "WDCharts" in frame and "<script" not in frame  # escaped: the whole page is the attribute's value


def test_no_text_in_the_data_can_break_the_exported_page_s_scripts(ws_env, tmp_path):
    # Found by review: a title or run name holding "<!--<script>" put the HTML parser in its script-escaped
    # state inside the data element, which then swallowed uPlot, charts.js and reports.js (nothing drew).
    hostile = "Loss <!--<script> notes </script> & more"
    with wandb.init(project="bikes", name=hostile) as run:
        run.log({"loss": 1.0})
    report = wr.Report(project="bikes", title=hostile, blocks=[wr.PanelGrid(panels=[wr.LinePlot(y=["loss"])])])
    page = Path(report.to_html(tmp_path / "report.html")).read_text()
    start = page.index('id="wd-report-data">') + len('id="wd-report-data">')
    data = page[start : page.index("</script>", start)]
    assert "<" not in data and ">" not in data and "&" not in data
    assert hostile in json.dumps(json.loads(data), ensure_ascii=False)  # the text itself is kept
    assert page.count("<script") >= 3  # the data, then the page's own scripts, all still elements


def test_filter_expressions_map_to_mongo_filters():
    assert parse_filters("") == {}
    assert parse_filters("State = 'finished'") == {"state": "finished"}
    assert parse_filters("Metric('State') == 'running' or Tags() in ['a', 'b']") == {
        "$or": [{"state": "running"}, {"tags": {"$in": ["a", "b"]}}]}  # fmt: skip
    assert parse_filters("Config('a.b') not in [1, 2] and Summary('acc') >= -0.5") == {
        "$and": [{"config.a.b": {"$nin": [1, 2]}}, {"summary_metrics.acc": {"$gte": -0.5}}]}  # fmt: skip
    assert parse_filters("Name = 'x=1'") == {"displayName": "x=1"}  # '=' inside a string stays
    assert list(parse_filters("CreatedTimestamp within_last 2 hours")["createdAt"]) == ["$gte"]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: wr.Report(project="p", width="wide"), r"Report\(width='wide'\) is invalid; use one of \['readable'"),
        (lambda: wr.Report(project="a/b"), r"Report\(project='a/b'\) is invalid"),
        (lambda: wr.Report(project="p", blocks=["text"]), r"holds 'text', which is not a block"),
        (lambda: wr.Runset(filters="Config('lr') => 1"), r"run set filter .* is invalid: .*Write W&B's filter"),
        (lambda: wr.Runset(filters="Loss < 1"), r"'Loss' is not a run attribute"),
        (lambda: wr.Runset(filters="State in 'x'"), r"'in' takes a list"),
        (lambda: wr.Runset(filters=3), r"Runset\(filters=3\) is invalid"),
        (lambda: wr.LinePlot(y=[wr.Config("lr")]), r"a line plot draws history keys"),
        (lambda: wr.LinePlot(range_y=(2, 1)), r"the low end must be below the high end"),
        (lambda: wr.LinePlot(smoothing_factor=2), r"from 0 \(none\) to 1"),
        (lambda: wr.BarPlot(orientation="x"), r"use one of \['v', 'h'\]"),
        (lambda: wr.PanelGrid(panels=[wr.H1("x")]), r"which is not a panel"),
        (lambda: wr.PanelGrid(runsets=[]), r"a non-empty list of Runset"),
        (lambda: wr.CodeBlock("x", language="cobol"), r"CodeBlock\(language='cobol'\) is invalid"),
        (lambda: wr.MediaBrowser(media_keys=[""]), r"the keys the images were logged under"),
    ],
)
def test_bad_arguments_are_refused_naming_them(ws_env, build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_a_misspelt_argument_names_the_right_one(ws_env):
    with pytest.raises(TypeError, match=r"LinePlot\(\) has no argument 'titel' \(did you mean 'title'\?\)"):
        wr.LinePlot(titel="x")
    plot = wr.LinePlot(y=["loss"])
    plot.smoothing_factor = 7  # changed after it was built: save() checks again
    with pytest.raises(ValueError, match="smoothing_factor=7"):
        wr.Report(project="p", blocks=[wr.PanelGrid(panels=[plot])]).save()


def test_w_and_b_classes_not_offered_say_so():
    with pytest.raises(AttributeError, match="has no Video .W&B's Report API has it; it is not offered here"):
        _ = wr.Video


def test_a_gallery_shows_every_step_up_to_its_cap(ws_env):
    import numpy as np

    from wandb_dagster.reports.render import MAX_MEDIA

    with wandb.init(project="bikes") as run:
        for step in range(MAX_MEDIA + 5):
            run.log({"sample": wandb.Image(np.full((2, 2, 3), step, dtype=np.uint8))})
    last_only = wr.Report(project="bikes", blocks=[wr.PanelGrid(panels=[wr.MediaBrowser(media_keys=["sample"])])])
    assert render(last_only, wandb.Api()).body.count("<img ") == 1  # the last image of each run
    gallery = wr.Report(project="bikes", blocks=[wr.PanelGrid(panels=[
        wr.MediaBrowser(media_keys=["sample"], gallery_axis="step")])])  # fmt: skip
    body = render(gallery, wandb.Api()).body
    assert body.count("<img ") == MAX_MEDIA and "step 0<" in body


def test_a_local_image_is_embedded_when_saved_or_exported(ws_env, tmp_path):
    import numpy as np
    from PIL import Image as PILImage

    path = tmp_path / "chart.png"
    PILImage.fromarray(np.zeros((3, 3, 3), dtype=np.uint8)).save(path)
    report = wr.Report(project="p", blocks=[wr.H1("Figures", collapsed_blocks=[wr.Image(str(path), caption="c")])])
    page = Path(report.to_html(tmp_path / "r.html")).read_text()
    assert 'src="data:image/png;base64,' in page and str(path) not in page
    loaded = wr.Report.from_url(report.save())
    path.unlink()  # saved into the report: the file is not needed any more
    (image,) = loaded.blocks[0].collapsed_blocks
    assert image.url.startswith("data:image/png;base64,") and image.caption == "c"
    assert 'src="data:image/png;base64,' in render(loaded, wandb.Api()).body
    with pytest.raises(ValueError, match="no such file"):
        wr.Report(project="p", blocks=[wr.Image(str(path))]).save()
