"""Benchmark: the web app on big data. A run with 100,000 history rows x 20 keys: the time until the run
page's charts are drawn in a real browser (Debian's Chromium via Playwright, against uvicorn on loopback;
goal <= 1 s). A project of 10,000 runs: the server time of the runs table's first page (goal <= 200 ms).

    .venv/bin/python bench/bench_app.py                    # median of 5 page loads each
    .venv/bin/python bench/bench_app.py --rows 20000 --runs 2000 --rounds 3

The data is written through the store (the rows as the SDK writes them: ``_step``, ``_runtime``,
``_timestamp`` and the metrics), in batches, before any clock starts; SQLite in a temporary folder.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wandb_dagster.store import Store  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def make_big_run(store: Store, rows: int, keys: int) -> str:
    run = store.create_run("bench", "big", "longrun", display_name="long run")
    batch: list[dict[str, Any]] = []
    rng = random.Random(0)
    for step in range(rows):
        row: dict[str, Any] = {"_step": step, "_timestamp": 1.7e9 + step * 0.1, "_runtime": step * 0.1}
        for k in range(keys):
            row[f"metric_{k:02d}"] = math.sin(step / 2000 + k) + rng.random() * 0.1
        batch.append(row)
        if len(batch) == 10_000:
            store.append_history(run.pk, batch, durable=False)
            batch = []
    if batch:
        store.append_history(run.pk, batch, durable=False)
    store.update_run(run.pk, state="finished", summary={f"metric_{k:02d}": 0.0 for k in range(keys)})
    return run.id


def make_many_runs(store: Store, count: int) -> None:
    rng = random.Random(1)
    for i in range(count):
        run = store.create_run("bench", "many", f"run{i:05d}", display_name=f"run-{i}",
                               config={"lr": rng.random(), "batch": rng.choice([16, 32, 64])}, tags=["bench"])
        store.update_run(run.pk, state="finished", summary={"loss": rng.random(), "acc": rng.random()})


class Server:
    def __init__(self, app: Any) -> None:
        import socket

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright
    from starlette.testclient import TestClient

    from wandb_dagster.app.server import create_app

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/store.db"
        store = Store.open(url, storage_root=f"{tmp}/blobs", create=True)
        started = time.perf_counter()
        run_id = make_big_run(store, args.rows, args.keys)
        make_many_runs(store, args.runs)
        store.close()
        print(f"data written in {time.perf_counter() - started:.1f} s ({args.rows} rows x {args.keys} keys; "
              f"{args.runs} runs)")
        os.environ["WANDB_DAGSTER_CACHE_DIR"] = f"{tmp}/cache"
        app = create_app(database_url=url)

        with TestClient(app) as client:
            table = []
            for _ in range(args.rounds + 1):
                t = time.perf_counter()
                response = client.get("/bench/many")
                table.append(time.perf_counter() - t)
                assert response.status_code == 200 and "run09999" in response.text or args.runs < 10_000
            table = table[1:]  # the first request warms the connection pool and the template cache
            t = time.perf_counter()
            history = client.get(f"/api/runs/bench/big/{run_id}/history")
            history_s = time.perf_counter() - t
            assert history.status_code == 200
        print(f"runs table, first page of {args.runs} runs (server, in process): median "
              f"{statistics.median(table) * 1000:.0f} ms, min {min(table) * 1000:.0f} ms (goal <= 200 ms)")
        print(f"history JSON of the long run, {args.keys} keys, not kept yet: {history_s * 1000:.0f} ms")
        from wandb_dagster.api import history as history_views

        history_views._CACHE.clear()  # the browser's first load starts cold too

        server = Server(app)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                     args=["--no-sandbox", "--disable-gpu"])
                drawn: list[float] = []  # charts drawn from evenly spaced rows (the first pass)
                exact: list[float] = []  # drawn again from the exact buckets with their min/max bands
                for _ in range(args.rounds + 1):
                    page = browser.new_page(viewport={"width": 1280, "height": 900})
                    page.goto(f"{server.url}/bench/big/runs/{run_id}")
                    page.wait_for_function("document.body.dataset.chartsExact !== undefined", timeout=120_000)
                    charts = int(page.evaluate("document.body.dataset.chartsDrawn"))
                    assert charts == args.keys, charts
                    drawn.append(int(page.evaluate("document.body.dataset.chartsDrawnMs")) / 1000)
                    exact.append(int(page.evaluate("document.body.dataset.chartsExactMs")) / 1000)
                    page.close()
                browser.close()
        finally:
            server.stop()
        print(f"run page, {args.rows} rows x {args.keys} keys, navigation to all charts drawn (Chromium), "
              f"first load (nothing kept): {drawn[0]:.2f} s from evenly spaced rows (goal <= 1 s), "
              f"{exact[0]:.2f} s with the exact min/max buckets")
        again = exact[1:] or exact
        print(f"  loaded again (the finished run's exact view kept): median {statistics.median(again):.2f} s, "
              f"min {min(again):.2f} s (goal <= 1 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
