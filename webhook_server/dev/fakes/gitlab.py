"""A fake GitLab REST API (v4): the calls Podium makes through python-gitlab.

Projects (GET), merge-request notes (GET, POST, PUT) and pipeline triggers. Authenticates with
``PRIVATE-TOKEN`` like GitLab; ``fail_next(n, status)`` answers the next calls with an error.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from flask import Flask, request

from webhook_server.dev.fakes.serving import FakeServer


class FakeGitLab(FakeServer):
    def __init__(self, token: str = "glpat-fake", trigger_token: str = "glptt-fake",  # noqa: S107
                 project_id: str = "42", merge_requests: tuple[int, ...] = (7,)) -> None:
        self.token, self.trigger_token, self.project_id = token, trigger_token, project_id
        self.merge_requests = set(merge_requests)
        self.notes: dict[int, list[dict[str, Any]]] = {iid: [] for iid in merge_requests}
        self.pipelines: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self._fail: list[int] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def fail_next(self, n: int, status: int = 500) -> None:
        with self._lock:
            self._fail.extend([status] * n)

    def app(self) -> Flask:
        app = Flask("fake-gitlab")

        @app.before_request
        def _gate():
            self.calls.append(f"{request.method} {request.path}")
            with self._lock:
                status = self._fail.pop(0) if self._fail else None
            if status is not None:
                return {"message": f"{status} fake failure"}, status
            if request.path.endswith("/trigger/pipeline"):
                return None  # authenticated by the trigger token instead
            if request.headers.get("PRIVATE-TOKEN") != self.token:
                return {"message": "401 Unauthorized"}, 401
            return None

        def project_ok(project: str) -> bool:
            return project in (self.project_id, "group%2Fchurn", "group/churn")

        @app.get("/api/v4/projects/<path:project>")
        def project(project):
            if not project_ok(project):
                return {"message": "404 Project Not Found"}, 404
            return {"id": int(self.project_id), "path_with_namespace": "group/churn",
                    "web_url": f"{self.url}/group/churn"}

        @app.route("/api/v4/projects/<project>/merge_requests/<int:iid>/notes",
                   methods=["GET", "POST"])
        def notes(project, iid):
            if not project_ok(project) or iid not in self.merge_requests:
                return {"message": "404 Not found"}, 404
            if request.method == "GET":
                return list(reversed(self.notes[iid]))  # newest first, like GitLab
            body = (request.get_json(silent=True) or request.form).get("body")
            if not body:
                return {"message": {"body": ["can't be blank"]}}, 400
            with self._lock:
                note = {"id": next(self._ids), "body": body, "noteable_iid": iid,
                        "author": {"username": "podium-bot"}}
                self.notes[iid].append(note)
            return note, 201

        @app.put("/api/v4/projects/<project>/merge_requests/<int:iid>/notes/<int:note_id>")
        def edit_note(project, iid, note_id):
            if not project_ok(project) or iid not in self.merge_requests:
                return {"message": "404 Not found"}, 404
            body = (request.get_json(silent=True) or request.form).get("body")
            with self._lock:
                note = next((n for n in self.notes[iid] if n["id"] == note_id), None)
                if note is None:
                    return {"message": "404 Note Not Found"}, 404
                if not body:
                    return {"message": {"body": ["can't be blank"]}}, 400
                note["body"] = body
            return note

        @app.post("/api/v4/projects/<project>/trigger/pipeline")
        def trigger(project):
            data = request.get_json(silent=True) or request.form.to_dict()
            if data.get("token") != self.trigger_token:
                return {"message": "404 Not Found"}, 404
            variables = data.get("variables") or {
                k[len("variables["):-1]: v for k, v in data.items() if k.startswith("variables[")}
            with self._lock:
                pipeline = {"id": next(self._ids), "ref": data.get("ref"), "status": "created",
                            "variables": variables, "web_url": f"{self.url}/pipelines/1"}
                self.pipelines.append(pipeline)
            return pipeline, 201

        return app
