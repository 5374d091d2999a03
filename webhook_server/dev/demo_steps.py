"""The demo's steps (see ``demo``): train a version, ask for it, click Approve
in the fake Slack, wait for the decision, score and check drift, roll back, move the
champion by hand, and read the timeline back; and how the demo prints (``SlackPrinter``)."""

from __future__ import annotations

import contextlib
import io
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from webhook_server.contract import TAG_CHECKS, TAG_DECIDED_BY, TAG_REASON, TAG_STATUS
from webhook_server.core.text_table import render
from webhook_server.intake.ask import request_transition
from webhook_server.store import ledger
from webhook_server.store import outbox as ob
from webhook_server.store import transition_requests as reqs

if TYPE_CHECKING:
    from webhook_server.store.records import Request

MODEL = "churn-demo"
APPROVER = "U0DEMOAPPROVER"
TERMINAL = ("promoted", "rejected", "failed", "cancelled")
EVENTS = {"checking": "22 checks started", "comparing": "checks passed; comparing"}


class DemoError(Exception):
    def __init__(self, step: str, reason: str, log: Path | None = None) -> None:
        super().__init__(f"{step}: {reason}")
        self.step, self.reason, self.log = step, reason, log


def step(n: int, text: str) -> None:
    click.echo(click.style(f"[{n}] ", bold=True) + text)


def say(text: str) -> None:
    click.echo(f"    {text}")


def wait(what: str, predicate, timeout: float = 60, log: Path | None = None):
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
        for block in message.get("blocks") or []:
            if block.get("type") == "actions" and block.get("elements"):
                # the buttons as labelled: [Approve] [Reject], [Rollback] [Dismiss]
                text += "  " + "".join(f" [{e['text']['text']}]" for e in block["elements"])
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


class DemoSteps:
    """The steps of ``demo._Demo``: it starts the processes and tells the story with these
    (``workdir``, ``svc``, ``slack``, ``client``, ``mlflow``, ``podium``, ``signing`` are
    set by its start)."""

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
        say(f"registered v{result.version}: holdout ROC AUC {m['holdout_roc_auc']:.3f} "
            f"(oracle {m['holdout_oracle_roc_auc']:.3f})")
        return str(result.version)

    def _request(self, version: str, how: str) -> None:
        if how.startswith("alias"):
            request_transition(self.client, MODEL, version, challenger_alias="challenger")
        else:
            request_transition(self.client, MODEL, version, target="Production")
        say(f"{how} set on v{version}: MLflow's webhook tells Podium, which checks the "
            "version and compares it with the champion")

    def _request_row(self, version: str) -> Request:
        def latest():
            with self.svc.store.read() as conn:
                rows = [r for r in reqs.list_(conn, model=MODEL) if r.version == version]
            return rows[0] if rows else None

        return wait(f"the request for v{version}", latest, 30, self.podium.log_path)

    def _state(self, request_id: int) -> Request | None:
        with self.svc.store.read() as conn:
            return reqs.get(conn, request_id)

    def _approve(self, version: str, why: str) -> None:
        req = self._request_row(version)
        row = wait(f"v{version} waiting for approval",
                   lambda: (r := self._state(req.id)).state in (
                        "awaiting_approval", *TERMINAL) and r, 120, self.podium.log_path)
        if row.state != "awaiting_approval":
            raise DemoError(f"v{version} waiting for approval",
                            f"the request ended {row.state}: {row.reason}",
                            self.podium.log_path)
        say(f"{why}: {row.checks}"
            + (f"; {row.comparison}" if row.comparison else ""))
        message = wait("the Slack message with buttons", lambda: self._buttons(req.id),
                       30, self.podium.log_path)
        say(f"clicking Approve as <@{APPROVER}> (a signed request to /slack/interactions)")
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
        row = wait(f"v{version} decided", lambda: (r := self._state(req.id)).state
                   in TERMINAL and r, 180, self.podium.log_path)
        if row.state != expected:
            raise DemoError(f"v{version} {expected}", f"the request ended {row.state}: "
                            f"{row.reason}", self.podium.log_path)
        tags = wait(f"v{version} tags written back",
                    lambda: (t := self._tags(version)).get(TAG_STATUS) == expected and t,
                    30, self.podium.log_path)
        say(f"MLflow shows on v{version}: {TAG_STATUS}={tags[TAG_STATUS]}, "
            f"{TAG_CHECKS}={tags.get(TAG_CHECKS)}, "
            f"{TAG_DECIDED_BY}={tags.get(TAG_DECIDED_BY)}")
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
        say(f"scored {report.scored:,} customers with {version} -> {dst} "
            f"({report.rejected} rejected)")
        drifted, _ = generate(3000, seed=31, drift=1.0)
        recent = self.workdir / "recent.csv"
        drifted.to_csv(recent, index=False)
        frame = load_frame(recent)
        drift = run_drift(self.client, f"models:/{version}", frame,
                          lambda _uri, rows: predict(rows), 0.2, tracking_uri=self.mlflow.url)
        say(f"drift report on 3,000 recent customers: drift in "
            f"{', '.join(drift.drifted) or 'nothing'} (PSI >= 0.2); `podium drift` prints "
            "the full table")

    def _rollback(self, to: str) -> None:
        """As ``podium rollback``: the request is queued and podium serve's worker runs it."""
        out = self.svc.workflow.request_rollback(MODEL, "cli:demo", to=to)
        row = wait(f"the rollback to v{to} decided",
                   lambda: (r := self._state(out["request"])).state in TERMINAL and r, 60,
                   self.podium.log_path)
        if row.state != "promoted":
            raise DemoError(f"roll back to v{to}", f"the request ended {row.state}: "
                            f"{row.reason}", self.podium.log_path)
        wait(f"champion at v{to}", lambda: self._champion() == to, 10)
        say(f"podium rollback {MODEL} --to {to}: champion v{out['from']} -> v{out['to']} "
            f"(MLflow alias now v{self._champion()})")

    def _hand_move(self, to: str, champion: str) -> None:
        """Someone with MLflow access moves the champion in the MLflow UI: Podium puts it
        back (aliases.protect: revert) from the alias webhook."""
        self.client.set_registered_model_alias(MODEL, "champion", to)
        say(f"someone sets the champion alias to v{to} by hand in the MLflow UI (v{to} "
            "lost its comparison)...")
        wait(f"the champion back at v{champion}", lambda: self._champion() == champion, 60,
             self.podium.log_path)
        say(f"...Podium put it back to v{champion} (ledger: external, then reverted; one "
            "Slack alert): nothing reaches the champion except through the gate")

    def _drain_slack(self) -> None:
        """Every notification is in Slack before the demo reads back and stops."""
        def drained():
            with self.svc.store.read() as conn:
                return not ob.next_batch(conn, "slack", 1)

        wait("every Slack message delivered", drained, 30, self.podium.log_path)

    def _timeline(self, versions: list[str]) -> None:
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
        click.echo(render(["version", TAG_STATUS, TAG_DECIDED_BY, TAG_REASON],
                          [[f"v{v}", (t := self._tags(v)).get(TAG_STATUS, "-"),
                            t.get(TAG_DECIDED_BY, "-"),
                            (t.get(TAG_REASON) or "-")[:70]] for v in versions]))
