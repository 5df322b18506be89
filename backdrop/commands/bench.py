"""`backdrop bench`: how fast Backdrop runs here, per runtime, setting, stage and resolution, and against MediaPipe's
documented loop (`--against mediapipe`); `--compare` two runs."""

from __future__ import annotations

import argparse
import importlib.util
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from backdrop.errors import ConfigError, SinkError

if TYPE_CHECKING:
    from backdrop.benchmarks.suite import BenchOptions

FULL_RESOLUTIONS = "480p,720p,1080p"
PEER_RESOLUTIONS = "720p,1080p"  # --against: where a user would feel the difference
# --quick: every section, fewer and shorter repeats, the smallest resolution
QUICK_RESOLUTIONS = "480p"
QUICK: dict[str, int] = {
    "frames": 45,
    "model_warmup": 3,
    "model_repeats": 15,
    "stage_warmup": 2,
    "stage_repeats": 8,
    "pipeline_repeats": 1,
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure speed: model per runtime, per-stage cost, pipeline vs sequential fps",
        description="Benchmark this machine. Writes JSON, a Markdown table and PNG plots; --compare diffs two runs.",
    )
    parser.add_argument("--quick", action="store_true", help="every section, few repeats, 480p only (< 1 min)")
    parser.add_argument("--runtime", action="append", help="runtime to measure (repeatable; default: all usable)")
    parser.add_argument("--resolution", help=f"comma-separated 480p/720p/1080p/WxH (default {FULL_RESOLUTIONS})")
    parser.add_argument("--source", help="end-to-end input: video file, testsrc:WxH, rtsp:// or http:// URL")
    parser.add_argument("--duration", type=float, help="seconds to record a live --source URL for")
    parser.add_argument("--frames", type=int, help="frames per end-to-end input (default 150)")
    parser.add_argument("--repeats", type=int, help="timed model runs per setting (default 100)")
    parser.add_argument(
        "--threads", type=int, help="runtime threads for the per-stage inference cost (default: the pipeline's, 1)"
    )
    parser.add_argument(
        "--against",
        choices=("mediapipe",),
        help=f"also run MediaPipe's documented loop against `backdrop run`, whole processes (at {PEER_RESOLUTIONS})",
    )
    parser.add_argument(
        "--mediapipe-python", help="an interpreter with mediapipe for --against (default: $BACKDROP_MEDIAPIPE_PYTHON)"
    )
    parser.add_argument("--out", type=Path, help="folder for bench.json, bench.md, fps.png and stages.png")
    parser.add_argument("--json", type=Path, help="write the result JSON here")
    parser.add_argument("--readme", type=Path, help="put the tables between the bench markers of this README")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument(
        "--window", action="store_true", help="measure capture → window latency at 720p30 instead (needs a display)"
    )
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A.json", "B.json"), help="show what changed A → B")
    parser.set_defaults(handler=run)


def _resolutions(text: str) -> tuple[tuple[str, int, int], ...]:
    from backdrop.benchmarks.inputs import parse_resolution

    resolutions = tuple(parse_resolution(part.strip()) for part in text.split(",") if part.strip())
    if not resolutions:
        raise ConfigError("--resolution needs at least one resolution")
    return resolutions


def _options(args: argparse.Namespace) -> BenchOptions:
    from backdrop.benchmarks.peer import find_mediapipe
    from backdrop.benchmarks.suite import BenchOptions

    settings = QUICK if args.quick else {}
    for name, value in (("frames", args.frames), ("repeats", args.repeats), ("threads", args.threads)):
        if value is not None and value < 1:
            raise ConfigError(f"--{name} must be at least 1, got {value}")
    if args.duration is not None and args.duration <= 0:
        raise ConfigError(f"--duration must be > 0 seconds, got {args.duration}")
    if args.mediapipe_python and not args.against:
        raise ConfigError("--mediapipe-python is for --against mediapipe")
    full, peer = (QUICK_RESOLUTIONS, QUICK_RESOLUTIONS) if args.quick else (FULL_RESOLUTIONS, PEER_RESOLUTIONS)
    options = BenchOptions(
        quick=args.quick,
        runtimes=tuple(dict.fromkeys(args.runtime or ())),
        resolutions=_resolutions(args.resolution or full),
        source=args.source,
        duration_s=args.duration,
        threads=args.threads,
        peer_resolutions=_resolutions(args.resolution or peer),
        mediapipe=find_mediapipe(args.mediapipe_python) if args.against else None,
        **settings,
    )
    if args.frames:
        options = replace(options, frames=args.frames)
    if args.repeats:
        options = replace(options, model_repeats=args.repeats)
    return options


def _check_writable(path: Path, what: str) -> None:
    if not path.parent.is_dir():
        raise SinkError(f"cannot write {what} {path}: folder {path.parent} does not exist")


def _check_outputs(args: argparse.Namespace) -> None:
    """Fail before minutes of measuring when an output cannot be written."""
    from backdrop.benchmarks.report import readme_span

    if args.out is not None:
        if importlib.util.find_spec("matplotlib") is None:
            raise ConfigError("--out draws plots with matplotlib: pip install 'backdrop-video[bench]' (or use --json)")
        _check_writable(args.out, "results to")
    if args.json is not None:
        _check_writable(args.json, "JSON")
    if args.readme is not None:
        try:
            readme_span(args.readme.read_text(), str(args.readme))
        except OSError as e:
            raise ConfigError(f"cannot read {args.readme}: {e.strerror or e}") from e


def _window_latency(args: argparse.Namespace) -> int:
    from backdrop.benchmarks.window_latency import measure_window_latency, summary

    if args.json is not None:
        _check_writable(args.json, "JSON")
    result = measure_window_latency()
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(summary(result))
    return 0


def run(args: argparse.Namespace) -> int:
    from backdrop.benchmarks import report

    if args.compare:
        first, second = (report.load(path) for path in args.compare)
        a, b = args.compare
        names = (str(a), str(b)) if a.name == b.name else (a.name, b.name)
        print(report.compare(first, second, names=names))
        return 0
    if args.window:
        return _window_latency(args)
    options = _options(args)
    _check_outputs(args)
    if args.out is not None:
        args.out.mkdir(exist_ok=True)

    from backdrop.benchmarks.suite import run_suite

    result = run_suite(options, progress=not args.no_progress)
    table = report.markdown(result)
    text = json.dumps(result, indent=2) + "\n"
    if args.json is not None:
        args.json.write_text(text)
    if args.out is not None:
        (args.out / "bench.json").write_text(text)
        (args.out / "bench.md").write_text(table + "\n")
        report.write_plots(result, args.out)
    if args.readme is not None:
        report.update_readme(args.readme, table)
    print(table)
    return 0
