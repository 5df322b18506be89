"""``backdrop run``: parse flags over the YAML config, build the pipeline, run it, report.

Order of work is chosen so bad input fails before anything is written: write targets (clashes, and files an
earlier run left, which only -y replaces), source (first frame), background, model, then outputs. SIGINT/SIGTERM
ask the pipeline to stop gracefully (files stay playable); a second signal stops at once. A stopped run exits with
the signal's code (130, 143), never 0, so ``backdrop run … && upload`` does not publish a truncated file. A viewer
closing the window (or pressing q) is a normal end: exit 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from backdrop.commands.arguments import add_overwrite_option, add_set_option, assignments, refuse_replacing
from backdrop.stream.config.run import RunConfig, load_config, with_overrides


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="replace the background of a video stream",
        description=(
            "Capture → segment → composite → write. Settings come from the --config YAML, overridden by each --set, "
            "overridden in turn by the dedicated flags (--source, --output …). An existing output file, PNG frames "
            "or --stats-json file are never replaced without -y. A file or folder played into a window, http:// "
            "preview, rtsp:// or vcam runs at its own frame rate, like a player (--no-pace: as fast as possible)."
        ),
    )
    parser.add_argument("--config", type=Path, help="YAML run configuration (see configs/)")
    parser.add_argument(
        "--source", help="video file, image folder, webcam index or /dev/videoN, rtsp:// or http:// URL, testsrc"
    )
    parser.add_argument("--background", help="blur[:K], color:#RRGGBB, an image or video file, transparent, mask")
    parser.add_argument(
        "--output",
        action="append",
        help="file (.mp4/.mkv/.mov), folder/ of PNGs, window, null, vcam[:DEV], rtsp://, http://; repeatable",
    )
    parser.add_argument("--runtime", help="onnxruntime, tflite, keras, tensorrt or auto")
    parser.add_argument("--model", help="general, landscape or a path to a model")
    parser.add_argument("--max-frames", type=int, help="stop after N frames are written")
    parser.add_argument("--stats-json", help="write the final statistics to this JSON file")
    parser.add_argument("--no-progress", action="store_true", help="do not show the live progress line")
    parser.add_argument("--no-audio", action="store_true", help="leave the source file's audio out of video outputs")
    parser.add_argument(
        "--no-pace",
        action="store_true",
        help="read a file or folder as fast as possible even into a window or stream (source.pace: false)",
    )
    add_set_option(parser)
    add_overwrite_option(parser)
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The YAML config (or defaults) with every given flag applied on top."""
    overrides = {
        "source.uri": args.source,
        "background": args.background,
        "outputs": args.output,
        "model.runtime": args.runtime,
        "model.name": args.model,
        "pipeline.max_frames": args.max_frames,
        "pipeline.stats_json": args.stats_json,
        "pipeline.progress": False if args.no_progress else None,
        "encoder.audio": False if args.no_audio else None,
        "source.pace": False if args.no_pace else None,
    }
    return with_overrides(load_config(args.config, assignments(args)), overrides)


@contextmanager
def stop_on_signals(pipeline: Any) -> Iterator[list[int]]:
    """SIGINT/SIGTERM: the first asks for a graceful stop, the next one stops at once; either way the outputs are
    closed and ``pipeline.run()`` returns.

    Yields the list of signals received, so the caller can tell a stopped run from a finished one.
    """
    received: list[int] = []

    def handle(signum: int, frame: object) -> None:
        received.append(signum)
        if len(received) > 1:
            pipeline.abort()
        else:
            pipeline.request_stop()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def signal_exit_code(signum: int) -> int:
    """The shell's code for a process ended by ``signum``: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + signum


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    from backdrop.commands.progress import ProgressLine
    from backdrop.stream.core.assemble import open_pipeline, report
    from backdrop.stream.sinks.targets import check_targets, replaced_targets

    check_targets(config, config_path=args.config)  # a clash with the input says more than "already exists"
    refuse_replacing(replaced_targets(config), overwrite=args.overwrite)

    progress = ProgressLine() if config.pipeline.progress else None
    on_progress = (lambda stats, final: progress.update(stats, final=final)) if progress else None
    with (
        open_pipeline(config, config_path=args.config, on_progress=on_progress, overwrite=args.overwrite) as pipeline,
        stop_on_signals(pipeline) as signals,
    ):
        stats = pipeline.run()
    names = [sink.describe() for sink in pipeline.sinks]
    stats["interrupted"] = bool(signals)
    closed = any(sink.closed_by_viewer for sink in pipeline.sinks)
    stats["stopped_by"] = signal.Signals(signals[0]).name if signals else "viewer" if closed else None
    report(config, pipeline, stats)
    if signals:
        outputs = [f"{name} ({'not finished' if name in stats['unfinished'] else 'finished'})" for name in names]
        print(
            f"backdrop: stopped by {stats['stopped_by']} after {stats['frames_out']} frames → " + ", ".join(outputs),
            file=sys.stderr,
        )
        return signal_exit_code(signals[0])
    print(
        f"backdrop: {'window closed, ' if closed else ''}{stats['frames_out']} frames in {stats['elapsed_s']:.1f}s "
        f"({stats['fps']:.1f} fps) → " + ", ".join(names),
        file=sys.stderr,
    )
    return 0
