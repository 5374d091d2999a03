"""Serve a WSGI app on 127.0.0.1 in a background thread."""

from __future__ import annotations

import threading
from typing import Self

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


class FakeServer:
    """Base of the fakes: ``app()`` is the Flask app; start/stop/``url``/``with``."""

    _served: Served | None = None

    def app(self):
        raise NotImplementedError

    def start(self) -> Self:
        self._served = Served(self.app()).start()
        return self

    def stop(self) -> None:
        if self._served:
            self._served.stop()
            self._served = None

    @property
    def url(self) -> str:
        return self._served.url

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
