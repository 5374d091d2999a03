"""The demo's last step: the last decision verified from its evidence bundle alone
(``podium verify``), and the decisions replayed under a stricter policy (``podium policy
diff``), run as the commands a person would type."""

from __future__ import annotations

import subprocess
from pathlib import Path

from webhook_server.dev.processes import bin_path
from webhook_server.store import transition_requests as reqs

# stricter: a higher ROC AUC floor and a comparison at alpha 0.01
STRICTER = {"checks: {": "checks: {roc_auc: 0.84, ",
            "  holdout:": "  comparison: {alpha: 0.01}\n  holdout:"}


def evidence_step(demo, model: str, *, say, error) -> None:
    """``demo``: the running demo (``svc``, ``env``, ``workdir``)."""
    with demo.svc.store.read() as conn:
        judged = reqs.judged(conn, model=model, last=1)
    if not judged:
        raise error("verify", "no decision kept an evidence bundle")
    last = judged[0]
    verified = _podium(demo, "verify", str(last.id))
    say(f"$ podium verify {last.id}")
    for line in verified.stdout.splitlines():
        say(f"  {line}")
    if verified.returncode != 0:
        raise error("verify", f"request {last.id} did not verify: {verified.stdout}")
    policy = Path(demo.env["PODIUM_POLICY"])
    stricter = demo.workdir / "podium-stricter.yaml"
    text = policy.read_text()
    for old, new in STRICTER.items():
        text = text.replace(old, new, 1)
    stricter.write_text(text)
    diffed = _podium(demo, "policy", "diff", str(policy), str(stricter))
    say(f"$ podium policy diff {policy.name} {stricter.name}   (roc_auc floor 0.84, "
        "alpha 0.01)")
    for line in diffed.stdout.splitlines():
        say(f"  {line}")
    if diffed.returncode not in (0, 3):
        raise error("policy diff", diffed.stderr[-1000:])


def _podium(demo, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([bin_path("podium"), *args], env={**demo.base_env(), **demo.env},
                          capture_output=True, text=True, timeout=300)
