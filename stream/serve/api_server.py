"""The HTTP API of ``backdrop serve`` (``--control``): list, add and remove streams, Prometheus metrics, an overview.

``GET /streams`` (JSON figures), ``POST /streams`` (one stream as JSON or YAML, validated like the config
file; 400 with the one-line error), ``DELETE /streams/NAME`` (404 when unknown), ``GET /metrics``
(Prometheus text) and ``GET /`` (every stream with its state and fps, linked to its preview). It talks only
to the Engine protocol, so the local and the Ray engine serve the same API. It has no authentication, so it
listens on 127.0.0.1 unless another address is given.
"""

from __future__ import annotations

import html
import ipaddress
import json
import logging
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from backdrop.errors import BackdropError, ConfigError
from backdrop.stream.config.serve import StreamConfig, parse_stream_text
from backdrop.stream.serve.engine import Engine
from backdrop.stream.serve.metrics import engine_registry

log = logging.getLogger("backdrop")

MAX_BODY_BYTES = 64 * 1024  # one stream is a few hundred bytes
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


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class ApiServer:
    """The API's HTTP server on its own thread; ``streams`` are those the engine starts with (for their previews)."""

    def __init__(self, engine: Engine, host: str, port: int, streams: Sequence[StreamConfig] = ()) -> None:
        self.engine = engine
        self.previews = {stream.name: stream.previews for stream in streams}
        self.registry = engine_registry(engine)
        try:
            self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        except OSError as e:
            raise ConfigError(f"--control: cannot listen on {host}:{port}: {e.strerror or e}") from e
        self._server.daemon_threads = True
        self.host, self.port = host, self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(SHUTDOWN_POLL_S,), name="backdrop-control", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> None:
        self._thread.start()
        if not is_loopback(self.host):
            log.warning(
                "the control API on %s has no authentication: anyone who can reach it controls the streams", self.url
            )
        log.info("control API on %s", self.url)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, body: str) -> dict[str, Any]:
        stream = parse_stream_text(body)
        self.engine.add(stream)
        self.previews[stream.name] = stream.previews
        return {"name": stream.name}

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


def _handler_for(api: ApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/streams":
                self._send_json(HTTPStatus.OK, [figures.to_json() for figures in api.engine.streams()])
            elif self.path == "/metrics":
                self._send(HTTPStatus.OK, generate_latest(api.registry), CONTENT_TYPE_LATEST)
            elif self.path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, api.page().encode(), "text/html; charset=utf-8")
            else:
                self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {self.path}"})

        def do_POST(self) -> None:
            if self.path != "/streams":
                self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {self.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY_BYTES:
                self._send_json(HTTPStatus.BAD_REQUEST, {"error": f"send one stream of at most {MAX_BODY_BYTES} bytes"})
                return
            try:
                added = api.add(self.rfile.read(length).decode("utf-8", errors="replace"))
            except BackdropError as e:
                self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(e)})
                return
            self._send_json(HTTPStatus.CREATED, added)

        def do_DELETE(self) -> None:
            prefix = "/streams/"
            name = unquote(self.path[len(prefix) :]) if self.path.startswith(prefix) else ""
            if not name or not api.remove(name):
                self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no stream named {name!r}"})
                return
            self._send_json(HTTPStatus.OK, {"removed": name})

        def _send_json(self, status: HTTPStatus, value: Any) -> None:
            self._send(status, json.dumps(value).encode(), "application/json")

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # requests are not events worth a log line

    return Handler
