"""Decision quality: how often the comparison promotes a challenger of known true quality.

Champion/challenger pairs come from a binormal latent-score model (``model_tests/simulation.py``:
true champion ROC AUC 0.84, 26.5 % churners, stratified holdouts, the two models' noise
correlated with rho) and go through the real ``compare()``. For each rule it prints promotion
rates with trial counts and Wilson 95 % intervals:

- at 1,409 rows and rho 0.8, for a true improvement of -0.02, 0, +0.01, +0.02, +0.03;
- for 0 and +0.02 across holdouts of 700, 1,409 and 5,000 rows and rho 0.5, 0.8, 0.95;

- live: labels arriving in 10 batches, the comparison looked at after each (equal and +0.02
  challengers, 6,000 pairs in all, rho 0.8): the always-valid confidence sequence
  (``model_tests/sequential.py``) beside the naive fixed-sample test repeated at every look;
  and the labelled pairs needed for +0.01 / +0.02 at 80 % power (the docs' table).

A target counts as missed only when a cell's Wilson interval excludes it: the test is built
to promote an equal challenger 5 % of the time, so measured cells scatter around 5 %.
Beside them: the naive rule (challenger's AUC >= champion's) as the baseline, and the time of one
comparison at 1,409 and 100,000 rows against computing the two AUCs alone.

    python bench/decision_quality.py           # 200 trials a cell (about 2 minutes)
    python bench/decision_quality.py --full    # 1,000 trials a cell
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from model_tests import sequential  # noqa: E402
from model_tests.compare import compare  # noqa: E402
from model_tests.simulation import (  # noqa: E402
    live_promotion_rate,
    pair,
    promotion_rate,
    se_per_pair,
)
from model_tests.stats import wilson  # noqa: E402
from podium_policy.policy import Comparison as Rule  # noqa: E402

RULES = {"superiority (default)": Rule(),
         "noninferiority, margin 0.005": Rule(rule="noninferiority", margin=0.005)}
DELTAS = (-0.02, 0.0, 0.01, 0.02, 0.03)
SIZES, RHOS = (700, 1409, 5000), (0.5, 0.8, 0.95)


def naive_rate(trials: int, n: int, delta: float, rho: float, seed: int) -> tuple[int, int]:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    wins = 0
    for _ in range(trials):
        y, c, k = pair(n, 0.84, delta, rho, rng)
        wins += roc_auc_score(y, c) >= roc_auc_score(y, k)
    return wins, trials


def cell(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{k / n:6.1%} [{lo:5.1%}, {hi:5.1%}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="1,000 trials a cell")
    ap.add_argument("--trials", type=int, help="trials a cell (overrides --full)")
    args = ap.parse_args()
    trials = args.trials or (1000 if args.full else 200)
    print(f"{trials} trials a cell; rate [Wilson 95 % interval]\n", flush=True)
    failures = []
    for name, rule in RULES.items():
        print(f"rule: {name}")
        print("  1,409 rows, rho 0.8:")
        for i, delta in enumerate(DELTAS):
            k, n = promotion_rate(trials, 1409, delta, 0.8, rule, seed=100 + i)
            print(f"    true improvement {delta:+.2f}: promoted {cell(k, n)}", flush=True)
            if name.startswith("superiority"):
                lo, hi = wilson(k, n)
                if delta == 0 and lo > 0.05:
                    failures.append(f"equal promoted {k / n:.1%} (interval above 5 %)")
                if delta == 0.02 and hi < 0.80:
                    failures.append(f"+0.02 promoted {k / n:.1%} (interval below 80 %)")
                if delta < 0 and k:
                    failures.append(f"-0.02 promoted {k} times")
        print("  across holdouts (promoted: equal | +0.02):")
        for n_rows in SIZES:
            for j, rho in enumerate(RHOS):
                k0, n0 = promotion_rate(trials, n_rows, 0.0, rho, rule, seed=200 + j)
                k2, n2 = promotion_rate(trials, n_rows, 0.02, rho, rule, seed=300 + j)
                print(f"    {n_rows:>5} rows, rho {rho:<4}: {cell(k0, n0)} | {cell(k2, n2)}",
                      flush=True)
                if name.startswith("superiority") and wilson(k0, n0)[0] > 0.05:
                    failures.append(f"equal promoted {k0 / n0:.1%} at {n_rows} rows, rho {rho} "
                                    "(interval above 5 %)")
        print()
    print("baseline, the naive rule (challenger AUC >= champion AUC), 1,409 rows, rho 0.8:")
    for i, delta in enumerate((0.0, 0.02)):
        k, n = naive_rate(trials, 1409, delta, 0.8, seed=400 + i)
        print(f"    true improvement {delta:+.2f}: promoted {cell(k, n)}")
    print()
    failures += live(trials)
    print()
    speed()
    if failures:
        print("\ntargets missed: " + "; ".join(failures))
    else:
        print("\ntargets met (no Wilson interval excludes them): equal <= 5 % in every cell, "
              "+0.02 >= 80 % at 1,409 rows and rho 0.8, -0.02 never; live: the sequence "
              "promotes an equal challenger <= 5 % over 10 looks")


LIVE_PAIRS, LIVE_BATCHES = 6000, 10


def live(trials: int) -> list[str]:
    """The live cells (promotion over 10 looks) and the pairs-needed table; missed targets."""
    failures = []
    print(f"live: {LIVE_PAIRS:,} labelled pairs in {LIVE_BATCHES} batches, looked at after "
          "each, rho 0.8, alpha 0.05 (promoted at any look):")
    print("    true improvement   confidence sequence       naive repeated test")
    for i, delta in enumerate((0.0, 0.02)):
        seq, naive, n = live_promotion_rate(trials, LIVE_PAIRS, delta, 0.8,
                                            batches=LIVE_BATCHES, seed=500 + i)
        print(f"    {delta:+.2f}               {cell(seq, n)}    {cell(naive, n)}", flush=True)
        if delta == 0 and wilson(seq, n)[0] > 0.05:
            failures.append(f"live: the sequence promoted an equal challenger {seq / n:.1%}")
    print("\nlabelled pairs needed at 80 % power, alpha 0.05 (one-sided), champion AUC 0.84, "
          "26.5 % churners:")
    print("    rho    se x sqrt(n)   +0.01 fixed  +0.01 sequential  +0.02 fixed  "
          "+0.02 sequential")
    for rho in (0.5, 0.8, 0.95):
        one = se_per_pair(rho)
        cells = []
        for effect in (0.01, 0.02):
            cells += [sequential.pairs_needed(effect, one, 0.05, effect, sequential=False),
                      sequential.pairs_needed(effect, one, 0.05, effect)]
        print(f"    {rho:<5}  {one:12.3f}   {cells[0]:>10,}  {cells[1]:>16,}  "
              f"{cells[2]:>11,}  {cells[3]:>16,}")
    return failures


def speed() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    for n in (1409, 100_000):
        y, c, k = pair(n, 0.84, 0.0, 0.8, rng)
        compare(y, c, k, challenger_version="2", champion_version="1")  # warm
        reps = 20 if n < 10_000 else 3
        started = time.perf_counter()
        for _ in range(reps):
            compare(y, c, k, challenger_version="2", champion_version="1")
        took = (time.perf_counter() - started) / reps
        started = time.perf_counter()
        for _ in range(reps):
            roc_auc_score(y, c), roc_auc_score(y, k)
        bare = (time.perf_counter() - started) / reps
        print(f"one comparison at {n:,} rows: {took * 1000:.1f} ms (the two AUCs alone with "
              f"scikit-learn: {bare * 1000:.1f} ms; ratio {took / bare:.1f}x)")


if __name__ == "__main__":
    main()
