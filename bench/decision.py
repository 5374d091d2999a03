"""Decision latency: time from setting `transition_request=Production` in MLflow to the final
`podium.status`, for ten requests, with a per-stage breakdown from Podium's request history,
once per isolation level of model code (bubblewrap, then the same-user fallback); and, in the
same run, the floor: loading both models and scoring the holdout in one process. Both models
are judged on a holdout named and pinned by the policy.

    python bench/decision.py [--requests 10] [--rows 7000] [--isolation bwrap,process]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests  # noqa: E402

from webhook_server.dev.processes import start_mlflow, start_podium  # noqa: E402

TOKEN = "bench-token"
MODEL = "churn-bench"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("--rows", type=int, default=7000, help="training rows (holdout is 20 %)")
    ap.add_argument("--isolation", default="bwrap,process",
                    help="PODIUM_SANDBOX values to measure, in order")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="podium-decision-"))
    mlflow_proc = start_mlflow(work / "mlflow")
    podium = None
    try:
        import mlflow
        from mlflow import MlflowClient

        from training.train import Dataset, TrainConfig, train

        mlflow.set_tracking_uri(mlflow_proc.url)
        mlflow.set_registry_uri(mlflow_proc.url)
        client = MlflowClient()
        params = {"num_leaves": 15, "learning_rate": 0.05, "n_estimators": 200,
                  "min_child_samples": 50}
        champion = train(Dataset.synthetic(args.rows, 1), TrainConfig(MODEL, params=params),
                         tracking_uri=mlflow_proc.url)
        challenger = train(Dataset.synthetic(args.rows, 2), TrainConfig(MODEL, params=params),
                           tracking_uri=mlflow_proc.url)
        client.set_registered_model_alias(MODEL, "champion", champion.version)

        from model_tests.holdout import sha256_of
        from training.data import generate

        judge = work / "judge.csv"
        generate(args.rows // 5, seed=99)[0].to_csv(judge, index=False)
        floor = _floor(champion.version, challenger.version, judge)
        (work / "podium.yaml").write_text(  # the defaults: no approval step
            f"default:\n  holdout: {judge}\n  holdout_sha256: {sha256_of(judge)}\n"
            "  sandbox: preferred\n")  # measured at each level, the weaker ones too
        results = {}
        for level in args.isolation.split(","):
            env = {"MLFLOW_TRACKING_URI": mlflow_proc.url, "PODIUM_DATABASE_URL":
                   f"sqlite:///{work / f'podium-{level}.db'}",
                   "PODIUM_MLFLOW_WEBHOOK_SECRET": "bench", "PODIUM_API_TOKEN": TOKEN,
                   "PODIUM_WORKER_POLL": "0.05", "PODIUM_POLICY": str(work / "podium.yaml"),
                   "PODIUM_SANDBOX": level}
            podium = start_podium(work, env)
            print(f"isolation {level}:", flush=True)
            results[level] = _requests(client, podium, mlflow_proc.url, challenger, args)
            podium.stop()
            podium = None
        for level, (totals, stages) in results.items():
            median = statistics.median(totals)
            p95 = sorted(totals)[max(0, int(round(0.95 * len(totals))) - 1)]
            print(f"\nisolation {level}: decision latency over {len(totals)} requests: "
                  f"median {median:.2f} s, p95 {p95:.2f} s, {median / floor:.1f}x the floor")
            for name, values in stages.items():
                print(f"  {name:<16} median {statistics.median(values):6.2f} s")
        print(f"\nfloor (load both models, score the holdout, one process): {floor:.2f} s")
        if len(results) > 1:
            (a, (ta, _)), (b, (tb, _)) = list(results.items())[:2]
            print(f"ratio median {a} / {b}: "
                  f"{statistics.median(ta) / statistics.median(tb):.2f}")
    finally:
        if podium:
            podium.stop()
        mlflow_proc.stop()


def _requests(client, podium, tracking_uri: str, challenger, args):
    from datetime import datetime

    from webhook_server.registry import Registry

    Registry(tracking_uri).register_webhook(f"{podium.url}/webhooks/mlflow", "bench")
    source = client.get_model_version(MODEL, challenger.version)
    totals, stages = [], {"pickup": [], "checks": [], "compare+promote": []}
    for i in range(args.requests):
        version = client.create_model_version(
            MODEL, source.source, run_id=source.run_id, description=source.description,
            model_id=source.source[len("models:/"):]).version
        for key, value in source.tags.items():
            client.set_model_version_tag(MODEL, version, key, value)
        started = time.perf_counter()
        client.set_model_version_tag(MODEL, version, "transition_request", "Production")
        while client.get_model_version(MODEL, version).tags.get("podium.status") not in (
                "promoted", "rejected", "failed"):
            time.sleep(0.05)
        totals.append(time.perf_counter() - started)
        history = _history(podium.url, version)
        at = {h["to"]: h["at"] for h in history}

        def t(state, _at=at):
            return datetime.fromisoformat(_at[state]).timestamp()

        final = history[-1]["to"]
        stages["pickup"].append(t("checking") - t("queued"))
        if "comparing" in at:
            stages["checks"].append(t("comparing") - t("checking"))
            stages["compare+promote"].append(t(final) - t("comparing"))
        print(f"  request {i + 1}/{args.requests}: v{version} {final} in {totals[-1]:.2f} s",
              flush=True)
    return totals, stages


def _floor(champion: str, challenger: str, holdout: Path) -> float:
    import mlflow

    from training.data import FEATURES, load_csv

    frame = load_csv(holdout)[list(FEATURES)]
    started = time.perf_counter()
    for version in (challenger, champion):
        mlflow.pyfunc.load_model(f"models:/{MODEL}/{version}").predict(frame)
    return time.perf_counter() - started


def _history(url: str, version: str) -> list[dict]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    rows = requests.get(f"{url}/api/v1/requests?model={MODEL}", headers=headers,
                        timeout=10).json()["requests"]
    rid = next(r["id"] for r in rows if r["version"] == version)
    return requests.get(f"{url}/api/v1/requests/{rid}", headers=headers,
                        timeout=10).json()["history"]


if __name__ == "__main__":
    main()
