"""In a real browser (Debian's Chromium via Playwright): the version page's lineage graph shows the producer
and consumer runs, left and right of the version, as links to their pages. The README's picture of the
lineage graph is taken here (docs/images/lineage.png)."""

from __future__ import annotations

from pathlib import Path

import wandb_dagster as wandb

from .conftest import check_screenshot, screenshot_path, sqlite_only


def _artifact(run, name: str, type: str):
    Path(f"{name}.txt").write_text(name)
    art = wandb.Artifact(name, type=type)
    art.add_file(f"{name}.txt")
    run.log_artifact(art).wait()


@sqlite_only
def test_the_lineage_graph_shows_the_producer_and_consumer_runs(app_env, live_server, page, tmp_path) -> None:
    with wandb.init(project="p", id="prep", name="prepare-data", job_type="prep") as run:
        _artifact(run, "data", "dataset")
    with wandb.init(project="p", id="trainer", name="train-model", job_type="train") as run:
        run.use_artifact("data:latest")
        _artifact(run, "model", "model")
    with wandb.init(project="p", id="evaluator", name="evaluate", job_type="eval") as run:
        run.use_artifact("model:latest")
    page.goto(f"{live_server.url}/tester/p/artifacts/model/model/v0")
    graph = page.locator("#lineage-graph svg")
    graph.wait_for()
    version = page.locator('g.lineage-node.start')
    producer = page.locator('g.lineage-node[data-run-id="trainer"]')
    consumer = page.locator('g.lineage-node[data-run-id="evaluator"]')
    upstream = page.locator('g.lineage-node[data-name="data:v0"]')
    for node in (version, producer, consumer, upstream):
        assert node.is_visible()
    boxes = {name: node.bounding_box() for name, node in
             (("version", version), ("producer", producer), ("consumer", consumer), ("upstream", upstream))}
    assert all(box is not None and box["width"] > 50 for box in boxes.values())
    # Data flows left to right: data -> trainer -> model -> evaluator.
    xs = [boxes[n]["x"] for n in ("upstream", "producer", "version", "consumer")]  # type: ignore[index]
    assert xs == sorted(xs) and len(set(xs)) == 4
    assert "model:v0" in (version.text_content() or "")
    assert page.locator('a:has(g[data-run-id="evaluator"])').get_attribute("href") == "/tester/p/runs/evaluator"
    assert page.locator('a:has(g[data-run-id="trainer"])').get_attribute("href") == "/tester/p/runs/trainer"
    assert page.locator("path.lineage-edge").count() == 4  # prep -> data -> trainer -> model -> evaluator
    page.set_viewport_size({"width": 1440, "height": 900})  # the whole graph, without the scroll bar
    shot = screenshot_path("lineage.png", tmp_path)
    page.locator("#lineage-graph svg").screenshot(path=str(shot))
    check_screenshot(shot)
    # Following the upstream version's node opens its page, whose graph has the trainer downstream.
    page.locator('a:has(g[data-name="data:v0"])').click()
    page.wait_for_url("**/tester/p/artifacts/dataset/data/v0")
    assert page.locator('g.lineage-node[data-run-id="trainer"]').get_attribute("data-depth") == "1"
