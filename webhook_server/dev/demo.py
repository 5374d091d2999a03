"""``podium demo``: the whole loop on one machine, on embedded defaults.

Starts a local MLflow server, a local fake Slack and ``podium serve`` on free ports,
registers the webhook, then tells the story: v1 becomes the first champion after an
approval clicked in Slack; a weaker v2 loses the comparison and is rejected; v3, trained on
more data and offered through the ``challenger`` alias, wins, is approved and becomes
champion (v1 archived); a batch is scored, a drift report is run, and the champion is
rolled back to v1 and forward again. Every line of the timeline is read back from MLflow or
Podium's store; any failure stops the demo with the step, the reason and the log to read.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from model_tests.holdout import sha256_of
from training import data as churn_data
from webhook_server.dev.demo_decay import decay_step
from webhook_server.dev.processes import bin_path, start_mlflow, start_podium

if TYPE_CHECKING:
    from webhook_server.store.records import Request

DEMO_DIR = Path(".podium/demo")
MODEL = "churn-demo"
APPROVER = "U0DEMOAPPROVER"
TERMINAL = ("promoted", "rejected", "failed", "cancelled")
# The three versions of the story: modest first champion, an overfit weaker one, and a
# better one trained on twice the data.
MODEST = {"num_leaves": 3, "learning_rate": 0.1, "n_estimators": 15, "min_child_samples": 100}
WEAK = {"num_leaves": 63, "learning_rate": 0.3, "n_estimators": 300, "min_child_samples": 5}
GOOD = {"num_leaves": 15, "learning_rate": 0.05, "n_estimators": 200, "min_child_samples": 50}
# Checks as shipped, except per-slice AUC on a 1,000-row holdout, which is noisy.
POLICY = f"""\
people:
  dana: {{slack: {APPROVER}, ui: dana, cli: demo}}
default:
  # The demo runs on a laptop beside MLflow and Podium: a 250 ms single-row budget (the
  # default is 100 ms) keeps a busy core from rejecting a 25 ms model.
  checks: {{slice_roc_auc: 0.5, slice_gap: 0.5, latency_p95_ms: 250}}
  holdout: @HOLDOUT@
  holdout_sha256: @HOLDOUT_SHA256@
models:
  {MODEL}:
    approval:
      targets: [Production]
      approvers: [dana]
      quorum: 1
    monitoring: {{retrain_on_decay: true}}
"""
JUDGE_ROWS, JUDGE_SEED = 2000, 4242

EVENTS = {"checking": "22 checks started", "comparing": "checks passed; comparing"}


class DemoError(Exception):
    def __init__(self, step: str, reason: str, log: Path | None = None) -> None:
        super().__init__(f"{step}: {reason}")
        self.step, self.reason, self.log = step, reason, log


def _step(n: int, text: str) -> None:
    click.echo(click.style(f"[{n}] ", bold=True) + text)


def _say(text: str) -> None:
    click.echo(f"    {text}")


def _wait(what: str, predicate, timeout: float = 60, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise DemoError(what, f"not observed within {timeout:.0f} s", log)


class SlackPrinter:
    """Prints what the fake Slack receives as a person would read it in the channel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, str] = {}
        # The terminal itself: training redirects sys.stdout for a while, and a message
        # arriving then (from the fake's thread) must not vanish into that buffer.
        self._out = sys.stdout

    def __call__(self, what: str, message: dict) -> None:
        text = " · ".join(" ".join(line.split())
                          for line in str(message.get("text", "")).splitlines() if line.strip())
        if any(b.get("type") == "actions" for b in message.get("blocks") or []):
            text += "   [Approve] [Reject]"
        with self._lock:
            if what == "view":
                line = f"(modal) {message['view']['title']['text']}"
            elif what == "ephemeral":
                line = f"(only <@{message['user']}> sees) {text}"
            elif what == "update":
                if self._last.get(message["ts"]) == text:
                    return
                line = f"✎ {text}"
            else:
                line = f"  └ {text}" if message.get("thread_ts") else text
            if "ts" in message:
                self._last[message["ts"]] = text
            click.echo(click.style(f"    slack  {line}", fg="cyan"), file=self._out)


def run_demo(keep_running: bool = False, workdir: Path = DEMO_DIR) -> int:
    workdir = workdir.resolve()
    if workdir.exists():  # the demo's own scratch space: every run tells the story afresh
        import shutil

        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    procs: list = []
    try:
        with _Demo(workdir, procs) as demo:
            demo.run()
            if keep_running:
                click.echo(f"\nStill running: MLflow UI {procs[0].url}, Podium {procs[1].url}"
                           f", fake Slack {demo.slack.url}.\n{demo.page_line()}\n"
                           "Press Ctrl-C to stop.")
                while True:
                    time.sleep(3600)
        return 0
    except DemoError as exc:
        click.echo(click.style(f"\ndemo failed at '{exc.step}': {exc.reason}", fg="red"),
                   err=True)
        if exc.log:
            click.echo(f"read the log: {exc.log}", err=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in reversed(procs):
            proc.stop()


class _Demo:
    def __init__(self, workdir: Path, procs: list) -> None:
        self.workdir, self.procs = workdir, procs
        self.slack = None
        self.svc = None

    def __enter__(self) -> _Demo:
        return self

    def __exit__(self, *exc) -> None:
        if self.svc is not None:
            self.svc.close()
        if self.slack is not None:
            self.slack.stop()

    # --- the story -----------------------------------------------------------------------

    def run(self) -> None:
        started = time.monotonic()
        self._start()
        _step(4, "v1: LightGBM on 4,000 synthetic churn rows; request Production (tag)")
        v1 = self._train(4000, MODEST)
        self._request(v1, "tag transition_request=Production")
        self._approve(v1, "no champion yet: the policy asks a person")
        self._await(v1, "promoted")
        _say(f"champion alias -> v{self._champion()}")

        _step(5, "v2: an overfit configuration on the same amount of data; request Production")
        v2 = self._train(4000, WEAK)
        self._request(v2, "tag transition_request=Production")
        row = self._await(v2, "rejected")
        _say(f"rejected: {row.reason}")
        _say(f"champion alias stays at v{self._champion()}")

        _step(6, "v3: twice the data and a better configuration; offered through the "
                 "challenger alias")
        v3 = self._train(8000, GOOD)
        self._request(v3, "alias challenger")
        self._approve(v3, "it wins the comparison; the policy asks a person")
        self._await(v3, "promoted")
        _say(f"champion alias -> v{self._champion()}; v{v1} is now "
             f"{self._tags(v1).get('podium.status')}")

        _step(7, "score a batch with the champion, check drift, roll back and forward")
        self._score_and_drift()
        self._rollback(v1)
        self._rollback(v3)
        self._hand_move(v2, v3)

        _step(8, "after the promotion: outcomes arrive, and the champion has decayed")
        decay_step(self, MODEL, say=_say, wait=_wait, error=DemoError)

        self._drain_slack()
        _step(9, "timeline, read back from Podium's store and MLflow")
        self._timeline([v1, v2, v3])
        click.echo(f"\nDone in {time.monotonic() - started:.0f} s. Look further:\n"
                   f"  MLflow UI      {self.mlflow.url}/#/models/{MODEL} (with "
                   "--keep-running)\n"
                   f"  requests       PODIUM_DATABASE_URL={self.db_url} podium requests\n"
                   f"  one request    PODIUM_DATABASE_URL={self.db_url} podium show 1\n"
                   "  reports        the podium/ artifacts of each version's run "
                   "(request-<id>.json and .md)\n"
                   f"  web page       {self.podium.url}/ui/ (with --keep-running; token "
                   f"{self.ui_token})\n"
                   f"  logs           {self.podium.log_path}")

    def page_line(self) -> str:
        return (f"web page {self.podium.url}/ui/  (log in with the token {self.ui_token}: "
                "you are dana, the approver)")

    # --- pieces --------------------------------------------------------------------------

    def _start(self) -> None:
        from mlflow import MlflowClient

        from webhook_server.core.settings import Settings
        from webhook_server.dev.fakes.slack import FakeSlack
        from webhook_server.service.services import build

        _step(1, f"starting MLflow (SQLite backend, artifacts under {self.workdir})")
        try:
            self.mlflow = start_mlflow(self.workdir / "mlflow")
        except RuntimeError as exc:
            raise DemoError("start MLflow", str(exc),
                            self.workdir / "mlflow" / "mlflow.log") from None
        self.procs.append(self.mlflow)
        token, self.signing = "xoxb-demo-" + secrets.token_hex(8), secrets.token_hex(16)
        self.ui_token = "demo-" + secrets.token_urlsafe(32)  # logs in on the web page as dana
        self.slack = FakeSlack(token=token, on_message=SlackPrinter()).start()
        policy = self.workdir / "podium.yaml"
        holdout = self.workdir / "judge-holdout.csv"  # the judge's data: not any version's
        churn_data.generate(JUDGE_ROWS, seed=JUDGE_SEED)[0].to_csv(holdout, index=False)
        policy.write_text(POLICY.replace("@HOLDOUT@", str(holdout))
                          .replace("@HOLDOUT_SHA256@", sha256_of(holdout)))
        self.db_url = f"sqlite:///{self.workdir / 'podium.db'}"
        self.env = {"MLFLOW_TRACKING_URI": self.mlflow.url, "PODIUM_DATABASE_URL": self.db_url,
                    "PODIUM_MLFLOW_WEBHOOK_SECRET": secrets.token_urlsafe(24),
                    "PODIUM_POLICY": str(policy), "PODIUM_WORKER_POLL": "0.1",
                    "PODIUM_NOTIFY_MAX_BACKOFF": "2", "SLACK_BOT_TOKEN": token,
                    "SLACK_CHANNEL": self.slack.channel_id,
                    "SLACK_SIGNING_SECRET": self.signing, "SLACK_TEAM_ID": self.slack.team_id,
                    "PODIUM_SLACK_API_URL": self.slack.api_url,
                    "PODIUM_API_TOKENS": f"dana={self.ui_token}",
                    "PODIUM_UI_SECRET": secrets.token_urlsafe(24)}
        _step(2, "starting a local fake Slack and podium serve (SQLite store, worker, "
                 "scheduler)")
        try:
            self.podium = start_podium(self.workdir, self.env)
        except RuntimeError as exc:
            raise DemoError("start Podium", str(exc)) from None
        self.procs.append(self.podium)
        _say(f"MLflow {self.mlflow.url}   Podium {self.podium.url}   Slack (fake) "
             f"{self.slack.url}; approver <@{APPROVER}>")
        _say(self.page_line())
        _step(3, "registering the MLflow webhook (podium webhook register --test)")
        reg = subprocess.run([bin_path("podium"), "webhook", "register", "--url",
                              f"{self.podium.url}/webhooks/mlflow", "--test"],
                             env={**_base_env(), **self.env}, capture_output=True, text=True,
                             timeout=120)
        if reg.returncode != 0:
            raise DemoError("register webhook", (reg.stderr or reg.stdout).strip()[-500:])
        _say(reg.stdout.strip().splitlines()[-1])
        self.client = MlflowClient(tracking_uri=self.mlflow.url, registry_uri=self.mlflow.url)
        self.svc = build(Settings(database_url=self.db_url,
                                  mlflow_tracking_uri=self.mlflow.url,
                                  policy_path=str(policy)))

    def _train(self, rows: int, params: dict) -> str:
        from training.train import Dataset, TrainConfig, train

        out = sys.stdout

        def progress(message: str) -> None:
            click.echo(f"    {message}", file=out)

        chatter = io.StringIO()  # MLflow's run links and registry lines; we print ours
        try:
            with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
                result = train(Dataset.synthetic(rows, seed=1),
                               TrainConfig(model_name=MODEL, params=params, seed=1,
                                           experiment="podium-demo"),
                               tracking_uri=self.mlflow.url, progress=progress)
        except Exception as exc:
            raise DemoError(f"train on {rows:,} rows", f"{type(exc).__name__}: {exc}\n"
                            f"{chatter.getvalue()[-2000:]}") from None
        m = result.metrics
        _say(f"registered v{result.version}: holdout ROC AUC {m['holdout_roc_auc']:.3f} "
             f"(oracle {m['holdout_oracle_roc_auc']:.3f})")
        return str(result.version)

    def _request(self, version: str, how: str) -> None:
        from webhook_server.intake.ask import request_transition

        if how.startswith("alias"):
            request_transition(self.client, MODEL, version, challenger_alias="challenger")
        else:
            request_transition(self.client, MODEL, version, target="Production")
        _say(f"{how} set on v{version}: MLflow's webhook tells Podium, which checks the "
             "version and compares it with the champion")

    def _request_row(self, version: str) -> Request:
        from webhook_server.store import transition_requests as reqs

        def latest():
            with self.svc.store.read() as conn:
                rows = [r for r in reqs.list_(conn, model=MODEL) if r.version == version]
            return rows[0] if rows else None

        return _wait(f"the request for v{version}", latest, 30, self.podium.log_path)

    def _state(self, request_id: int) -> Request | None:
        from webhook_server.store import transition_requests as reqs

        with self.svc.store.read() as conn:
            return reqs.get(conn, request_id)

    def _approve(self, version: str, why: str) -> None:
        req = self._request_row(version)
        row = _wait(f"v{version} waiting for approval",
                    lambda: (r := self._state(req.id)).state in (
                        "awaiting_approval", *TERMINAL) and r, 120, self.podium.log_path)
        if row.state != "awaiting_approval":
            raise DemoError(f"v{version} waiting for approval",
                            f"the request ended {row.state}: {row.reason}",
                            self.podium.log_path)
        _say(f"{why}: {row.checks}"
             + (f"; {row.comparison}" if row.comparison else ""))
        message = _wait("the Slack message with buttons", lambda: self._buttons(req.id),
                        30, self.podium.log_path)
        _say(f"clicking Approve as <@{APPROVER}> (a signed request to /slack/interactions)")
        resp = self.slack.click(self.podium.url, self.signing, req.id, APPROVER,
                                message_ts=message["ts"])
        if resp.status_code != 200:
            raise DemoError("click Approve", f"HTTP {resp.status_code}: {resp.text[:300]}",
                            self.podium.log_path)

    def _buttons(self, request_id: int) -> dict | None:
        for message in self.slack.parents():
            for block in message.get("blocks", []):
                if block.get("type") == "actions" and any(
                        str(e.get("value")).split(":")[0] == str(request_id)
                        for e in block["elements"]):
                    return message
        return None

    def _await(self, version: str, expected: str) -> Request:
        req = self._request_row(version)
        row = _wait(f"v{version} decided", lambda: (r := self._state(req.id)).state
                    in TERMINAL and r, 180, self.podium.log_path)
        if row.state != expected:
            raise DemoError(f"v{version} {expected}", f"the request ended {row.state}: "
                            f"{row.reason}", self.podium.log_path)
        tags = _wait(f"v{version} tags written back",
                     lambda: (t := self._tags(version)).get("podium.status") == expected and t,
                     30, self.podium.log_path)
        _say(f"MLflow shows on v{version}: podium.status={tags['podium.status']}, "
             f"podium.checks={tags.get('podium.checks')}, "
             f"podium.decided_by={tags.get('podium.decided_by')}")
        return row

    def _tags(self, version: str) -> dict:
        return dict(self.client.get_model_version(MODEL, version).tags)

    def _champion(self) -> str | None:
        return self.client.get_registered_model(MODEL).aliases.get("champion")

    def _score_and_drift(self) -> None:
        import mlflow

        from training.data import TARGET, generate
        from training.drift import load_frame, run_drift
        from training.score import load_predictor, score_file

        batch, _ = generate(2000, seed=11)
        src, dst = self.workdir / "customers.csv", self.workdir / "scored.csv"
        batch.drop(columns=[TARGET]).to_csv(src, index=False)
        mlflow.set_tracking_uri(self.mlflow.url)
        mlflow.set_registry_uri(self.mlflow.url)
        with contextlib.redirect_stdout(io.StringIO()):
            predict, version = load_predictor(f"models:/{MODEL}@champion")
        report = score_file(predict, src, dst, model_version=version)
        _say(f"scored {report.scored:,} customers with {version} -> {dst} "
             f"({report.rejected} rejected)")
        drifted, _ = generate(3000, seed=31, drift=1.0)
        recent = self.workdir / "recent.csv"
        drifted.to_csv(recent, index=False)
        frame = load_frame(recent)
        drift = run_drift(self.client, f"models:/{version}", frame,
                          lambda _uri, rows: predict(rows), 0.2, tracking_uri=self.mlflow.url)
        _say(f"drift report on 3,000 recent customers: drift in "
             f"{', '.join(drift.drifted) or 'nothing'} (PSI >= 0.2); `podium drift` prints "
             "the full table")

    def _rollback(self, to: str) -> None:
        """As ``podium rollback``: the request is queued and podium serve's worker runs it."""
        out = self.svc.workflow.request_rollback(MODEL, "cli:demo", to=to)
        row = _wait(f"the rollback to v{to} decided",
                    lambda: (r := self._state(out["request"])).state in TERMINAL and r, 60,
                    self.podium.log_path)
        if row.state != "promoted":
            raise DemoError(f"roll back to v{to}", f"the request ended {row.state}: "
                            f"{row.reason}", self.podium.log_path)
        _wait(f"champion at v{to}", lambda: self._champion() == to, 10)
        _say(f"podium rollback {MODEL} --to {to}: champion v{out['from']} -> v{out['to']} "
             f"(MLflow alias now v{self._champion()})")

    def _hand_move(self, to: str, champion: str) -> None:
        """Someone with MLflow access moves the champion in the MLflow UI: Podium puts it
        back (aliases.protect: revert) from the alias webhook."""
        self.client.set_registered_model_alias(MODEL, "champion", to)
        _say(f"someone sets the champion alias to v{to} by hand in the MLflow UI (v{to} "
             "lost its comparison)...")
        _wait(f"the champion back at v{champion}", lambda: self._champion() == champion, 60,
              self.podium.log_path)
        _say(f"...Podium put it back to v{champion} (ledger: external, then reverted; one "
             "Slack alert): nothing reaches the champion except through the gate")

    def _drain_slack(self) -> None:
        """Every notification is in Slack before the demo reads back and stops."""
        from webhook_server.store import outbox as ob

        def drained():
            with self.svc.store.read() as conn:
                return not ob.next_batch(conn, "slack", 1)

        _wait("every Slack message delivered", drained, 30, self.podium.log_path)

    def _timeline(self, versions: list[str]) -> None:
        from webhook_server.core.text_table import render
        from webhook_server.store import ledger
        from webhook_server.store import transition_requests as reqs

        rows = []
        with self.svc.store.read() as conn:
            for req in reversed(reqs.list_(conn, model=MODEL)):
                for h in reqs.history(conn, req.id):
                    if h.from_state == h.to_state and not h.note:
                        continue
                    event = h.note or EVENTS.get(h.to_state, h.to_state)
                    if h.from_state is None:
                        event = f"request received ({req.origin})"
                    rows.append((h.at, [MODEL, req.version, event[:60], h.to_state, h.actor]))
            for entry in ledger.entries(conn, MODEL):
                if entry["kind"] in ("rollback", "external", "reverted"):
                    what = {"rollback": "rollback from", "external": "moved by hand from",
                            "reverted": "put back by Podium from"}[entry["kind"]]
                    rows.append((entry["at"], [MODEL, entry["to_version"],
                                               f"{what} v{entry['from_version']}",
                                               "champion", entry["actor"]]))
        rows.sort(key=lambda r: r[0])
        click.echo(render(["time", "model", "version", "event", "status", "by"],
                          [[at.strftime("%H:%M:%S"), *cells] for at, cells in rows]))
        aliases = self.client.get_registered_model(MODEL).aliases
        click.echo("final aliases: " + ", ".join(f"{a} -> v{v}" for a, v in
                                                 sorted(aliases.items())))
        click.echo(render(["version", "podium.status", "podium.decided_by", "podium.reason"],
                          [[f"v{v}", (t := self._tags(v)).get("podium.status", "-"),
                            t.get("podium.decided_by", "-"),
                            (t.get("podium.reason") or "-")[:70]] for v in versions]))


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PODIUM_", "MLFLOW_", "SLACK_", "GITLAB_"))}


if __name__ == "__main__":
    sys.exit(run_demo())
