"""A fake Slack Web API: the methods Podium calls, answering like Slack does.

``chat.postMessage`` (with ``metadata`` and ``thread_ts``), ``chat.update``, ``views.open``,
``chat.postEphemeral``, ``conversations.history`` / ``conversations.replies`` (with
``include_all_metadata``), ``usergroups.users.list``, ``auth.test`` and an incoming webhook
(``POST /hooks/<id>``). Used through the real ``slack_sdk`` client (base URL ``<url>/api/``).
Tests make it fail on demand: ``fail_next(n, status, retry_after)`` or ``down = True``.
Like Slack, ``views.open`` refuses a click's trigger_id more than ``trigger_ttl_s`` (3 s)
after the click (``expired_trigger_id``).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import requests
from flask import Flask, Response, request
from slack_sdk.signature import SignatureVerifier

from webhook_server.dev.fakes.serving import FakeServer


class FakeSlack(FakeServer):
    def __init__(self, token: str = "xoxb-fake", team_id: str = "T0PODIUM",  # noqa: S107
                 channel_id: str = "C0PODIUM",
                 on_message: Callable[[str, dict], None] | None = None) -> None:
        self.token, self.team_id, self.channel_id = token, team_id, channel_id
        self.messages: list[dict[str, Any]] = []  # in posting order, updated in place
        self.ephemerals: list[dict[str, Any]] = []
        self.hook_posts: list[dict[str, Any]] = []
        self.usergroups: dict[str, list[str]] = {}
        self.views: list[dict[str, Any]] = []  # modals opened (views.open)
        self.trigger_ttl_s = 3.0  # a click's trigger_id opens a modal this long
        self.calls: list[str] = []
        self.down = False
        self.on_message = on_message  # ("post" | "update" | "ephemeral", message)
        self._fail: list[tuple[int, int | None, str | None]] = []
        self._lock = threading.Lock()
        self._ts = itertools.count(1)

    # --- control -----------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 500, retry_after: int | None = None,
                  error: str | None = None) -> None:
        """Answer the next ``n`` API calls with ``status`` (429 with Retry-After, 500), or
        with HTTP 200 and ``{"ok": false, "error": error}`` when ``error`` is given."""
        with self._lock:
            self._fail.extend([(status, retry_after, error)] * n)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def click(self, podium_url: str, signing_secret: str, request_id: int, user: str, *,
              action: str = "approve", team: str | None = None, message_ts: str | None = None,
              timestamp: int | None = None) -> requests.Response:
        """Click Approve/Reject as ``user`` on the newest message of the request that shows
        the buttons (their value carries the evidence digest the message showed): the signed
        request Slack itself would send."""
        body, headers = click_request(signing_secret, request_id, user, action=action,
                                      team=team or self.team_id, channel=self.channel_id,
                                      message_ts=message_ts, timestamp=timestamp,
                                      value=self.button_value(request_id))
        return requests.post(f"{podium_url}/slack/interactions", data=body, headers=headers,
                             timeout=10)

    def submit_view(self, podium_url: str, signing_secret: str, user: str, values: dict, *,
                    view: dict | None = None, team: str | None = None,
                    timestamp: int | None = None) -> requests.Response:
        """Submit a modal (the last one opened, or ``view``) as ``user`` with ``values``
        ({block_id: {action_id: text}}): the signed ``view_submission`` Slack sends."""
        body, headers = view_submission(signing_secret, view or self.views[-1], user, values,
                                        team=team or self.team_id, timestamp=timestamp)
        return requests.post(f"{podium_url}/slack/interactions", data=body, headers=headers,
                             timeout=10)

    def button_value(self, request_id: int) -> str | None:
        """The value of the newest Approve/Reject button shown for ``request_id``."""
        for message in reversed(self.messages):
            for block in message.get("blocks") or []:
                if block.get("type") == "actions" and block.get("block_id") == \
                        f"podium_decide_{request_id}":
                    return block["elements"][0].get("value")
        return None

    def parents(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if not m.get("thread_ts")]

    def replies(self, ts: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("thread_ts") == ts]

    # --- the API -------------------------------------------------------------------------

    def app(self) -> Flask:
        app = Flask("fake-slack")

        @app.post("/hooks/<path:hook_id>")
        def hook(hook_id):
            if (failure := self._failure()) is not None:
                return failure
            with self._lock:
                self.hook_posts.append({"hook": hook_id, **(request.get_json() or {})})
            self._notify("post", self.hook_posts[-1])
            return Response("ok", 200, mimetype="text/plain")

        @app.route("/api/<method>", methods=["GET", "POST"])
        def api(method):
            self.calls.append(method)
            if (failure := self._failure()) is not None:
                return failure
            auth = request.headers.get("Authorization", "")
            if auth != f"Bearer {self.token}":
                return {"ok": False, "error": "invalid_auth"}
            args = self._args()
            handler = getattr(self, "_" + method.replace(".", "_"), None)
            if handler is None:
                return {"ok": False, "error": "unknown_method"}
            return handler(args)

        return app

    def _failure(self) -> Response | None:
        with self._lock:
            if self.down:
                return Response("upstream unavailable", 503)
            if not self._fail:
                return None
            status, retry_after, error = self._fail.pop(0)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {"ok": False, "error": error or ("ratelimited" if status == 429
                                                else "internal_error")}
        if error:
            status = 200
        return Response(json.dumps(body), status, headers, mimetype="application/json")

    @staticmethod
    def _args() -> dict[str, Any]:
        args: dict[str, Any] = dict(request.args)
        if request.is_json:
            args.update(request.get_json() or {})
        else:
            args.update(request.form)
        for key in ("blocks", "metadata"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        return args

    def _channel_ok(self, args) -> bool:
        return args.get("channel") in (self.channel_id, "#podium", "podium")

    def _notify(self, what: str, message: dict) -> None:
        if self.on_message:
            self.on_message(what, message)

    def _chat_postMessage(self, args):
        if not self._channel_ok(args):
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        with self._lock:
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            message = {"type": "message", "ts": ts, "text": args.get("text", ""),
                       "blocks": args.get("blocks") or [], "updates": 0}
            if args.get("thread_ts"):
                if not any(m["ts"] == args["thread_ts"] for m in self.messages):
                    return {"ok": False, "error": "thread_not_found"}
                message["thread_ts"] = args["thread_ts"]
            if args.get("metadata"):
                message["metadata"] = args["metadata"]
            self.messages.append(message)
        self._notify("post", message)
        return {"ok": True, "channel": self.channel_id, "ts": ts, "message": message}

    def _chat_update(self, args):
        with self._lock:
            for message in self.messages:
                if message["ts"] == args.get("ts") and args.get("channel") == self.channel_id:
                    message.update(text=args.get("text", message["text"]),
                                   blocks=args.get("blocks") or message["blocks"])
                    message["updates"] += 1
                    break
            else:
                return {"ok": False, "error": "message_not_found"}
        self._notify("update", message)
        return {"ok": True, "channel": self.channel_id, "ts": args["ts"]}

    def _chat_postEphemeral(self, args):
        if not args.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        with self._lock:
            self.ephemerals.append({"user": args["user"], "text": args.get("text", ""),
                                    "thread_ts": args.get("thread_ts")})
        self._notify("ephemeral", self.ephemerals[-1])
        return {"ok": True, "message_ts": f"1700000001.{len(self.ephemerals):06d}"}

    def _history(self, messages, args):
        with_meta = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        oldest = float(args.get("oldest") or 0)
        out = []
        for m in messages:
            if float(m["ts"]) < oldest:
                continue
            item = {k: v for k, v in m.items() if k != "metadata" or with_meta}
            out.append(item)
        return out

    def _conversations_history(self, args):
        with self._lock:
            top = [m for m in self.messages if not m.get("thread_ts")]
        return {"ok": True, "messages": self._history(list(reversed(top)), args),
                "has_more": False}

    def _conversations_replies(self, args):
        with self._lock:
            parent = [m for m in self.messages if m["ts"] == args.get("ts")]
            thread = parent + [m for m in self.messages if m.get("thread_ts") == args.get("ts")]
        if not parent:
            return {"ok": False, "error": "thread_not_found"}
        return {"ok": True, "messages": self._history(thread, args), "has_more": False}

    def _usergroups_users_list(self, args):
        group = args.get("usergroup")
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.usergroups[group])}

    def _views_open(self, args):
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        issued_ms = args["trigger_id"].split(".")[0]
        if issued_ms.isdigit() and time.time() * 1000 - int(issued_ms) > self.trigger_ttl_s * 1e3:
            return {"ok": False, "error": "expired_trigger_id"}
        if not isinstance(view, dict) or view.get("type") != "modal":
            return {"ok": False, "error": "invalid_arguments"}
        opened = {"id": f"V{len(self.views) + 1:08d}", "trigger_id": args["trigger_id"],
                  "view": view}
        with self._lock:
            self.views.append(opened)
        self._notify("view", opened)
        return {"ok": True, "view": {"id": opened["id"], **view}}

    def _auth_test(self, args):
        return {"ok": True, "team_id": self.team_id, "user_id": "UPODIUMBOT"}


def click_payload(request_id: int, user: str, *, action: str = "approve",
                  team: str = "T0PODIUM", channel: str = "C0PODIUM",
                  message_ts: str | None = None, value: str | None = None,
                  clicked_at: float | None = None) -> dict[str, Any]:
    """A ``block_actions`` payload as Slack sends it for a click on a Podium button (at
    ``clicked_at``, default now: its trigger_id starts with the click's time in ms;
    ``value``: the button's, ``<request id>:<evidence digest>``; the bare id without)."""
    clicked_at = time.time() if clicked_at is None else clicked_at
    action_id = {"approve": "podium_approve", "reject": "podium_reject"}.get(action, action)
    return {
        "type": "block_actions", "team": {"id": team, "domain": "podium"},
        "user": {"id": user, "username": f"name-of-{user}", "team_id": team},
        "api_app_id": "A0PODIUM", "trigger_id": f"{int(clicked_at * 1000)}.{uuid.uuid4().hex}",
        "channel": {"id": channel, "name": "podium"},
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
        "response_url": "https://hooks.slack.com/actions/T0PODIUM/1/x",
        "actions": [{"type": "button", "action_id": action_id,
                     "block_id": f"podium_decide_{request_id}",
                     "value": value or str(request_id),
                     "action_ts": f"{clicked_at:.6f}"}],
    }


def sign(signing_secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded"}


def click_request(signing_secret: str, request_id: int, user: str, *, action: str = "approve",
                  team: str = "T0PODIUM", channel: str = "C0PODIUM",
                  message_ts: str | None = None, timestamp: int | None = None,
                  value: str | None = None,
                  clicked_at: float | None = None) -> tuple[str, dict[str, str]]:
    payload = click_payload(request_id, user, action=action, team=team, channel=channel,
                            message_ts=message_ts, value=value, clicked_at=clicked_at)
    body = urlencode({"payload": json.dumps(payload)})
    return body, sign(signing_secret, body, timestamp)


def view_submission(signing_secret: str, opened: dict, user: str, values: dict, *,
                    team: str = "T0PODIUM",
                    timestamp: int | None = None) -> tuple[str, dict[str, str]]:
    """The signed ``view_submission`` Slack sends when ``user`` submits the modal
    ``opened`` (as recorded by ``views.open``) with ``values`` {block: {action: text}}."""
    payload = {
        "type": "view_submission", "team": {"id": team, "domain": "podium"},
        "user": {"id": user, "username": f"name-of-{user}", "team_id": team},
        "api_app_id": "A0PODIUM", "trigger_id": uuid.uuid4().hex,
        "view": {**opened["view"], "id": opened["id"], "team_id": team,
                 "state": {"values": {block: {action: {"type": "plain_text_input",
                                                       "value": text}
                                              for action, text in fields.items()}
                                      for block, fields in values.items()}}},
    }
    body = urlencode({"payload": json.dumps(payload)})
    return body, sign(signing_secret, body, timestamp)
