"""The registry and sweep pages over HTTP (Starlette's TestClient), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import wandb_dagster as wandb


def _log(run, name: str, content: str):
    Path(f"{name}.txt").write_text(content)
    art = wandb.Artifact(name, type="model")
    art.add_file(f"{name}.txt")
    logged = run.log_artifact(art)
    logged.wait()
    return logged


def _promotions():
    with wandb.init(project="train", id="trainer") as run:
        first = _log(run, "weights-1", "1")
        first.link("wandb-registry-model/Classifiers", aliases=["staging"])
        second = _log(run, "weights-2", "2")
        second.link("wandb-registry-model/Classifiers", aliases=["production"])
    with wandb.init(project="train", id="promoter") as run:
        run.link_artifact(first, "wandb-registry-model/Classifiers", aliases=["production"])


def test_registries_and_a_registry_list_their_collections(app_env, client) -> None:
    _promotions()
    page = client.get("/orgs/default/registry")
    assert page.status_code == 200
    assert 'href="/orgs/default/registry/model"' in page.text and 'href="/orgs/default/registry/dataset"' in page.text
    registry = client.get("/orgs/default/registry/model")
    assert registry.status_code == 200 and 'href="/orgs/default/registry/model/Classifiers"' in registry.text
    assert client.get("/orgs/default/registry/wandb-registry-model").status_code == 200
    assert client.get("/orgs/default/registry/nope").status_code == 404
    assert client.get("/orgs/nobody/registry").status_code == 404
    assert client.get("/orgs/nobody/registry/model").status_code == 404
    assert client.get("/orgs/%2e%2e/registry/model").status_code == 404


def test_a_registry_collection_shows_linked_versions_and_who_moved_production(app_env, client) -> None:
    _promotions()
    page = client.get("/orgs/default/registry/model/Classifiers")
    assert page.status_code == 200
    versions = page.text.split('id="linked-versions"')[1].split("</table>")[0]
    assert 'href="/default/wandb-registry-model/artifacts/model/Classifiers/v0"' in versions
    assert 'href="/tester/train/artifacts/model/weights-1/v0"' in versions  # the source of the link
    assert 'href="/tester/train/artifacts/model/weights-2/v0"' in versions
    v0 = versions.split('data-version="v0"')[1].split("</tr>")[0]
    assert "<span>production</span>" in v0 and "<span>staging</span>" in v0
    history = page.text.split('id="alias-history-table"')[1].split("</table>")[0]
    changes = re.findall(r'<tr class="(\w+)" data-alias="(\w+)">.*?<code>(\w+)</code>', history, re.S)
    assert changes == [("moved", "production", "promoter"), ("added", "production", "trainer"),
                       ("added", "staging", "trainer")]  # fmt: skip
    assert "moved from v1 to" in history
    # The acting run links to its page, with its user.
    promoter = wandb.Api().run("tester/train/promoter")
    assert 'href="/tester/train/runs/promoter"' in history and 'href="/tester/train/runs/trainer"' in history
    assert promoter.username and f"by {promoter.username}" in history
    assert client.get("/orgs/default/registry/model/Nope").status_code == 404
    assert client.get("/orgs/default/registry/model/Classifiers?history=0").status_code == 400
    assert client.get("/orgs/default/registry/model/Classifiers?start=bad").status_code == 400
    # The linked version's own page works at the registry's path.
    assert client.get("/default/wandb-registry-model/artifacts/model/Classifiers/production").status_code == 200


def test_sweep_page_shows_config_state_runs_and_best_run(app_env, client) -> None:
    config = {
        "method": "grid", "name": "lr-search", "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"lr": {"values": [0.3, 0.1, 0.2]}},
    }  # fmt: skip
    sweep_id = wandb.sweep(config, project="proj")

    def train() -> None:
        with wandb.init() as run:
            run.log({"loss": run.config["lr"]})

    wandb.agent(sweep_id, function=train, project="proj")
    sweep = wandb.Api().sweep(f"tester/proj/{sweep_id}")
    best = sweep.best_run()
    page = client.get(f"/tester/proj/sweeps/{sweep_id}")
    assert page.status_code == 200
    text = page.text
    assert '<td id="sweep-state">FINISHED</td>' in text and "lr-search" in text
    assert f'href="/tester/proj/runs/{best.id}"' in text.split('id="best-run"')[1].split("</td>")[0]
    assert "loss = 0.1" in text
    runs = text.split('id="sweep-runs"')[1].split("</table>")[0]
    assert all(f'data-run-id="{r.id}"' in runs for r in sweep.runs) and runs.count("<tr data-run-id") == 3
    assert "&#34;categorical&#34;" in text or "&quot;categorical&quot;" in text  # the validated config
    listing = client.get("/tester/proj/sweeps")
    assert listing.status_code == 200 and f'href="/tester/proj/sweeps/{sweep_id}"' in listing.text
    assert client.get("/tester/proj/sweeps/nope").status_code == 404
    assert client.get("/tester/nope/sweeps").status_code == 404
    assert client.get("/tester/proj/sweeps/%2e%2e").status_code == 404


def test_a_sweep_whose_metric_cannot_order_runs_still_has_a_page(app_env, client) -> None:
    config = {
        "method": "random", "metric": {"name": "a..b", "goal": "minimize"}, "run_cap": 1,
        "parameters": {"lr": {"min": 0.0, "max": 1.0}},
    }  # fmt: skip
    sweep_id = wandb.sweep(config, project="proj")
    page = client.get(f"/tester/proj/sweeps/{sweep_id}")
    assert page.status_code == 200 and "none yet" in page.text.split('id="best-run"')[1].split("</td>")[0]
