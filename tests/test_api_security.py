"""The control API of ``backdrop serve`` against what any web page, network neighbour or buggy client can send:
cross-site requests, foreign Host names, missing tokens, too many streams, malformed and idle connections, and
streams that would write, publish or listen where the operator did not allow."""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from clips import error_lines, run_cli
from cross_site import Post, attack
from rtsp_fixtures import wait_until

from backdrop.errors import ConfigError
from backdrop.stream.config.serve import parse_serve_config
from backdrop.stream.serve.api_server import ApiServer
from backdrop.stream.serve.engine import LocalEngine
from backdrop.stream.web.server import GuardedHandler

TOKEN = "a-token-of-at-least-16-characters"
SOURCE = "testsrc:160x120"


def serve_data(**serve: Any) -> dict[str, Any]:
    """A serve config with one stream ``a`` and these ``serve:`` options."""
    return {"model": {"runtime": "onnxruntime"}, "serve": serve,
            "streams": [{"name": "a", "source": SOURCE, "outputs": ["null"]}]}  # fmt: skip


def stream(name: str, *outputs: str, **keys: Any) -> str:
    return json.dumps({"name": name, "source": SOURCE, "outputs": list(outputs or ["null"]), **keys})


@contextmanager
def served(data: dict[str, Any], *, start: bool = False, **options: Any) -> Iterator[tuple[ApiServer, LocalEngine]]:
    """The API on 127.0.0.1 (a free port) for a LocalEngine of ``data``; the engine runs only when ``start``."""
    engine = LocalEngine(parse_serve_config(data), max_frames=30)
    api = ApiServer(engine, engine.config, "127.0.0.1", 0, **options)
    api.start()
    try:
        if start:
            engine.start()
        yield api, engine
    finally:
        engine.stop()
        api.close()


def call(
    api: ApiServer, method: str, path: str = "/streams", body: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """Status and JSON body (else text) of one request; ``application/json`` unless ``headers`` say otherwise."""
    headers = dict(headers or {})
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        connection.request(method, path, body, headers)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw.decode(errors="replace")


def names(engine: LocalEngine) -> list[str]:
    return [s.name for s in engine.config.streams]


def one_line_error(status_body: tuple[int, Any], status: int) -> str:
    code, body = status_body
    assert code == status, body
    assert isinstance(body, dict) and set(body) == {"error"} and "\n" not in body["error"], body
    return body["error"]


@pytest.mark.usefixtures("chromium")
def test_a_page_of_another_site_cannot_add_a_stream(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="backdrop")
    target = tmp_path / "owned.mp4"
    with served(serve_data(output_root=str(tmp_path)), start=True) as (api, engine):  # the output policy allows it
        attack([Post(api.url + "streams", {"name": "owned", "source": SOURCE, "outputs": [str(target)]})])
        assert names(engine) == ["a"]
        assert [s.name for s in engine.streams()] == ["a"]
    assert list(tmp_path.iterdir()) == []  # not even a .partial file
    refused = [r for r in caplog.records if '"POST /streams HTTP/1.1" 403' in r.getMessage()]
    assert len(refused) >= 2, [r.getMessage() for r in caplog.records]  # the fetch and the form arrived


def test_only_its_own_host_names_are_answered() -> None:
    data = serve_data()
    data["http"] = {"allowed_hosts": ["backdrop.example.org"]}
    with served(data) as (api, engine):
        rebound = {"Host": "evil.example"}  # DNS rebinding: evil.example now resolves to 127.0.0.1
        assert "evil.example" in one_line_error(call(api, "GET", headers=rebound), 421)
        one_line_error(call(api, "GET", "/", headers=rebound), 421)
        one_line_error(call(api, "POST", body=stream("b"), headers=rebound), 421)
        assert names(engine) == ["a"]
        for host in (f"127.0.0.1:{api.port}", f"localhost:{api.port}", "localhost", "backdrop.example.org"):
            assert call(api, "GET", headers={"Host": host})[0] == 200, host
        assert call(api, "POST", body=stream("b"), headers={"Host": "backdrop.example.org"}) == (201, {"name": "b"})


@pytest.mark.parametrize("where", ["environment", "file"])
def test_with_a_token_every_request_needs_it(where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BACKDROP_TOKEN", raising=False)
    data = serve_data()
    if where == "environment":
        monkeypatch.setenv("BACKDROP_TOKEN", TOKEN)
    else:
        (tmp_path / "token").write_text(TOKEN + "\n")
        data["http"] = {"token_file": str(tmp_path / "token")}
    with served(data) as (api, engine):
        for path in ("/streams", "/metrics", "/"):
            one_line_error(call(api, "GET", path), 401)
        one_line_error(call(api, "POST", body=stream("b")), 401)
        one_line_error(call(api, "DELETE", "/streams/a"), 401)
        one_line_error(call(api, "GET", headers={"Authorization": "Bearer not-the-token-at-all"}), 401)
        assert names(engine) == ["a"]
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert call(api, "GET", headers=bearer) == (200, [])
        assert call(api, "POST", body=stream("b"), headers=bearer) == (201, {"name": "b"})
        assert call(api, "DELETE", "/streams/b", headers=bearer) == (200, {"removed": "b"})


def test_listening_beyond_loopback_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BACKDROP_TOKEN", raising=False)
    engine = LocalEngine(parse_serve_config(serve_data()))
    with pytest.raises(ConfigError, match=r"^--control: listening on 0\.0\.0\.0 .*needs a token"):
        ApiServer(engine, engine.config, "0.0.0.0", 0)
    monkeypatch.setenv("BACKDROP_TOKEN", TOKEN)
    ApiServer(engine, engine.config, "0.0.0.0", 0).close()


def test_serve_beyond_loopback_without_a_token_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BACKDROP_TOKEN", raising=False)
    path = tmp_path / "streams.yaml"
    path.write_text(yaml.safe_dump(serve_data()))
    code, stderr = run_cli(capsys, "serve", "--config", path, "--control", "0.0.0.0:0", "--max-frames", "1")
    assert code == 2
    lines = error_lines(stderr)
    assert len(lines) == 1 and lines[0].startswith("backdrop: error: --control: listening on 0.0.0.0"), stderr


def test_streams_beyond_max_streams_are_refused_at_load_and_through_the_api() -> None:
    data = serve_data(max_streams=2)
    with served(data) as (api, engine):
        assert call(api, "POST", body=stream("b")) == (201, {"name": "b"})
        assert one_line_error(call(api, "POST", body=stream("c")), 429).startswith("serve.max_streams: ")
        assert names(engine) == ["a", "b"]
        assert call(api, "DELETE", "/streams/b") == (200, {"removed": "b"})
        assert call(api, "POST", body=stream("c")) == (201, {"name": "c"})  # room again
    data["streams"] += [{"name": n, "source": SOURCE, "outputs": ["null"]} for n in ("b", "c")]
    with pytest.raises(ConfigError, match=r"^streams: 3 streams, more than serve.max_streams \(2\)$"):
        parse_serve_config(data)


def raw_request(port: int, data: bytes) -> bytes:
    """Send ``data`` as it is and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(data)
        return read_to_end(client)


def read_to_end(client: socket.socket) -> bytes:
    received = b""
    while chunk := client.recv(4096):
        received += chunk
    return received


def test_malformed_requests_are_refused_in_one_line_without_tracebacks(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="backdrop")
    with served(serve_data()) as (api, engine):
        reply = raw_request(
            api.port,
            b"POST /streams HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: abc\r\n\r\n" + stream("b").encode(),
        )
        assert reply.split(b"\r\n", 1)[0].split(b" ")[1] == b"400", reply
        assert b"Content-Length" in reply.split(b"\r\n\r\n", 1)[1]
        as_text = call(api, "POST", body=stream("b"), headers={"Content-Type": "text/plain"})
        assert "application/json" in one_line_error(as_text, 415)
        as_form = call(api, "POST", body=stream("b"), headers={"Content-Type": "application/x-www-form-urlencoded"})
        one_line_error(as_form, 415)
        with socket.create_connection(("127.0.0.1", api.port), timeout=5) as client:  # hangs up with a reset
            client.sendall(b"POST /streams HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n")
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        wait_until(
            lambda: any(r.getMessage().startswith("http client 127.0.0.1: ") for r in caplog.records),
            3.0,
            "the server to note the reset as one debug line",
        )
        assert names(engine) == ["a"]
        assert call(api, "GET")[0] == 200
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err, err
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]


def test_idle_connections_are_closed_after_the_deadline_and_free_their_handlers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(GuardedHandler, "timeout", 2.0)  # long enough that all three are accepted within it
    with served(serve_data(), max_handlers=2) as (api, _):
        started = time.monotonic()
        idle = [socket.create_connection(("127.0.0.1", api.port), timeout=5) for _ in range(3)]  # one more than fit
        try:
            replies = [read_to_end(client) for client in idle]  # each ends: closed by the server
        finally:
            for client in idle:
                client.close()
        assert time.monotonic() - started < 8.0  # the 2 s deadline, not the default 10 s and not never
        busy = b"HTTP/1.0 503 Service Unavailable"
        assert sorted(reply.split(b"\r\n", 1)[0] for reply in replies) == [b"", b"", busy]
        wait_until(lambda: call(api, "GET")[0] == 200, 30, "a well-formed request to be answered again")


def test_api_streams_write_publish_and_listen_only_where_the_serve_options_allow(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "escape").symlink_to(tmp_path)
    refused = {
        str(tmp_path / "elsewhere.mp4"): "not beneath serve.output_root",
        f"{root}/../elsewhere.mp4": "'..' is not allowed",
        f"{root}/sub/../../elsewhere/": "'..' is not allowed",
        str(root / "escape" / "elsewhere.mp4"): "not beneath serve.output_root",  # a symlink out of the root
        str(root): "not beneath serve.output_root",
        "rtsp://media.example:8554/out": "media.example is not in serve.publish_hosts",
        "http://0.0.0.0:0": "serve.preview_hosts",
        "http://192.0.2.7:0": "serve.preview_hosts",
        "vcam": "window and vcam outputs",
        "window": "window and vcam outputs",
    }
    data = serve_data(output_root=str(root), publish_hosts=["relay.example"], preview_hosts=["192.0.2.8"])
    with served(data) as (api, engine):
        for output, reason in refused.items():
            error = one_line_error(call(api, "POST", body=stream("b", output)), 400)
            assert error.startswith(f"output {output!r}: ") and reason in error, error
        stats = {"stats_json": str(tmp_path / "stats.json")}
        error = one_line_error(call(api, "POST", body=stream("b", pipeline=stats)), 400)
        assert error.startswith("pipeline.stats_json ") and "not beneath serve.output_root" in error
        assert names(engine) == ["a"]
        allowed = [str(root / "cam.mp4"), str(root / "frames") + "/", str(root / "%Y%m%d-%H%M%S.mp4"),
                   "rtsp://relay.example:8554/out", "http://127.0.0.1:0", "http://192.0.2.8:8099", "null"]  # fmt: skip
        body = stream("b", *allowed, pipeline={"stats_json": str(root / "stats.json")})
        assert call(api, "POST", body=body) == (201, {"name": "b"})
    assert list(root.iterdir()) == [root / "escape"]  # checked, not written: the engine never ran


def test_without_an_output_root_api_streams_write_no_files_and_relative_paths_start_in_serve_s_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with served(serve_data()) as (api, engine):
        for output in ("cam.mp4", str(tmp_path / "cam.mp4"), "frames/"):
            error = one_line_error(call(api, "POST", body=stream("b", output)), 400)
            assert error == f"output {output!r}: streams added through the API write no files unless " + (
                "serve.output_root is set"
            )
        assert call(api, "POST", body=stream("b", "null")) == (201, {"name": "b"})
        assert names(engine) == ["a", "b"]
    (tmp_path / "recordings").mkdir()
    with served(serve_data(output_root="recordings")) as (api, _):
        assert "not beneath" in one_line_error(call(api, "POST", body=stream("b", "cam.mp4")), 400)
        assert call(api, "POST", body=stream("b", "recordings/cam.mp4")) == (201, {"name": "b"})
        assert call(api, "POST", body=stream("c", os.path.join(tmp_path, "recordings", "c.mp4")))[0] == 201


def test_a_preview_on_the_api_s_own_port_is_refused_instead_of_restarting_forever() -> None:
    with served(serve_data()) as (api, engine):
        error = one_line_error(call(api, "POST", body=stream("p", f"http://127.0.0.1:{api.port}")), 400)
        assert error == f"http://127.0.0.1:{api.port} is the control API's own port {api.port}: choose another"
        assert names(engine) == ["a"]
        port = api.port
    data = serve_data()
    data["streams"][0]["outputs"] = [f"http://127.0.0.1:{port}"]
    with pytest.raises(ConfigError, match=rf"^streams\[0\].outputs: http://127.0.0.1:{port} is the control API's"):
        ApiServer(LocalEngine(parse_serve_config(data)), parse_serve_config(data), "127.0.0.1", port)
