"""The load balancer in front of the web nodes, on 127.0.0.1: round robin over the nodes,
the next node when one refuses the connection (a killed node), and a record of every
answer (time, path, status, which node, the MLflow delivery id) for the drill's checks.

Like nginx's default ``proxy_next_upstream error``: a request is sent to another node only
when it could not be sent at all. One that a node dropped mid-way (killed while answering)
is answered 502 by the balancer and recorded as ``lost``: the sender retries (MLflow does a
few times; the reconciler finds what it gave up on).
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass(frozen=True)
class Answer:
    at: float  # time.monotonic()
    method: str
    path: str
    status: int
    node: str | None  # None: no node answered (all refused, or the node dropped it)
    delivery_id: str | None
    lost: bool = False


class Balancer:
    def __init__(self, nodes: list[str], timeout_s: float = 30) -> None:
        """``nodes``: ``host:port`` of each web node."""
        self.nodes, self.timeout_s = list(nodes), timeout_s
        self.answers: list[Answer] = []
        self.gone = 0  # answers the sender was no longer there to read
        self._lock = threading.Lock()
        self._turn = itertools.count()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="balancer")

    def start(self) -> Balancer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def forward(self, method: str, path: str, headers: dict[str, str],
                body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        start = next(self._turn)
        delivery = headers.get("X-MLflow-Delivery-Id")
        for i in range(len(self.nodes)):
            node = self.nodes[(start + i) % len(self.nodes)]
            host, port = node.rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port), timeout=self.timeout_s)
            try:
                conn.connect()
            except OSError:
                conn.close()
                continue  # refused: nothing was sent, the next node may take it
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException):
                self._record(method, path, 502, node, delivery, lost=True)
                return 502, [], b'{"error": "the node dropped the request"}'
            finally:
                conn.close()
            self._record(method, path, resp.status, node, delivery)
            kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
            return resp.status, kept, data
        self._record(method, path, 503, None, delivery)
        return 503, [], b'{"error": "no node answers"}'

    def _record(self, method: str, path: str, status: int, node: str | None,
                delivery: str | None, lost: bool = False) -> None:
        with self._lock:
            self.answers.append(Answer(time.monotonic(), method, path.split("?")[0], status,
                                       node, delivery, lost))

    def _handler(self):
        balancer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection, as gunicorn does

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in HOP_BY_HOP}
                status, out_headers, data = balancer.forward(self.command, self.path,
                                                             headers, body)
                try:
                    self.send_response(status)
                    for k, v in out_headers:
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the sender gave up waiting (or was stopped): its loss
                    balancer.gone += 1

            do_GET = do_POST = do_PUT = do_DELETE = _relay  # noqa: N815

            def log_message(self, *args) -> None:
                pass

        return Handler
