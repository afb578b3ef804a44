"""Sweeps: bayes (Optuna TPE driven from the store) against random search on the Branin function, and the
cost of a bayes suggestion at 500 finished trials.

Each trial goes through the store as an agent's does: ``claim_sweep_trial`` (the suggestion computed and
recorded in one transaction under the sweep's lock), the trial's run created with the suggested config
and its metric logged, then ``end_sweep_trial`` (which records the trial's value). Only the SDK's run
object (console capture, system metrics threads) is left out, so the figures are about the search.

    .venv/bin/python bench/bench_sweeps.py                     # 5 seeds x 40 trials, then 500 + 50 claims
    .venv/bin/python bench/bench_sweeps.py --trials 60 --seeds 5
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import tempfile
import time
from pathlib import Path

from wandb_dagster.sdk import sweep_bayes, sweep_config, sweeps
from wandb_dagster.store import Store

BRANIN_MIN = 0.397887
CONFIG = {
    "method": "random",
    "metric": {"name": "branin", "goal": "minimize"},
    "parameters": {"x1": {"min": -5.0, "max": 10.0}, "x2": {"min": 0.0, "max": 15.0}},
}


def branin(x1: float, x2: float) -> float:
    a, b, c, r, s, t = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


def _store(folder: Path) -> Store:
    return Store.open(f"sqlite:///{folder / 'store.db'}", storage_root=str(folder / "blobs"))


def run_search(store: Store, method: str, trials: int, seed: int) -> tuple[float, float]:
    """Run ``trials`` trials of one sweep; (best value, seconds per claim)."""
    config = sweep_config.validate({**CONFIG, "method": method})
    sweep_id = f"{method[:2]}{seed:06d}"
    record = store.create_sweep("bench", "branin", sweep_id, name=sweep_id, method=method, config=config)
    suggest = sweeps._suggest(config, random.Random(seed), seed=seed)
    best, claim_s = math.inf, []
    for number in range(trials):
        t0 = time.perf_counter()
        trial = store.claim_sweep_trial(record.pk, suggest, run_cap=None, run_id=f"{sweep_id}-{number}")
        claim_s.append(time.perf_counter() - t0)
        assert trial is not None
        value = branin(trial.params["x1"], trial.params["x2"])
        run = store.create_run("bench", "branin", trial.run_id, config=trial.params, sweep_pk=record.pk)
        store.append_history(run.pk, [{"_step": 0, "branin": value}])
        store.update_run(run.pk, summary={"branin": value}, state="finished")
        store.end_sweep_trial(trial.pk, metric=("branin", "minimize"))
        best = min(best, value)
    return best, statistics.median(claim_s)


def overhead(store: Store, finished: int, claims: int) -> dict[str, float]:
    """Seconds per bayes claim (transaction + trials read + TPE ask) with ``finished`` trials ended."""
    config = sweep_config.validate({**CONFIG, "method": "bayes"})
    record = store.create_sweep("bench", "branin", "overhead", name="overhead", method="bayes", config=config)
    rng = random.Random(0)
    fill = sweeps._suggest({**config, "method": "random"}, rng)
    for number in range(finished):
        trial = store.claim_sweep_trial(record.pk, fill, run_cap=None, run_id=f"fill-{number}")
        assert trial is not None
        value = branin(trial.params["x1"], trial.params["x2"])
        run = store.create_run("bench", "branin", trial.run_id, config=trial.params, sweep_pk=record.pk)
        store.update_run(run.pk, summary={"branin": value}, state="finished")
        store.end_sweep_trial(trial.pk, metric=("branin", "minimize"))
    suggest = sweep_bayes.suggester(config, seed=0)
    trials = store.sweep_trials(record.pk)
    t0 = time.perf_counter()
    suggest(trials)  # builds the agent's in-memory study from the 500 ended trials
    first = time.perf_counter() - t0
    pure, cpu = [], []
    for _ in range(claims):
        t0, c0 = time.perf_counter(), time.process_time()
        suggest(trials)
        pure.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    claim_bayes, claim_random = [], []
    for number in range(claims):
        t0 = time.perf_counter()
        store.claim_sweep_trial(record.pk, suggest, run_cap=None, run_id=f"b-{number}")
        claim_bayes.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        store.claim_sweep_trial(record.pk, fill, run_cap=None, run_id=f"r-{number}")
        claim_random.append(time.perf_counter() - t0)
    return {
        "first_suggestion_s": first,
        "suggestion_median_s": statistics.median(pure),
        "suggestion_min_s": min(pure),
        "suggestion_cpu_median_s": statistics.median(cpu),
        "bayes_claim_median_s": statistics.median(claim_bayes),
        "random_claim_median_s": statistics.median(claim_random),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--finished", type=int, default=500)
    parser.add_argument("--claims", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = _store(Path(tmp))
        results: dict[str, list[float]] = {"random": [], "bayes": []}
        for seed in range(args.seeds):
            for method in ("random", "bayes"):  # alternated, so load drifts hit both alike
                best, claim = run_search(store, method, args.trials, seed)
                results[method].append(best)
                print(f"seed {seed} {method:6}: best {best:.4f} (claim median {claim * 1000:.1f} ms)")
        for method, bests in results.items():
            median = statistics.median(bests)
            runs = f"{args.seeds} seeds, {args.trials} trials"
            print(f"{method:6}: median best of {runs}: {median:.4f} (minimum {BRANIN_MIN})")
        better = statistics.median(results["bayes"]) < statistics.median(results["random"])
        print(f"bayes better than random: {better}")
        figures = overhead(store, args.finished, args.claims)
        for key, value in figures.items():
            print(f"{key} at {args.finished} finished trials: {value * 1000:.2f} ms")
        store.close()


if __name__ == "__main__":
    main()
