"""bench/scoring.py --log: one ``podium score`` measurement with the inference log on, in a
fresh interpreter (``python -m bench.scoring_log_child MODEL INPUT OUTPUT CHUNK_ROWS``).

The same as ``bench.scoring_child score``, with ``training.inference_log.InferenceLog``
writing each chunk's customer ids and scores as Parquet into a temporary directory (removed
afterwards). Prints one JSON object like the other child.
"""

from __future__ import annotations

import json
import pickle
import sys
import tempfile
from pathlib import Path

from bench.scoring_child import _status_mb


def main(argv: list[str]) -> None:
    model_path, src, dst, chunk_rows = argv
    from training.inference_log import InferenceLog
    from training.score import score_file

    with open(model_path, "rb") as f:
        model = pickle.load(f)  # noqa: S301  (written by bench/scoring.py in this run)
    floor = _status_mb("VmRSS")
    with tempfile.TemporaryDirectory(prefix="podium-log-") as root:
        with InferenceLog(root, model="bench", version="1", run_id="bench") as log:
            report = score_file(lambda X: model.predict_proba(X)[:, 1], Path(src), Path(dst),
                                model_version="bench", chunk_rows=int(chunk_rows), log=log)
        logged = log.close().rows
    print(json.dumps({"rows": report.rows, "scored": report.scored,
                      "rejected": report.rejected, "seconds": report.seconds,
                      "logged": logged, "floor_rss_mb": floor,
                      "peak_rss_mb": _status_mb("VmHWM")}))


if __name__ == "__main__":
    main(sys.argv[1:])
