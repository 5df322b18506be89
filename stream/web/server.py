"""A bounded HTTP server and a guarded request handler, shared by serve's API and the browser preview.

``http.server`` alone gives a thread per connection for as long as the client likes, a traceback in the log for
every client that hangs up, and no check of who is asking. Here every connection has a deadline (``timeout``:
an idle or half-open one is closed), at most ``max_handlers`` are served at once (the next gets 503 and is
closed at once), malformed requests get 400, a client going away is one debug line, and every request passes
the AccessPolicy (stream/web/guard.py) before a handler sees it.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from backdrop.stream.web.guard import TOKEN_COOKIE, AccessPolicy

log = logging.getLogger("backdrop")

REQUEST_TIMEOUT_S = 10.0  # a connection that sends or reads nothing for this long is closed
BUSY_REPLY = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class BoundedHTTPServer(ThreadingHTTPServer):
    """A thread per connection, at most ``max_handlers`` at once; connection errors are not tracebacks."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], *, max_handlers: int) -> None:
        self._slots = threading.BoundedSemaphore(max_handlers)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            try:
                request.settimeout(1.0)
                request.sendall(BUSY_REPLY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up or times out is not news; anything else is a bug and keeps its traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            log.debug("http client %s: %s", client_address[0], error)
        else:
            super().handle_error(request, client_address)


class GuardedHandler(BaseHTTPRequestHandler):
    """Checks every request against ``policy`` before ``do_*`` sees it, and answers in one line when it refuses.

    Subclasses implement ``get``, ``post`` or ``delete`` (with ``self.route``, the path without its query) and
    call ``read_body`` for a request body; each runs only once the request has passed the guard.
    """

    policy: AccessPolicy = AccessPolicy()
    timeout = REQUEST_TIMEOUT_S
    server_version = "Backdrop"
    max_body_bytes = 64 * 1024
    route = "/"

    def do_GET(self) -> None:
        if self._admit(change=False):
            self.get()

    def do_HEAD(self) -> None:
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED)

    def do_POST(self) -> None:
        if self._admit(change=True):
            self.post()

    def do_DELETE(self) -> None:
        if self._admit(change=True):
            self.delete()

    def get(self) -> None:
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED)

    def post(self) -> None:
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED)

    def delete(self) -> None:
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED)

    def _admit(self, *, change: bool) -> bool:
        """Host, then token (a ``?token=`` on a GET sets the browser's cookie), then, for changes, the origin."""
        parts = urlsplit(self.path)
        self.route = parts.path
        headers = self.headers
        if len(headers.get_all("Host") or []) > 1:
            self.refuse(HTTPStatus.BAD_REQUEST, "send one Host header")
            return False
        problem = self.policy.host_problem(headers.get("Host"))
        if problem is not None:
            self.refuse(HTTPStatus.MISDIRECTED_REQUEST, problem)
            return False
        query = dict(parse_qsl(parts.query))
        if not change and "token" in query and self.policy.token_matches(query["token"]):
            rest = urlencode({key: value for key, value in query.items() if key != "token"})
            self.send_response(HTTPStatus.SEE_OTHER)
            self.send_header("Location", parts.path + (f"?{rest}" if rest else ""))
            self.send_header("Set-Cookie", f"{TOKEN_COOKIE}={self.policy.token}; HttpOnly; SameSite=Strict; Path=/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        problem = self.policy.token_problem(headers.get("Authorization"), headers.get("Cookie"))
        if problem is not None:
            self.refuse(HTTPStatus.UNAUTHORIZED, problem, {"WWW-Authenticate": "Bearer"})
            return False
        if change:
            problem = self.policy.change_problem(
                headers.get("Origin"), headers.get("Sec-Fetch-Site"), headers.get("Host")
            )
            if problem is not None:
                self.refuse(HTTPStatus.FORBIDDEN, problem)
                return False
        return True

    def read_body(self) -> bytes | None:
        """The request's JSON or YAML body; None after answering 400/413/415 when it is not one."""
        problem = self.policy.body_problem(self.headers.get("Content-Type"))
        if problem is not None:
            self.refuse(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, problem)
            return None
        text = self.headers.get("Content-Length") or ""
        if not text.isdigit():
            self.refuse(HTTPStatus.BAD_REQUEST, "a body needs a Content-Length (a whole number of bytes)")
            return None
        length = int(text)
        if length > self.max_body_bytes:
            self.refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"send at most {self.max_body_bytes} bytes")
            return None
        try:
            return self.rfile.read(length)
        except TimeoutError:
            self.close_connection = True
            return None

    def refuse(self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None) -> None:
        """Answer ``status`` with ``{"error": message}``; the body is all a client needs to know."""
        self.send_json(status, {"error": message}, headers)

    def send_json(self, status: HTTPStatus, value: Any, headers: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(value).encode(), "application/json", headers)

    def send_body(
        self, status: HTTPStatus, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s: " + format, self.client_address[0], *args)
