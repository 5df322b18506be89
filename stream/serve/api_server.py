"""The HTTP API of ``backdrop serve`` (``--control``): list, add and remove streams, Prometheus metrics, an overview.

``GET /streams`` (JSON figures), ``POST /streams`` (one stream as JSON or YAML, validated like the config
file; 400 with the one-line error, 429 beyond ``serve.max_streams``), ``DELETE /streams/NAME`` (404 when
unknown), ``GET /metrics`` (Prometheus text) and ``GET /`` (every stream with its state and fps, linked to its
preview). It talks only to the Engine protocol, so the local and the Ray engine serve the same API.

Every request passes the config's ``http`` AccessPolicy (stream/web/guard.py: Host names, the token, no
changes from other sites' pages) on a BoundedHTTPServer (a deadline per connection, at most ``MAX_HANDLERS``
at once); a stream added here may do only what stream/serve/api_policy.py allows.
"""

from __future__ import annotations

import html
import logging
import os
import threading
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from backdrop.errors import BackdropError, CapacityError, ConfigError
from backdrop.stream.config.serve import ServeConfig, StreamConfig, parse_stream_text
from backdrop.stream.serve.api_policy import check_api_stream
from backdrop.stream.serve.engine import Engine
from backdrop.stream.serve.metrics import engine_registry
from backdrop.stream.web.guard import AccessPolicy
from backdrop.stream.web.server import BoundedHTTPServer, GuardedHandler

log = logging.getLogger("backdrop")

MAX_HANDLERS = 16  # connections served at once; the next is answered 503 and closed
SHUTDOWN_POLL_S = 0.1

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Backdrop serve</title><meta http-equiv="refresh" content="2">
<style>
 body {{ background: #111; color: #eee; font: 14px system-ui, sans-serif; padding: 12px; }}
 table {{ border-collapse: collapse; font-variant-numeric: tabular-nums; }}
 td, th {{ padding: 4px 12px; text-align: left; border-bottom: 1px solid #333; }} a {{ color: #8cf; }}
</style></head>
<body><h1>Backdrop serve</h1><table>
<tr><th>stream</th><th>state</th><th>fps in</th><th>fps out</th><th>frames</th><th>dropped</th>
<th>restarts</th><th>preview</th><th>error</th></tr>
{rows}
</table><p><a href="/streams">/streams</a> · <a href="/metrics">/metrics</a></p></body></html>
"""


def parse_control(spec: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` → (host, port); a missing host is 127.0.0.1, never every interface."""
    host, _, port_text = spec.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ConfigError(f"--control: expected HOST:PORT, got {spec!r}")
    return host, port


class ApiServer:
    """The API's HTTP server on its own thread, for ``engine`` running ``config`` (its streams' previews are
    linked from the overview; ``config.defaults.http`` says whom it answers, ``config.serve`` what API streams may
    do). ConfigError when it cannot listen, or would listen beyond loopback without a token."""

    def __init__(
        self, engine: Engine, config: ServeConfig, host: str, port: int, *, max_handlers: int = MAX_HANDLERS
    ) -> None:
        self.engine = engine
        self.options = config.serve
        self.previews = {stream.name: stream.previews for stream in config.streams}
        policy = AccessPolicy.for_server(config.defaults.http, host, "--control")  # before anything listens
        self.registry = engine_registry(engine)
        handler = type("BoundApiHandler", (ApiHandler,), {"api": self, "policy": policy})
        try:
            self._server = BoundedHTTPServer((host, port), handler, max_handlers=max_handlers)
        except OSError as e:
            raise ConfigError(f"--control: cannot listen on {host}:{port}: {e.strerror or e}") from e
        self.host, self.port = host, self._server.server_address[1]
        for i, stream in enumerate(config.streams):
            try:
                self.check_previews(stream)
            except ConfigError as e:
                self._server.server_close()
                raise ConfigError(f"streams[{i}].outputs: {e}") from e
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(SHUTDOWN_POLL_S,), name="backdrop-control", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> None:
        self._thread.start()
        log.info("control API on %s", self.url)

    def close(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, which never ran unless started
            self._server.shutdown()
        self._server.server_close()

    def add(self, body: str) -> dict[str, Any]:
        """Parse, check against the API policy, then add; ConfigError (CapacityError when full) otherwise."""
        stream = parse_stream_text(body)
        check_api_stream(stream, self.options, os.getcwd())
        self.check_previews(stream)
        self.engine.add(stream)
        self.previews[stream.name] = stream.previews
        return {"name": stream.name}

    def check_previews(self, stream: StreamConfig) -> None:
        """A preview on this API's own port could never listen: the stream would restart forever."""
        for url in stream.previews:
            try:
                port = urlsplit(url).port
            except ValueError:
                continue  # not a port at all: the preview itself says so when it opens
            if port == self.port:
                raise ConfigError(f"{url} is the control API's own port {self.port}: choose another")

    def remove(self, name: str) -> bool:
        """False when no stream has that name."""
        try:
            self.engine.remove(name)
        except ConfigError:
            return False
        self.previews.pop(name, None)
        return True

    def page(self) -> str:
        rows = []
        for s in self.engine.streams():
            links = " ".join(
                f'<a href="{html.escape(url)}">{html.escape(url)}</a>' for url in self.previews.get(s.name, [])
            )
            cells = [s.name, s.state.value, s.fps_in, s.fps_out, s.frames_out, s.dropped, s.restarts]
            row = "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
            rows.append(f"<tr>{row}<td>{links}</td><td>{html.escape(s.error or '')}</td></tr>")
        return PAGE.format(rows="\n".join(rows))


class ApiHandler(GuardedHandler):
    """The API's routes; a subclass per server sets ``api`` and ``policy``. Runs only once the guard admitted."""

    api: ApiServer

    def get(self) -> None:
        if self.route == "/streams":
            self.send_json(HTTPStatus.OK, [figures.to_json() for figures in self.api.engine.streams()])
        elif self.route == "/metrics":
            self.send_body(HTTPStatus.OK, generate_latest(self.api.registry), CONTENT_TYPE_LATEST)
        elif self.route in ("/", "/index.html"):
            self.send_body(HTTPStatus.OK, self.api.page().encode(), "text/html; charset=utf-8")
        else:
            self.refuse(HTTPStatus.NOT_FOUND, f"no such page: {self.route}")

    def post(self) -> None:
        if self.route != "/streams":
            self.refuse(HTTPStatus.NOT_FOUND, f"no such page: {self.route}")
            return
        body = self.read_body()
        if body is None:
            return  # refused already
        try:
            added = self.api.add(body.decode("utf-8", errors="replace"))
        except CapacityError as e:
            self.refuse(HTTPStatus.TOO_MANY_REQUESTS, str(e))
            return
        except BackdropError as e:
            self.refuse(HTTPStatus.BAD_REQUEST, str(e))
            return
        self.send_json(HTTPStatus.CREATED, added)

    def delete(self) -> None:
        prefix = "/streams/"
        name = unquote(self.route[len(prefix) :]) if self.route.startswith(prefix) else ""
        if not name or not self.api.remove(name):
            self.refuse(HTTPStatus.NOT_FOUND, f"no stream named {name!r}")
            return
        self.send_json(HTTPStatus.OK, {"removed": name})
