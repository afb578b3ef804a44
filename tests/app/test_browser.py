"""The run pages in a real browser: Debian's Chromium driven by Playwright against a live server on
loopback. The README's screenshot of the run page is made here (docs/images/run-page.png, written when
WANDB_DAGSTER_SCREENSHOTS=1)."""

from __future__ import annotations

import math

import numpy as np

import wandb_dagster as wandb

from .conftest import check_screenshot, screenshot_path, sqlite_only


def _train(name: str, offset: float, image: bool = False) -> str:
    with wandb.init(project="bikes", name=name, config={"lr": 0.01 + offset, "epochs": 30}, tags=["demo"],
                    job_type="train") as run:
        for step in range(300):
            run.log({
                "loss": math.exp(-step / 80) + offset + 0.05 * math.sin(step),
                "accuracy": 1 - math.exp(-step / 60) - offset / 2,
                "lr": (0.01 + offset) * (0.99 ** step),
            })
        if image:
            grid = np.zeros((32, 48, 3), dtype=np.uint8)
            grid[:, :24] = (220, 80, 40)
            grid[::4, :] = (40, 120, 220)
            run.log({"prediction": wandb.Image(grid, caption="predicted bikes")})
        run.summary["best_loss"] = offset
    return run.id


def _charts_drawn(page) -> None:
    page.wait_for_function("document.body.dataset.chartsExact !== undefined", timeout=30_000)
    assert page.evaluate("document.body.dataset.chartsError") is None
    assert page.evaluate("document.body.dataset.chartsDrawn") == page.evaluate("document.body.dataset.chartsExact")


@sqlite_only
def test_the_run_page_draws_a_line_for_each_chart_and_shows_the_image(app_env, live_server, page, tmp_path):
    run_id = _train("baseline", 0.0, image=True)
    page.goto(f"{live_server.url}/tester/bikes/runs/{run_id}")
    _charts_drawn(page)
    charts = page.locator("#charts .chart")
    assert charts.count() == 3
    for i in range(3):
        assert charts.nth(i).get_attribute("data-series") == "1"
        assert int(charts.nth(i).get_attribute("data-points")) == 300
    image = page.locator("#media img")
    image.wait_for()
    page.wait_for_function("document.querySelector('#media img').complete")
    assert image.evaluate("img => img.naturalWidth") == 48
    shot = screenshot_path("run-page.png", tmp_path)
    page.screenshot(path=str(shot), full_page=False)
    check_screenshot(shot)


@sqlite_only
def test_comparing_two_runs_overlays_them_on_each_chart(app_env, live_server, page):
    first, second = _train("baseline", 0.0), _train("higher-lr", 0.2)
    page.goto(f"{live_server.url}/tester/bikes")
    page.check(f'input[value="{first}"]')
    page.check(f'input[value="{second}"]')
    page.click("text=Compare")
    page.wait_for_url("**/compare?**")
    _charts_drawn(page)
    charts = page.locator("#charts .chart")
    assert charts.count() == 3
    assert {charts.nth(i).get_attribute("data-series") for i in range(3)} == {"2"}
    # The smoothing slider draws every chart again, smoothed (W&B's exponential moving average).
    page.locator("#smoothing").fill("0.6")
    page.wait_for_function("document.querySelector('#charts .chart')._wdChart.spec.smoothing === 0.6")
    assert page.locator("#smoothing-value").inner_text() == "0.60"
    assert {charts.nth(i).get_attribute("data-series") for i in range(3)} == {"2"}


@sqlite_only
def test_zooming_a_chart_fetches_the_finer_range(app_env, live_server, page):
    with wandb.init(project="bikes") as run:
        for step in range(6000):
            run.log({"loss": float(step)})
    page.goto(f"{live_server.url}/tester/bikes/runs/{run.id}")
    _charts_drawn(page)
    chart = page.locator('#charts .chart[data-key="loss"]')
    assert int(chart.get_attribute("data-points")) <= 1500
    # The exact view is drawn: buckets with their min and max (each bucket of 4 steps spans 3).
    spec_band = chart.evaluate("c => [c._wdChart.spec.series[0].min[0], c._wdChart.spec.series[0].max[0]]")
    assert spec_band == [0.0, 3.0]
    box = chart.locator(".u-over").bounding_box()
    # Drag across a tenth of the plot: the chart is drawn again from a finer view of that range.
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.10, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.20, y, steps=5)
    page.mouse.up()
    page.wait_for_function(
        "() => { const c = document.querySelector('#charts .chart[data-key=loss]');"
        " return c._wdChart && c._wdChart.spec.series[0].x.length > 0 &&"
        " c._wdChart.spec.series[0].x[1] - c._wdChart.spec.series[0].x[0] < 2; }",
        timeout=20_000,
    )
    xs = chart.evaluate("c => c._wdChart.spec.series[0].x")
    assert 400 < xs[0] < 900 and xs[-1] - xs[0] < 1500  # one step per point: the finer range


@sqlite_only
def test_with_a_token_a_link_opens_the_run_page_and_its_charts_fetch_with_the_cookie(app_env, page):
    from wandb_dagster.app.server import create_app

    from .conftest import LiveServer

    run_id = _train("baseline", 0.0)
    server = LiveServer(create_app(token="browser-token"))
    try:
        page.goto(f"{server.url}/tester/bikes/runs/{run_id}?token=browser-token")
        assert page.url == f"{server.url}/tester/bikes/runs/{run_id}"  # the token left the address bar
        _charts_drawn(page)  # the history requests carried the cookie
        assert page.locator("#charts .chart").count() == 3
        other = page.context.browser.new_context()
        try:
            refused = other.new_page().goto(f"{server.url}/tester/bikes/runs/{run_id}")
            assert refused.status == 401
        finally:
            other.close()
    finally:
        server.stop()
