"""``backdrop serve``: many streams from one config, one shared model, a control API; runs until stopped.

Unlike ``backdrop run``, a stop is a service's normal end: SIGINT/SIGTERM stop every stream gracefully (files
stay playable) and exit 0. With ``--max-frames N`` each stream stops after N written frames and the command
exits once all have. The control API is listening before the model loads, so a taken port fails at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from backdrop.commands.arguments import add_set_option, assignments
from backdrop.errors import ConfigError, RuntimeUnavailable

if TYPE_CHECKING:
    from backdrop.stream.config.serve import ServeConfig
    from backdrop.stream.serve.engine import Engine

DEFAULT_CONTROL = "127.0.0.1:8090"  # loopback; any other address needs a token (README "Security")
POLL_S = 0.2  # how often the main thread checks whether every stream is done (signals are handled in between)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run many streams with one shared model, a control API and Prometheus metrics",
        description=(
            "Serve every stream of --config (see configs/streams.yaml) until stopped. Each --set changes a key of "
            "that file before it is checked: a default every stream starts from (mask.gamma=0.8) or a serve option "
            "(serve.batch_wait_ms=2); a key a stream sets itself still wins for that stream."
        ),
    )
    parser.add_argument("--config", type=Path, required=True, help="YAML serve configuration (streams: …)")
    parser.add_argument("--engine", choices=("local", "ray"), default="local", help="where the streams run")
    parser.add_argument("--control", default=DEFAULT_CONTROL, help=f"HOST:PORT of the control API ({DEFAULT_CONTROL})")
    parser.add_argument("--max-frames", type=int, help="stop each stream after N written frames, exit when all are")
    parser.add_argument("--stats-json", help="write every stream's final figures and the totals to this JSON file")
    parser.add_argument("--ray-address", help="join this Ray cluster (--engine ray; default: start a local Ray)")
    add_set_option(parser, scope="the config file's defaults for every stream, or serve.*")
    parser.set_defaults(handler=run)


def make_engine(args: argparse.Namespace, config: ServeConfig, stop: threading.Event | None = None) -> Engine:
    """The engine ``--engine`` names; the Ray one is imported only when asked for (``stop`` ends its joining)."""
    if args.engine == "local":
        if args.ray_address:
            raise ConfigError("--ray-address needs --engine ray")
        from backdrop.stream.serve.engine import LocalEngine

        return LocalEngine(config, max_frames=args.max_frames)
    try:
        from backdrop.stream.serve.ray_engine import RayEngine
    except ModuleNotFoundError as e:
        if (e.name or "").startswith("backdrop."):
            raise RuntimeUnavailable("--engine ray: the Ray engine is not part of this installation") from e
        raise RuntimeUnavailable(f"--engine ray needs {e.name}: pip install 'backdrop-video[ray]'") from e
    return RayEngine(config, max_frames=args.max_frames, address=args.ray_address, cancel=stop)


def run(args: argparse.Namespace) -> int:
    from backdrop.stream.config.serve import load_serve_config
    from backdrop.stream.core.assemble import write_stats
    from backdrop.stream.core.figures import stats_document
    from backdrop.stream.serve.api_server import ApiServer, parse_control
    from backdrop.stream.serve.tuning import FOR_STREAMS
    from backdrop.stream.sinks.targets import check_serve_stats

    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError("--max-frames: must be >= 1")
    config = load_serve_config(args.config, assignments(args))
    if args.stats_json:  # none of the streams' paths nor the config file; streams added later are held to it too
        check_serve_stats(args.stats_json, config)
        config = dataclasses.replace(config, stats_json=args.stats_json)
    stop = threading.Event()  # SIGINT/SIGTERM
    engine = make_engine(args, config, stop)
    api = ApiServer(engine, config, *parse_control(args.control))

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    untuned = FOR_STREAMS.apply() if args.engine == "local" else None  # Ray actors tune their own processes
    try:
        api.start()
        engine.start()
        for sig in previous:  # an embedded Ray's start puts in a SIGTERM handler of its own (exit 15, no stats)
            signal.signal(sig, on_signal)
        while not stop.wait(POLL_S):
            if args.max_frames is not None and engine.wait(0):
                break
    finally:
        engine.stop()
        api.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if untuned is not None:
            untuned.apply()
    streams, totals = engine.streams(), engine.totals()
    if args.stats_json:
        write_stats(args.stats_json, stats_document("serve", streams, totals))
    summary = ", ".join(f"{s.name} {s.state.value} ({s.frames_out} frames)" for s in streams)
    print(f"backdrop: served {len(streams)} streams: {summary or 'none'}", file=sys.stderr)
    return 0
