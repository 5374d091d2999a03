"""What a shadow costs `podium score`: the same file scored with the inference log on, without
a shadow, with one shadow on every row (max_share 1) and on a quarter of them (0.25), the
shadow scored in this process and, as `podium score` runs it, in a sandbox of its own.

    python bench/scoring_shadow.py [--rows 300000] [--repeats 3] [--sandbox bwrap,process]
                                   [--no-sandbox]

Both models are LightGBM pipelines as `podium train` builds them (training.features, the
500-tree configuration of bench/scoring.py; the shadow a different seed), trained on 20,000
synthetic rows. The input is synthetic Parquet (``training.data.generate``). Each
configuration runs ``--repeats`` times in turn (interleaved, so a load spike hits all of them)
in this process; the median rows/s is reported, with the ratio to the run without a shadow
and the shadow's own predict time as ``training.score`` reports it (``shadow_seconds``).
Expected: one shadow on every row about halves the rate (the model is most of the work),
a quarter share costs about a quarter of that.

The sandboxed configurations go through the product's own path: the shadow's files saved as
``podium train`` logs them (``mlflow.sklearn``, ``predict_proba``, its code_paths) are
put in a ``SandboxedModel`` from a ``SandboxPool`` at the isolation ``detect`` gives (as
``SandboxGates.open`` does, without the MLflow download), and ``monitoring.shadow.sandboxed``
makes the scorer ``podium score`` uses: each chunk's shadow rows pickled to a file, read and
predicted in the sandbox, the scores sent back over its pipe. ``--sandbox`` names the levels
to measure (default: the one this machine detects; a level that falls back is measured as
the level it gets, and said); ``--no-sandbox`` measures none. Each run opens its sandbox as a
``podium score`` does (start and load: ``open_seconds``, outside the run's rows/s).
The figures, with every run's, go to bench/results/scoring_shadow.json (not committed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from training.data import FEATURES, TARGET, generate, labels, to_typed  # noqa: E402
from training.features import model_pipeline  # noqa: E402
from training.inference_log import InferenceLog  # noqa: E402
from training.score import Shadow, score_file  # noqa: E402
from training.train import lgbm  # noqa: E402

PARAMS = {"num_leaves": 31, "learning_rate": 0.02, "n_estimators": 500,
          "min_child_samples": 50, "reg_lambda": 0.0, "colsample_bytree": 1.0}
SHARES = (("max_share 1", 1.0), ("max_share 0.25", 0.25))


def _model(seed: int, save_to: Path | None = None):
    """The pipeline's ``predict_proba`` (positive class); with ``save_to``, its files saved
    there as ``podium train`` logs them (what the sandbox loads)."""
    import mlflow.sklearn

    raw, _ = generate(20_000, seed=seed)
    X = to_typed(raw)[list(FEATURES)]
    pipe = model_pipeline(lgbm(PARAMS, seed))
    pipe.fit(X, labels(raw))
    if save_to is not None:
        from training.train import SKOPS_TRUSTED_TYPES

        mlflow.sklearn.save_model(pipe, str(save_to), pyfunc_predict_fn="predict_proba",
                                  skops_trusted_types=SKOPS_TRUSTED_TYPES,
                                  code_paths=[str(ROOT / "training")])
    return lambda X: pipe.predict_proba(X)[:, 1]


class _Judge:
    """``SandboxGates.open`` for files already on disk: a ``SandboxedModel`` from the pool,
    the files put where Podium puts a download, then loaded."""

    def __init__(self, pool, files: Path) -> None:
        self.pool, self.files = pool, files

    def open(self, uri: str):
        from model_tests.sandbox import SandboxedModel

        model = SandboxedModel(self.pool.take, uri)
        try:
            shutil.copytree(self.files, model.files)
            model.load()
        except BaseException:
            model.close()
            raise
        return model


def _sandboxed_shadow(pool, files: Path):
    """The scorer ``podium score`` makes of a shadow (``monitoring.shadow.sandboxed``), the
    models it opened (to close), and the seconds the opening took."""
    from webhook_server.monitoring.shadow import sandboxed

    opened: list = []
    started = time.perf_counter()
    predict = sandboxed(_Judge(pool, files), "models:/bench/2", opened,
                        lambda text: print(text, file=sys.stderr))
    return predict, opened, time.perf_counter() - started


def _run(work: Path, src: Path, champion, shadow, share: float | None) -> dict:
    log = InferenceLog(str(work / "log"), model="bench", version="1")
    shadows = []
    if share is not None:
        shadows = [Shadow(shadow, InferenceLog(str(work / "log"), model="bench", version="2",
                                               role="shadow"), share)]
    with log:
        for s in shadows:
            s.log.__enter__()
        try:
            report = score_file(champion, src, work / "out.parquet", model_version="bench/1",
                                log=log, shadows=shadows)
        finally:
            for s in shadows:
                s.log.__exit__(None, None, None)
    return {"rows_per_s": report.rows_per_s, "shadow_seconds": report.shadow_seconds,
            "seconds": report.seconds, "shadow_rows": list(report.shadow_rows)}


def _run_sandboxed(work: Path, src: Path, champion, pool, files: Path, share: float) -> dict:
    """One ``podium score`` with the shadow in a sandbox of its own, opened for the run."""
    predict, opened, open_s = _sandboxed_shadow(pool, files)
    try:
        out = _run(work, src, champion, predict, share)
        broken = [m.broken for m in opened if m.broken]
    finally:
        for model in opened:
            model.close()
    if broken:
        raise SystemExit(f"the sandboxed shadow failed: {broken[0]}")
    return {**out, "open_seconds": open_s}


def _levels(args) -> list:
    """The isolations to measure: each level asked for as ``detect`` gives it (deduplicated:
    a level that falls back is measured once, as the level it gets)."""
    from model_tests.sandbox import LEVELS, detect

    if args.no_sandbox:
        return []
    asked = args.sandbox.split(",") if args.sandbox else ["auto"]
    out = []
    for level in asked:
        if level not in ("auto", *LEVELS):
            raise SystemExit(f"--sandbox: unknown level {level!r} (auto, {', '.join(LEVELS)})")
        iso = detect(level)
        if iso.level != level and level != "auto":
            print(f"--sandbox {level}: not available here, {iso.level} instead ({iso.why})")
        if all(o.level != iso.level for o in out):
            out.append(iso)
    return out


def _configs(levels: list) -> list[tuple[str, str | None, float | None]]:
    """(name, isolation level or None for this process, share or None for no shadow)."""
    out: list[tuple[str, str | None, float | None]] = [("no shadow", None, None)]
    out += [(f"one shadow, {name}", None, share) for name, share in SHARES]
    out += [(f"in sandbox ({iso.level}), {name}", iso.level, share)
            for iso in levels for name, share in SHARES]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sandbox", default=None, metavar="LEVELS",
                    help="comma-separated isolation levels to measure the sandboxed shadow "
                         "at (bwrap, user, process; default: the one detected here)")
    ap.add_argument("--no-sandbox", action="store_true",
                    help="measure the shadow in this process only")
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" /
                    "scoring_shadow.json")
    args = ap.parse_args()
    if args.rows < 1 or args.repeats < 1:
        raise SystemExit("--rows and --repeats must be at least 1")
    levels = _levels(args)
    configs = _configs(levels)
    from model_tests.sandbox import SandboxPool

    pools = {iso.level: SandboxPool(iso, spares=0) for iso in levels}  # the product's Limits
    with tempfile.TemporaryDirectory(prefix="podium-shadow-bench-") as tmp:
        work = Path(tmp)
        champion, shadow = _model(1), _model(2, save_to=work / "shadow-model")
        raw, _ = generate(args.rows, seed=9)
        src = work / "in.parquet"
        raw.drop(columns=[TARGET]).to_parquet(src, index=False)
        runs: dict[str, list[dict]] = {name: [] for name, _, _ in configs}
        try:
            _run(work, src, champion, shadow, None)  # warm: imports, the first predict
            for _ in range(args.repeats):
                for name, level, share in configs:
                    runs[name].append(
                        _run(work, src, champion, shadow, share) if level is None else
                        _run_sandboxed(work, src, champion, pools[level],
                                       work / "shadow-model", share))
        finally:
            for pool in pools.values():
                pool.close()
    _report(args, levels, configs, runs)


def _report(args, levels: list, configs: list, runs: dict[str, list[dict]]) -> None:
    base = statistics.median(r["rows_per_s"] for r in runs["no shadow"])
    print(f"{args.rows:,} rows, Parquet, inference log on; median of {args.repeats}")
    for iso in levels:
        print(f"sandbox: {iso.describe()}")
    print(f"{'configuration':<36} {'rows/s':>10} {'ratio':>7} {'shadow rows':>12} "
          f"{'shadow s':>9} {'open s':>7}")
    summary = {}
    for name, level, _ in configs:
        rate = statistics.median(r["rows_per_s"] for r in runs[name])
        spent = statistics.median(r["shadow_seconds"] for r in runs[name])
        rows = runs[name][0]["shadow_rows"]
        opened = (statistics.median(r["open_seconds"] for r in runs[name])
                  if level is not None else None)
        print(f"{name:<36} {rate:>10,.0f} {rate / base:>7.2f} "
              f"{(rows[0] if rows else 0):>12,} {spent:>9.2f} "
              f"{'' if opened is None else f'{opened:.2f}':>7}")
        summary[name] = {"isolation": level, "rows_per_s": round(rate),
                         "ratio": round(rate / base, 3), "shadow_rows": rows,
                         "shadow_seconds": round(spent, 3), "runs": runs[name]}
        if opened is not None:
            summary[name]["open_seconds"] = round(opened, 3)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "rows": args.rows, "repeats": args.repeats,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sandbox": {iso.level: iso.why for iso in levels}, "configs": summary}, indent=2))
    print(f"\nfigures: {args.json}")


if __name__ == "__main__":
    main()
