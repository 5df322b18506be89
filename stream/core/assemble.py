"""A RunConfig → an opened Pipeline, and a finished run → its reported stats: shared by the CLI and the API.

The order is chosen so bad input fails before anything is written: write targets, source, background,
outputs, then the model (slowest to load). Whoever runs the pipeline (``backdrop run``, ``backdrop.run``,
``backdrop.frames``) gets the same checks, the same audio routing and the same errors.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from backdrop.errors import SinkError, SourceError
from backdrop.model.segmenter import Segmenter, load_segmenter
from backdrop.stream.compositing.live import LiveBackground
from backdrop.stream.config.run import RunConfig
from backdrop.stream.core.figures import RUN_STREAM_NAME, StreamFigures, StreamState, stats_document, sum_figures
from backdrop.stream.core.live_controls import LiveControls
from backdrop.stream.core.pipeline import Pipeline, ProgressCallback
from backdrop.stream.sinks.audio_routing import audio_source
from backdrop.stream.sinks.base import Sink
from backdrop.stream.sinks.factory import make_sink
from backdrop.stream.sinks.targets import check_targets
from backdrop.stream.sources.factory import make_source
from backdrop.stream.sources.pacing import paced


@contextmanager
def open_pipeline(
    config: RunConfig,
    *,
    config_path: Path | None = None,
    extra_sinks: Sequence[Sink] = (),
    on_progress: ProgressCallback | None = None,
    segmenter: Segmenter | None = None,
    controls: LiveControls | None = None,
    overwrite: bool = False,
) -> Iterator[Pipeline]:
    """The pipeline ``config`` describes (plus ``extra_sinks``), with its source and model open until the block ends.

    A given ``segmenter`` (``backdrop serve``'s one model shared by every stream) is used instead of loading
    ``config.model``, and left open. ``overwrite`` lets PNG folder outputs replace an earlier run's frames.
    """
    config.validate()
    check_targets(config, config_path=config_path)
    source = paced(make_source(config.source), config)  # a file played into a window runs at its own rate
    controls = controls or LiveControls.from_config(config)  # the caller's, to change the run from its own code
    background = LiveBackground(controls)  # parses every background the controls can switch to
    audio = audio_source(config)
    outputs = [
        make_sink(
            spec,
            alpha=background.has_alpha,
            encoder=config.encoder,
            audio_from=audio,
            http=config.http,
            overwrite=overwrite,
        )
        for spec in config.outputs
    ]
    controls.attach([*outputs, *extra_sinks])  # window hotkeys and preview buttons drive them
    model = config.model
    shared = nullcontext(segmenter) if segmenter is not None else None
    with source, shared or load_segmenter(model.name, model.runtime, threads=model.threads) as opened:
        yield Pipeline(
            source,
            opened,
            background,
            [*outputs, *extra_sinks],
            mask=config.mask,
            batch_size=model.batch_size,
            interval=model.interval,
            max_interval=model.max_interval,
            queue_size=config.pipeline.queue_size,
            max_frames=config.pipeline.max_frames,
            on_progress=on_progress,
        )


RUN_DETAILS = (  # the ``run`` part of the stats document: what the stream figures do not say
    "frame_count",
    "frames_composited",
    "fps",
    "elapsed_s",
    "first_output_s",
    "stages",
    "queues",
    "unfinished",
    "interrupted",
    "stopped_by",
    "damage",
)


def run_stats_document(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The ``--stats-json`` document (stream/core/stats_schema.json) of a finished run's stats."""
    state = StreamState.STOPPED if stats.get("stopped_by") else StreamState.FINISHED
    figures = StreamFigures.of_run(RUN_STREAM_NAME, stats, state, error=stats.get("damage"))
    totals = {**dataclasses.asdict(sum_figures([figures])), "peak_rss_mb": stats.get("peak_rss_mb")}
    return stats_document("run", [figures], totals, run={key: stats.get(key) for key in RUN_DETAILS})


def write_stats(path: str, stats: Mapping[str, Any]) -> None:
    try:
        Path(path).write_text(json.dumps(stats, indent=2) + "\n")
    except OSError as e:
        raise SinkError(f"cannot write stats to {path}: {e.strerror or e}") from e


def report(config: RunConfig, pipeline: Pipeline, stats: dict[str, Any]) -> dict[str, Any]:
    """Add the source's damage to ``stats``, write their document where the config says, and fail if the input was
    damaged. ``stats`` may say how the run ended (``interrupted``, ``stopped_by``); by default it ended by itself."""
    stats["damage"] = damage = pipeline.source.damage
    stats.setdefault("interrupted", False)
    stats.setdefault("stopped_by", None)
    if config.pipeline.stats_json:
        write_stats(config.pipeline.stats_json, run_stats_document(stats))
    if damage:
        raise SourceError(f"{damage}; wrote the {stats['frames_out']} good frames")
    return stats
