"""A web page of another origin that tries to change a local server, opened in a real headless Chromium.

The page is served from its own port (another origin than the target's) and makes the requests any web site
the operator visits could make without a CORS preflight: ``fetch(…, {mode: "no-cors"})`` POSTs with a JSON
text body, and a ``text/plain`` form whose field name and value add up to JSON. A test starts the target, calls
``attack(...)`` and then checks that nothing changed (and, to prove the attack ran, that the requests arrived).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHROMIUM = shutil.which("chromium")
BROWSER_TIMEOUT_S = 60


@dataclass(frozen=True)
class Post:
    """One cross-site POST of ``body`` (a JSON-able value) to ``url``."""

    url: str
    body: Any


def page(posts: list[Post]) -> str:
    """HTML whose script sends every POST both ways (no-cors fetch, text/plain form) and then titles itself done."""
    fetches = "\n".join(
        f"  await fetch({json.dumps(p.url)}, {{method: 'POST', mode: 'no-cors', "
        f"body: {json.dumps(json.dumps(p.body))}}}).catch(() => null);"
        for p in posts
    )
    forms = []
    for i, p in enumerate(posts):
        text = json.dumps(p.body)  # the form sends NAME=VALUE: split the JSON so the '=' lands in a string
        name, value = text[:-1] + ', "pad": "', '"}'
        forms.append(
            f'<iframe name="sink{i}"></iframe><form id="form{i}" method="POST" enctype="text/plain" '
            f"action=\"{p.url}\" target=\"sink{i}\"><input name='{name}' value='{value}'></form>"
        )
    submits = "\n".join(f"  document.getElementById('form{i}').submit();" for i in range(len(posts)))
    return f"""<!doctype html><html><head><title>attacking</title></head><body>
{"".join(forms)}
<script>
(async () => {{
{fetches}
{submits}
  await new Promise(resolve => setTimeout(resolve, 1500));
  document.title = 'done';
}})();
</script></body></html>"""


@contextmanager
def served_page(html: str) -> Iterator[str]:
    """``html`` served at http://127.0.0.1:PORT/ on a free port, for as long as the block runs."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def attack(posts: list[Post]) -> str:
    """Open the attacking page in headless Chromium until its script is done; the page's final DOM."""
    assert CHROMIUM is not None, "needs Debian's chromium"
    with served_page(page(posts)) as url:
        result = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--virtual-time-budget=8000",
             "--dump-dom", url],
            capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert "<title>done</title>" in result.stdout, result.stderr[-2000:]
    return result.stdout
