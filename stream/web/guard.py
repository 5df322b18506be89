"""Who an HTTP surface answers: the Host names it owns, the token it requires, the requests that may change it.

A server on loopback is still reachable from every web page the operator's browser opens, so three checks
stand between a request and the engine (the ideas of Jupyter's and Django's guards):

- **Host** (against DNS rebinding): a page of ``evil.example`` that re-points its name at 127.0.0.1 sends
  ``Host: evil.example``. Only IP literals, ``localhost`` and the configured ``http.allowed_hosts`` are answered.
- **Token**, when one is set (required beyond loopback): ``Authorization: Bearer TOKEN``, or the cookie a browser
  gets by opening any page once with ``?token=TOKEN``. Compared in constant time.
- **Changes** (POST, DELETE) come only from the operator: a browser's ``Origin`` must be the server's own, a
  ``Sec-Fetch-Site: cross-site`` is refused, and a body must be JSON or YAML by its Content-Type, which a
  cross-site form or ``fetch(…, {mode: "no-cors"})`` cannot send without a preflight the server never grants.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit

from backdrop.errors import ConfigError
from backdrop.stream.config.run import HttpConfig

TOKEN_ENV = "BACKDROP_TOKEN"
TOKEN_COOKIE = "backdrop_token"
BODY_TYPES = ("application/json", "application/yaml", "application/x-yaml", "text/yaml")
MAX_TOKEN_BYTES = 4096


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def host_name(host_header: str) -> str:
    """The name in a Host header, without its port: ``[::1]:8090`` → ``::1``, ``Example.org:80`` → ``example.org``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else ""  # "[::1" is no name at all
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def load_token(token_file: str | None) -> str | None:
    """The bearer token: the first line of ``token_file``, else ``$BACKDROP_TOKEN``, else None (no token)."""
    if token_file is None:
        return os.environ.get(TOKEN_ENV) or None
    try:
        text = Path(token_file).read_bytes()[:MAX_TOKEN_BYTES].decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"http.token_file: cannot read {token_file}: {getattr(e, 'strerror', None) or e}") from e
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if len(token) < 16:
        raise ConfigError(f"http.token_file: {token_file} must hold a token of at least 16 characters")
    return token


@dataclass(frozen=True)
class AccessPolicy:
    """The checks one HTTP surface makes; ``host_problem`` and the others return the one-line refusal, or None."""

    allowed_hosts: frozenset[str] = frozenset()
    token: str | None = None

    @classmethod
    def for_server(cls, http: HttpConfig, bound_host: str, what: str) -> AccessPolicy:
        """The policy of ``what`` (e.g. ``--control``) bound to ``bound_host``: a token is required beyond loopback."""
        token = load_token(http.token_file)
        if token is None and not is_loopback(bound_host):
            raise ConfigError(
                f"{what}: listening on {bound_host} (beyond this machine) needs a token: "
                f"set http.token_file or ${TOKEN_ENV} (see docs/guide/security.md)"
            )
        return cls(frozenset(name.lower() for name in http.allowed_hosts), token)

    def host_problem(self, host_header: str | None) -> str | None:
        if not host_header:
            return "a Host header is required"
        name = host_name(host_header)
        if is_ip_literal(name) or name == "localhost" or name in self.allowed_hosts:
            return None
        return f"Host {name!r} is not this server's name (add it to http.allowed_hosts if it is)"

    def token_problem(self, authorization: str | None, cookie: str | None) -> str | None:
        if self.token is None:
            return None
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            given = cookie_token(cookie) or ""
        if hmac.compare_digest(given.strip().encode(), self.token.encode()):
            return None
        return "a valid token is required (Authorization: Bearer TOKEN)"

    def token_matches(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def change_problem(self, origin: str | None, fetch_site: str | None, host_header: str | None) -> str | None:
        """A request that changes something must not come from another site's page."""
        if fetch_site is not None and fetch_site.lower() not in ("same-origin", "none"):
            return f"requests from other sites are refused (Sec-Fetch-Site: {fetch_site})"
        if origin is None:
            return None  # not a browser (curl, scripts): the Host check and the token still apply
        parts = urlsplit(origin)
        name = (parts.hostname or "").lower()
        same = parts.netloc.lower() == (host_header or "").strip().lower() or name in self.allowed_hosts
        if parts.scheme in ("http", "https") and same:
            return None
        return f"requests from pages of {origin} are refused"

    @staticmethod
    def body_problem(content_type: str | None) -> str | None:
        media = (content_type or "").split(";", 1)[0].strip().lower()
        if media in BODY_TYPES:
            return None
        return f"send the body as application/json or application/yaml, not {media or 'no Content-Type'}"


def cookie_token(cookie: str | None) -> str | None:
    if not cookie:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie)
    except CookieError:  # a malformed Cookie header is the client's mistake: no token
        return None
    morsel = jar.get(TOKEN_COOKIE)
    return morsel.value if morsel is not None else None
