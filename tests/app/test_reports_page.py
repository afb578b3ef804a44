"""The report pages of the app (``/{entity}/{project}/reports/{Title}--{id}`` and the project's list), over
HTTP on SQLite and PostgreSQL, and in a real browser: the report of seed 000's block renders its headings
and its line plot, in the app and in the file ``report.to_html`` writes (opened as file://). The browser
test also makes the README's screenshot, docs/images/report-page.png."""

from __future__ import annotations

from pathlib import Path

import wandb_dagster as wandb
import wandb_dagster.reports as wr

from .conftest import check_screenshot, screenshot_path, sqlite_only


def _seed_report() -> wr.Report:
    """The report of seed 000's report block, over the seed's training run (logged here as the seed does)."""
    with wandb.init(project="my-awesome-project", config={"epochs": 10, "learning_rate": 0.01}) as run:
        for epoch in range(10):
            run.log({"epoch": epoch, "loss": (10 - epoch) ** 2 / 10})
    summary = "A summary of an experiment that trained a simple model with W&B."
    report = wr.Report(
        project="my-awesome-project", title="My Awesome Model Training Report", description=summary,
        blocks=[
            wr.TableOfContents(),
            wr.H2("Experiment Summary"), wr.MarkdownBlock(text=summary),
            wr.H2("Dataset Information"), wr.MarkdownBlock(text="Synthetic data from a simple model."),
            wr.H2("Model Information"), wr.MarkdownBlock(text="A linear regression with noise."),
            wr.PanelGrid(panels=[wr.LinePlot(title="Train Loss", x="Step", y=["loss"], title_x="Step",
                                              title_y="Loss")]),
        ],
    )  # fmt: skip
    report.save()
    return report


def test_a_saved_report_has_its_page_and_is_listed(app_env, client):
    report = _seed_report()
    page = client.get("/" + report.path)
    assert page.status_code == 200
    for heading in ("Experiment Summary", "Dataset Information", "Model Information", "Train Loss"):
        assert heading in page.text
    assert 'id="wd-report-data"' in page.text and "data-wd-chart=" in page.text
    exported = client.get(f"/{report.path}/html")
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    assert "WDCharts" in exported.text and "Experiment Summary" in exported.text and "/static/" not in exported.text
    assert 'href="/tester/my-awesome-project/reports"' in client.get("/").text  # the projects page links the list
    listing = client.get("/tester/my-awesome-project/reports")
    assert listing.status_code == 200 and f'href="/{report.path}"' in listing.text
    # The id decides: another title in the link still opens the report.
    assert client.get(f"/tester/my-awesome-project/reports/Old-title--{report.id}").status_code == 200
    assert client.get(f"/tester/other/reports/x--{report.id}").status_code == 404  # not this project's
    assert client.get("/tester/my-awesome-project/reports/x--Vmlldzo5OTk").status_code == 404
    assert client.get("/tester/my-awesome-project/reports/no-id-here").status_code == 404
    assert client.get("/tester/my-awesome-project/reports/x--%3Cscript%3E").status_code == 404


@sqlite_only
def test_the_seed_report_draws_its_headings_and_line_plot_in_the_app_and_offline(
    app_env, live_server, page, tmp_path
):
    report = _seed_report()
    page.goto(f"{live_server.url}/{report.path}")
    page.wait_for_function("Number(document.querySelector('[data-wd-chart]').dataset.series) >= 1")
    headings = page.locator("h3.wd-heading").all_inner_texts()
    assert headings == ["Experiment Summary", "Dataset Information", "Model Information"]
    assert page.locator(".wd-toc a").count() == 3
    assert page.locator("[data-wd-chart] canvas").count() == 1
    shot = screenshot_path("report-page.png", tmp_path)
    page.screenshot(path=str(shot), full_page=True)
    check_screenshot(shot)
    # The exported file draws the same, with no server: opened from disk.
    exported = Path(report.to_html(tmp_path / "report.html"))
    page.goto(exported.as_uri())
    page.wait_for_function("Number(document.querySelector('[data-wd-chart]').dataset.series) >= 1")
    assert page.locator("h3.wd-heading").all_inner_texts() == headings


def _long_report() -> wr.Report:
    with wandb.init(project="long") as run:
        for step in range(6000):
            run.log({"loss": 1.0 / (step + 1)})
    report = wr.Report(project="long", title="Long", blocks=[wr.PanelGrid(panels=[
        wr.ScalarChart(metric="loss"), wr.LinePlot(title="Loss", y=["loss"])])])  # fmt: skip
    report.save()
    return report


def test_a_line_plot_s_x_range_is_served_finer(app_env, client):
    report = _long_report()
    page = client.get("/" + report.path)
    assert 'data-wd-chart="chart-0-1"' in page.text
    base = "/api/reports/" + report.path.replace("/reports/", "/") + "/charts/chart-0-1"
    whole = client.get(base).json()
    (series,) = whole["series"]
    assert len(series["x"]) <= 1500 and series["max"] is not None  # downsampled, each bucket's extremes kept
    zoomed = client.get(f"{base}?min=100&max=199.5").json()
    (finer,) = zoomed["series"]
    assert finer["x"] == list(range(100, 200)) and finer["min"] is None  # every point of the range
    assert client.get(f"{base}?min=abc").status_code == 400
    assert client.get(f"{base}?max=inf").status_code == 400
    assert client.get(base.replace("chart-0-1", "chart-0-0")).status_code == 404  # a scalar chart
    assert client.get(base.replace("chart-0-1", "chart-5-0")).status_code == 404


@sqlite_only
def test_selecting_an_x_range_draws_the_finer_data(app_env, live_server, page):
    report = _long_report()
    page.goto(f"{live_server.url}/{report.path}")
    chart = page.locator('[data-wd-chart="chart-0-1"]')
    page.wait_for_function("document.querySelector('[data-wd-chart=\"chart-0-1\"]').dataset.series === '1'")
    whole = int(chart.get_attribute("data-points"))
    box = page.locator('[data-wd-chart="chart-0-1"] .u-over').bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.10, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.12, y, steps=5)
    page.mouse.up()
    page.wait_for_function("document.querySelector('[data-wd-chart=\"chart-0-1\"]').dataset.zoomed !== undefined")
    page.wait_for_function(f"Number(document.querySelector('[data-wd-chart=\"chart-0-1\"]').dataset.points) < {whole}")
    lo, hi = (float(v) for v in chart.get_attribute("data-zoomed").split(","))
    assert 400 < lo < hi < 900  # about 10% to 12% of 6,000 steps
    assert chart.get_attribute("data-error") is None
