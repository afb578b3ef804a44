"""static/charts.js in a real browser (Chromium): WDCharts.line draws each series, bands and log scales."""

from __future__ import annotations

from .conftest import sqlite_only


@sqlite_only
def test_wdcharts_line_draws_every_series_with_its_band(app_env, live_server, page):
    page.goto(f"{live_server.url}/")  # a page of the app's origin
    page.set_content(
        f'<link rel="stylesheet" href="{live_server.url}/static/app.css">'
        f'<script src="{live_server.url}/static/vendor/uplot/uPlot.iife.min.js"></script>'
        f'<script src="{live_server.url}/static/charts.js"></script><div id="c" style="width:500px"></div>'
    )
    page.evaluate(
        """() => WDCharts.line(document.getElementById('c'), {
             title: 'loss', x_label: '_step', smoothing: 0.5, log_y: true, range: null,
             series: [{name: 'a', x: [0, 1, 2], y: [3, 2, 1], min: [2.5, 1.5, 0.5], max: [3.5, 2.5, 1.5]},
                      {name: '<b>b</b>', x: [1, 3], y: [1, 'NaN'], min: null, max: null}]})"""
    )
    page.wait_for_function("document.getElementById('c').dataset.series === '2'")
    chart = page.locator("#c")
    assert chart.get_attribute("data-points") == "5"
    assert page.locator("#c canvas").count() == 1
    assert "<b>b</b>" in chart.inner_text()  # a series name is text, never HTML
    assert page.locator("#c b").count() == 0
