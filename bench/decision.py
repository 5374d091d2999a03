"""Decision latency: time from setting `transition_request=Production` in MLflow to the final
`podium.status`, for ten requests, with a per-stage breakdown from Podium's request history;
and, in the same run, the floor: loading both models and scoring the holdout in one process.

    python bench/decision.py [--requests 10] [--rows 7000]
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

from webhook_server.devserver import start_mlflow, start_podium  # noqa: E402

TOKEN = "bench-token"
MODEL = "churn-bench"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("--rows", type=int, default=7000, help="training rows (holdout is 20 %)")
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
        floor = _floor(champion.version, challenger.version, challenger.run_id)

        (work / "podium.yaml").write_text("{}\n")  # the defaults: no approval step
        env = {"MLFLOW_TRACKING_URI": mlflow_proc.url, "PODIUM_DATABASE_URL":
               f"sqlite:///{work / 'podium.db'}", "PODIUM_MLFLOW_WEBHOOK_SECRET": "bench",
               "PODIUM_API_TOKEN": TOKEN, "PODIUM_WORKER_POLL": "0.05",
               "PODIUM_POLICY": str(work / "podium.yaml")}
        podium = start_podium(work, env)
        from webhook_server.registry import Registry

        Registry(mlflow_proc.url).register_webhook(f"{podium.url}/webhooks/mlflow", "bench")
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
            from datetime import datetime

            def t(state, _at=at):
                return datetime.fromisoformat(_at[state]).timestamp()

            stages["pickup"].append(t("checking") - t("queued"))
            stages["checks"].append(t("comparing") - t("checking"))
            final = history[-1]["to"]
            stages["compare+promote"].append(t(final) - t("comparing"))
            print(f"  request {i + 1}/{args.requests}: v{version} {final} in {totals[-1]:.2f} s",
                  flush=True)
        median = statistics.median(totals)
        p95 = sorted(totals)[max(0, int(round(0.95 * len(totals))) - 1)]
        print(f"\ndecision latency over {len(totals)} requests: median {median:.2f} s, "
              f"p95 {p95:.2f} s")
        for name, values in stages.items():
            print(f"  {name:<16} median {statistics.median(values):6.2f} s")
        print(f"floor (load both models, score the holdout, one process): {floor:.2f} s")
        print(f"ratio median / floor: {median / floor:.1f}x")
    finally:
        if podium:
            podium.stop()
        mlflow_proc.stop()


def _floor(champion: str, challenger: str, run_id: str) -> float:
    import mlflow

    from training.data import FEATURES, load_csv

    path = mlflow.artifacts.download_artifacts(run_id=run_id,
                                               artifact_path="holdout/holdout.csv")
    frame = load_csv(path)[list(FEATURES)]
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
