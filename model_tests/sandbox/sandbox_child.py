"""The process model code runs in: ``python -I -S sandbox_child.py SITE_PACKAGES``.

It runs inside the sandbox (``isolation.py`` starts it) and is self-contained: the sandbox
holds this file, the Python installation and the model's files, never Podium's package,
its settings or its store. It imports MLflow, pandas and LightGBM ahead of time (a warm
spare), then answers length-prefixed JSON messages (4-byte big-endian length, then UTF-8
JSON) on its stdin/stdout:

    {"op": "load", "path": DIR}                    -> {"ok": true}
    {"op": "predict", "frame": FILE}               -> {"ok": true, "scores": [...]}
    {"op": "exit"}                                 -> (exits)

A frame is a pickled pandas DataFrame written by Podium (trusted, read-only here); scores
go back as plain numbers (class 1 of a two-column output), never as objects. A failure of
the model is ``{"ok": false, "error": ..., "kinds": [exception class names]}``. Anything the
model prints goes to stderr; replies use a private copy of the original stdout. Started
with ``-S`` so no ``.pth`` file of the installation (an editable Podium install) runs here.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time

HEADER = struct.Struct(">I")
MAX_MESSAGE = 64 * 1024 * 1024


def write_message(fd: int, message: dict) -> None:
    data = json.dumps(message).encode()
    data = HEADER.pack(len(data)) + data
    while data:
        data = data[os.write(fd, data):]


def read_message(fd: int) -> dict | None:
    """The next message, or None at end of input (the service is gone)."""
    head = _read_exactly(fd, HEADER.size)
    if head is None:
        return None
    (size,) = HEADER.unpack(head)
    if size > MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes")
    body = _read_exactly(fd, size)
    if body is None:
        return None
    return json.loads(body)


def _read_exactly(fd: int, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _warm_up() -> None:
    """Everything a first ``load`` would otherwise do once (about 0.7 s of a decision):
    the imports, and the map of installed packages MLflow builds to compare a model's
    requirements with this environment."""
    import email.policy  # noqa: F401
    import importlib.metadata

    import lightgbm  # noqa: F401
    import mlflow.pyfunc  # noqa: F401
    import mlflow.sklearn  # noqa: F401
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.pandas_compat  # noqa: F401
    import sklearn.compose  # noqa: F401
    import sklearn.impute  # noqa: F401
    import sklearn.pipeline  # noqa: F401
    import sklearn.preprocessing  # noqa: F401
    import skops.io  # noqa: F401
    from mlflow.utils import requirements_utils

    try:  # the module -> package map of every installed distribution, built once
        requirements_utils._init_packages_to_modules_map()
    except Exception:  # MLflow moved it: the first load builds it, as without a warm-up
        importlib.metadata.distributions()


def _failure(exc: BaseException) -> dict:
    kinds = [c.__name__ for c in type(exc).__mro__ if c not in (object, BaseException)]
    first = (str(exc).splitlines() or [""])[0]
    return {"ok": False, "error": f"{type(exc).__name__}: {first}"[:1000], "kinds": kinds[:8]}


def serve(requests: int, replies: int) -> int:
    import pickle

    import numpy as np

    model = None
    while True:
        req = read_message(requests)
        if req is None or req.get("op") == "exit":
            return 0
        try:
            op = req.get("op")
            if op == "load":
                import mlflow.pyfunc

                model = mlflow.pyfunc.load_model(req["path"])
                reply = {"ok": True}
            elif op == "predict":
                if model is None:
                    raise RuntimeError("no model loaded")
                # written by Podium for this call only: nothing of it is kept (a shadow of
                # `podium score` is sent a new frame per chunk, for hours)
                with open(req["frame"], "rb") as fh:
                    frame = pickle.load(fh)  # noqa: S301 (Podium's)
                out = np.asarray(model.predict(frame), dtype=float)
                del frame
                scores = out[:, 1] if out.ndim == 2 and out.shape[1] == 2 else out.reshape(-1)
                reply = {"ok": True, "scores": scores.tolist()}
            else:
                raise ValueError(f"unknown op {op!r}")
        except BaseException as exc:  # MemoryError, SystemExit from model code: a failure
            reply = _failure(exc)
        write_message(replies, reply)


def main(argv: list[str]) -> int:
    for path in argv[1:]:  # the installation's site-packages, without running .pth files
        sys.path.append(path)
    replies = os.dup(1)
    requests = os.dup(0)
    os.dup2(2, 1)  # stray prints of the model go to stderr
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    started = time.perf_counter()
    try:
        _warm_up()
    except BaseException as exc:
        write_message(replies, {"ready": False, **_failure(exc)})
        return 1
    write_message(replies, {"ready": True, "warm_s": round(time.perf_counter() - started, 3)})
    return serve(requests, replies)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
