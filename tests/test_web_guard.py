"""The request guard every HTTP surface shares (stream/web/guard.py), case by case."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from backdrop.errors import ConfigError
from backdrop.stream.config.run import HttpConfig
from backdrop.stream.web.guard import TOKEN_ENV, AccessPolicy
from backdrop.stream.web.server import BoundedHTTPServer, GuardedHandler

POLICY = AccessPolicy(allowed_hosts=frozenset({"studio.lan"}))


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:8090", True), ("localhost:8090", True), ("[::1]:8090", True), ("192.168.1.5", True),
        ("Studio.LAN:443", True), ("evil.example", False), ("evil.example:8090", False),
        ("127.0.0.1.evil.example", False), ("[::1", False), ("", False), (None, False),
    ],
)  # fmt: skip
def test_only_ip_literals_localhost_and_allowed_names_are_answered(host: str | None, allowed: bool) -> None:
    assert (POLICY.host_problem(host) is None) is allowed


@pytest.mark.parametrize(
    ("origin", "site", "allowed"),
    [
        (None, None, True),  # curl, scripts: the Host check and the token still apply
        ("http://127.0.0.1:8090", "same-origin", True),
        ("http://127.0.0.1:8090", None, True),
        ("https://studio.lan", None, True),  # behind the operator's TLS proxy
        ("http://127.0.0.1:9999", "same-site", False),  # another port is another origin
        ("http://evil.example", "cross-site", False),
        ("null", None, False),  # a sandboxed frame or a file:// page
        (None, "cross-site", False),
    ],
)
def test_changes_come_only_from_the_server_s_own_pages(origin: str | None, site: str | None, allowed: bool) -> None:
    assert (POLICY.change_problem(origin, site, "127.0.0.1:8090") is None) is allowed


@pytest.mark.parametrize(
    ("content_type", "allowed"),
    [("application/json", True), ("application/yaml; charset=utf-8", True), ("text/plain", False),
     ("application/x-www-form-urlencoded", False), ("multipart/form-data; boundary=x", False), (None, False)],
)  # fmt: skip
def test_bodies_are_json_or_yaml_which_no_cross_site_form_can_send(content_type: str | None, allowed: bool) -> None:
    assert (AccessPolicy.body_problem(content_type) is None) is allowed


def test_a_token_is_required_beyond_loopback_and_checked_from_header_or_cookie(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert AccessPolicy.for_server(HttpConfig(), "127.0.0.1", "--control").token is None
    with pytest.raises(ConfigError, match=r"^--control: listening on 0.0.0.0 .* needs a token"):
        AccessPolicy.for_server(HttpConfig(), "0.0.0.0", "--control")
    (tmp_path / "short").write_text("abc\n")
    with pytest.raises(ConfigError, match="at least 16 characters"):
        AccessPolicy.for_server(HttpConfig(token_file=str(tmp_path / "short")), "0.0.0.0", "--control")
    token = "s3cret-token-0123456789"
    (tmp_path / "token").write_text(token + "\n")
    policy = AccessPolicy.for_server(HttpConfig(token_file=str(tmp_path / "token")), "0.0.0.0", "--control")
    assert policy.token_problem(f"Bearer {token}", None) is None
    assert policy.token_problem(None, f"backdrop_token={token}") is None
    assert policy.token_problem("Bearer wrong", None) is not None
    assert policy.token_problem(None, None) is not None
    monkeypatch.setenv(TOKEN_ENV, token)
    assert AccessPolicy.for_server(HttpConfig(), "0.0.0.0", "--control").token == token


class Echo(GuardedHandler):
    def get(self) -> None:
        self.send_json(200, {"route": self.route})


@pytest.fixture
def echo() -> Iterator[int]:
    server = BoundedHTTPServer(("127.0.0.1", 0), Echo, max_handlers=4)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(request)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    return reply


def test_two_host_headers_are_refused(echo: int) -> None:
    assert raw(echo, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").startswith(b"HTTP/1.0 200")
    twice = raw(echo, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n")
    assert twice.startswith(b"HTTP/1.0 400") and b"one Host header" in twice
