"""Decision latency and throughput, end to end through a real MLflow server and `podium serve`
(its own worker process, two worker threads, default poll interval: the doorbell wakes it).

Latency: the time from setting `transition_request=Production` on a new version in MLflow to
its final `podium.status`, for `--requests` requests one after another, `--gap` seconds apart
(the sandbox pool refills between requests, as it does between real ones), with a per-stage
breakdown from Podium's request history; once per isolation level of model code (bubblewrap
with its sandboxes forked from a warm zygote, bubblewrap starting each sandbox on its own --
``bwrap-nozygote``, the baseline --, then the same-user fallback). Throughput: `--burst`
requests over `--models` registered models set at once, with the zygote and without
(`--burst-at`); decisions per minute, the ratio between the two and to `burst x floor`.
The floor, in the same run: loading both models and scoring the holdout in one warm
process. Both models are judged on a holdout named and pinned by the policy.

Every latency request ends in a promotion: the champion is an overfit model (same 200 trees,
63 leaves, trained on a fifth of the rows: ROC AUC about 0.78 on the judge's holdout against
the challenger's 0.84), and it is made champion again before each request (the policy's
``aliases.protect: off`` lets the bench move the alias itself), so each figure includes the
comparison that wins, the alias move, the report and the predecessor's tag.

    python bench/decision.py [--requests 10] [--gap 6] [--burst 50] [--models 10]
                             [--isolation bwrap,bwrap-nozygote,process]
                             [--burst-at bwrap,bwrap-nozygote] [--quick]

Writes bench/results/decision.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from webhook_server.dev.processes import start_mlflow, start_podium  # noqa: E402

TOKEN = "bench-api-token-Qm7xK2pV9rL4tZ8wN3sB6cF1hJ5dG0yE"  # serve refuses weak tokens
MODEL = "churn-bench"
FINAL = ("promoted", "rejected", "failed")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("--gap", type=float, default=6.0,
                    help="seconds between two latency requests")
    ap.add_argument("--burst", type=int, default=50, help="throughput: requests set at once")
    ap.add_argument("--models", type=int, default=10, help="throughput: models they span")
    ap.add_argument("--rows", type=int, default=7000, help="training rows (holdout is 20 %%)")
    ap.add_argument("--isolation", default="bwrap,bwrap-nozygote,process",
                    help="PODIUM_SANDBOX values to measure latency at, in order "
                         "(bwrap-nozygote: bwrap, each sandbox started on its own)")
    ap.add_argument("--burst-at", default="bwrap,bwrap-nozygote",
                    help="isolation levels to measure throughput at (the first is reported "
                         "against the others)")
    ap.add_argument("--quick", action="store_true", help="3 requests, a burst of 6 over 3")
    args = ap.parse_args()
    if args.quick:
        args.requests, args.burst, args.models, args.gap = 3, 6, 3, 4.0
    work = Path(tempfile.mkdtemp(prefix="podium-decision-"))
    mlflow_proc = start_mlflow(work / "mlflow")
    podium = None
    try:
        import mlflow
        from mlflow import MlflowClient

        from model_tests.holdout import sha256_of
        from training.data import generate
        from training.train import Dataset, TrainConfig, train
        from webhook_server.adapters.registry import Registry

        mlflow.set_tracking_uri(mlflow_proc.url)
        mlflow.set_registry_uri(mlflow_proc.url)
        client = MlflowClient()
        params = {"num_leaves": 15, "learning_rate": 0.05, "n_estimators": 200,
                  "min_child_samples": 50}
        overfit = {**params, "num_leaves": 63, "learning_rate": 0.3, "min_child_samples": 2}
        print("training the champion and the challenger...", flush=True)
        champion = train(Dataset.synthetic(args.rows // 5, 1),
                         TrainConfig(MODEL, params=overfit), tracking_uri=mlflow_proc.url)
        challenger = train(Dataset.synthetic(args.rows, 2), TrainConfig(MODEL, params=params),
                           tracking_uri=mlflow_proc.url)
        client.set_registered_model_alias(MODEL, "champion", champion.version)
        judge = work / "judge.csv"
        generate(args.rows // 5, seed=99)[0].to_csv(judge, index=False)
        floor = _floor(champion.version, challenger.version, judge)
        (work / "podium.yaml").write_text(  # the defaults: no approval step
            f"default:\n  holdout: {judge}\n  holdout_sha256: {sha256_of(judge)}\n"
            "  sandbox: preferred\n"  # measured at each level, the weaker ones too
            "  aliases: {protect: 'off'}\n")  # the bench puts its champion back itself
        latency = {}
        levels = args.isolation.split(",")
        for level in levels:
            podium = start_podium(work, _env(work, mlflow_proc.url, level))
            print(f"isolation {level}: latency, {args.requests} requests {args.gap:g} s apart",
                  flush=True)
            latency[level] = _latency(client, podium, mlflow_proc.url, champion, challenger,
                                      args)
            podium.stop()
            podium = None
        bursts = {}
        for level in args.burst_at.split(",") if args.burst else ():
            # last: each burst's ~1,000 tag webhooks keep MLflow's sender busy a while
            podium = start_podium(work, _env(work, mlflow_proc.url, level))
            hook = Registry(mlflow_proc.url).register_webhook(f"{podium.url}/webhooks/mlflow",
                                                              "bench", name=f"bench-{level}")
            print(f"isolation {level}: throughput, {args.burst} requests over "
                  f"{args.models} models at once", flush=True)
            bursts[level] = _burst(client, podium, champion, challenger, args,
                                   prefix=f"{MODEL}-{len(bursts)}")
            client.delete_webhook(hook["id"])
            podium.stop()
            podium = None
        _report(latency, bursts, floor, args)
    finally:
        if podium:
            podium.stop()
        mlflow_proc.stop()


def _env(work: Path, tracking_uri: str, level: str) -> dict[str, str]:
    # One store for every level, as one deployment has: a Podium started on a store of its
    # own reconciles the registry at start and found each earlier level's versions still
    # tagged ``transition_request`` with no request stored, so it decided them all again
    # (a full decision each, under the model lock) ahead of its own first requests: the
    # ~100 s p95 at the process level on a slow day, and extra decisions in the burst.
    return {"MLFLOW_TRACKING_URI": tracking_uri,
            "PODIUM_DATABASE_URL": f"sqlite:///{work / 'podium.db'}",
            "PODIUM_MLFLOW_WEBHOOK_SECRET": "bench", "PODIUM_API_TOKEN": TOKEN,
            "PODIUM_POLICY": str(work / "podium.yaml"),
            "PODIUM_SANDBOX": level.removesuffix("-nozygote"),
            "PODIUM_SANDBOX_ZYGOTE": "false" if level.endswith("-nozygote") else "true"}


def _new_version(client, model: str, source) -> str:
    version = client.create_model_version(
        model, source.source, run_id=source.run_id, description=source.description,
        model_id=source.source[len("models:/"):]).version
    for key, value in source.tags.items():
        client.set_model_version_tag(model, version, key, value)
    return version


def _latency(client, podium, tracking_uri: str, champion, challenger, args):
    from webhook_server.adapters.registry import Registry

    Registry(tracking_uri).register_webhook(f"{podium.url}/webhooks/mlflow", "bench")
    source = client.get_model_version(MODEL, challenger.version)
    totals, stages, outcomes = [], {}, []
    for i in range(args.requests):
        version = _new_version(client, MODEL, source)
        # the overfit champion back in place: the request's comparison wins, it promotes
        client.set_registered_model_alias(MODEL, "champion", champion.version)
        time.sleep(args.gap)  # an idle machine between two decisions, as between real ones
        started = time.perf_counter()
        client.set_model_version_tag(MODEL, version, "transition_request", "Production")
        while client.get_model_version(MODEL, version).tags.get("podium.status") not in FINAL:
            time.sleep(0.02)
        totals.append(time.perf_counter() - started)
        shown = _shown(podium.url, MODEL, version)
        outcomes.append(shown["state"])
        for stage, seconds in shown["stages"].items():
            if stage not in FINAL:
                stages.setdefault(stage, []).append(seconds)
        print(f"  request {i + 1}/{args.requests}: v{version} {shown['state']} in "
              f"{totals[-1]:.2f} s ({', '.join(f'{k} {v:.2f}' for k, v in shown['stages'].items() if k not in FINAL)})",  # noqa: E501
              flush=True)
    return totals, stages, outcomes


def _burst(client, podium, champion, challenger, args, prefix: str) -> dict:
    """``args.burst`` requests over ``args.models`` models (each with its own champion, a
    copy of the bench champion), all set at once; the worker's two threads take them."""
    champ = client.get_model_version(MODEL, champion.version)
    chall = client.get_model_version(MODEL, challenger.version)
    models = [f"{prefix}-{i}" for i in range(args.models)]
    todo = []
    for model in models:
        client.create_registered_model(model)
        first = _new_version(client, model, champ)
        client.set_registered_model_alias(model, "champion", first)
    for i in range(args.burst):
        model = models[i % len(models)]
        todo.append((model, _new_version(client, model, chall)))
    started = time.perf_counter()
    threads = [threading.Thread(target=client.set_model_version_tag,
                                args=(m, v, "transition_request", "Production"))
               for m, v in todo]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pending = set(todo)
    while pending:
        pending = {(m, v) for m, v in pending
                   if client.get_model_version(m, v).tags.get("podium.status") not in FINAL}
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    return {"requests": len(todo), "models": len(models), "seconds": round(elapsed, 2),
            "decisions_per_minute": round(len(todo) / elapsed * 60, 1)}


def _floor(champion: str, challenger: str, holdout: Path) -> float:
    import mlflow

    from training.data import FEATURES, load_csv

    frame = load_csv(holdout)[list(FEATURES)]
    mlflow.pyfunc.load_model(f"models:/{MODEL}/{champion}")  # warm: imports done
    started = time.perf_counter()
    for version in (challenger, champion):
        mlflow.pyfunc.load_model(f"models:/{MODEL}/{version}").predict(frame)
    return time.perf_counter() - started


def _shown(url: str, model: str, version: str) -> dict:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    rows = requests.get(f"{url}/api/v1/requests?model={model}", headers=headers,
                        timeout=10).json()["requests"]
    rid = next(r["id"] for r in rows if r["version"] == version)
    return requests.get(f"{url}/api/v1/requests/{rid}", headers=headers, timeout=10).json()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(round(q * len(ordered))) - 1)]


def _report(latency: dict, bursts: dict, floor: float, args) -> None:
    import os

    out = {"floor_s": round(floor, 3), "latency": {}, "throughput": None,
           "load_average_at_end": os.getloadavg()[0], "cpus": os.cpu_count()}
    print(f"\nfloor (load both models, score the holdout, one warm process): {floor:.2f} s")
    print(f"{'isolation':<16}{'median s':>10}{'p95 s':>8}{'x floor':>9}   stages (median s)")
    for level, (totals, stages, outcomes) in latency.items():
        median, p95 = statistics.median(totals), _pct(totals, 0.95)
        staged = {k: round(statistics.median(v), 3) for k, v in stages.items()}
        print(f"{level:<16}{median:>10.2f}{p95:>8.2f}{median / floor:>9.1f}   "
              + ", ".join(f"{k} {v:.2f}" for k, v in staged.items())
              + f"; promoted {outcomes.count('promoted')}/{len(outcomes)}")
        out["latency"][level] = {"requests": len(totals), "median_s": round(median, 3),
                                 "p95_s": round(p95, 3), "x_floor": round(median / floor, 2),
                                 "stages_median_s": staged,
                                 "outcomes": {o: outcomes.count(o) for o in sorted(set(outcomes))},
                                 "totals_s": [round(t, 3) for t in totals],
                                 "stages_s": {k: [round(x, 3) for x in v]
                                              for k, v in stages.items()}}
    first = next(iter(bursts), None)
    out["throughput"] = {}
    for level, burst in bursts.items():
        ratio = burst["seconds"] / (burst["requests"] * floor)
        versus = ""
        if level != first:
            speedup = bursts[first]["decisions_per_minute"] / burst["decisions_per_minute"]
            versus = f"; {first} does {speedup:.2f}x as many"
            burst = {**burst, f"{first}_x": round(speedup, 2)}
        print(f"throughput ({level}): {burst['requests']} requests over {burst['models']} "
              f"models in {burst['seconds']:.1f} s: {burst['decisions_per_minute']:.0f} "
              f"decisions/min; {ratio:.1f}x {burst['requests']} x the floor{versus}")
        out["throughput"][level] = {**burst, "x_burst_floor": round(ratio, 2)}
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "decision.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
