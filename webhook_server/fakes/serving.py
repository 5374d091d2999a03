"""Serve a WSGI app on 127.0.0.1 in a background thread."""

from __future__ import annotations

import threading

from werkzeug.serving import WSGIRequestHandler, make_server


class _QuietHandler(WSGIRequestHandler):
    """No access log: a fake's requests are the test's business, not the terminal's."""

    def log_request(self, *args, **kwargs) -> None:
        pass


class Served:
    def __init__(self, app, port: int = 0) -> None:
        self._server = make_server("127.0.0.1", port, app, threaded=True,
                                   request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="fake-server")

    def start(self) -> Served:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Served:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
