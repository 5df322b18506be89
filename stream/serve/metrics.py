"""Prometheus metrics of a running engine: a Collector that reads the engine's figures at every scrape.

Nothing is copied into gauges between scrapes, so a scrape never shows stale figures and a removed stream
disappears at once. Counters (frames, drops, reconnects, restarts, batches) are the engine's running totals.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from backdrop.stream.core.figures import StreamState
from backdrop.stream.serve.engine import Engine

# (StreamFigures field, metric name, help) per stream
GAUGES = (
    ("fps_in", "backdrop_stream_fps_in", "Frames read per second"),
    ("fps_out", "backdrop_stream_fps_out", "Frames written per second"),
    ("latency_p50_ms", "backdrop_stream_latency_p50_ms", "Capture-to-output latency, median (ms)"),
    ("latency_p95_ms", "backdrop_stream_latency_p95_ms", "Capture-to-output latency, 95th percentile (ms)"),
)
COUNTERS = (
    ("frames_out", "backdrop_stream_frames_out", "Frames written"),
    ("dropped", "backdrop_stream_dropped_frames", "Frames dropped to keep up with a live source"),
    ("reconnects", "backdrop_stream_reconnects", "Reconnections of the stream's source"),
    ("restarts", "backdrop_stream_restarts", "Restarts of the stream after a failure"),
)


class EngineCollector(Collector):
    """Per-stream gauges and counters labelled ``stream``, a one-hot ``state``, and the shared model's batching."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        streams = self.engine.streams()
        for key, name, help_text in GAUGES:
            gauge = GaugeMetricFamily(name, help_text, labels=["stream"])
            for stream in streams:
                gauge.add_metric([stream.name], getattr(stream, key))
            yield gauge
        for key, name, help_text in COUNTERS:
            counter = CounterMetricFamily(name, help_text, labels=["stream"])
            for stream in streams:
                counter.add_metric([stream.name], getattr(stream, key))
            yield counter
        state = GaugeMetricFamily(
            "backdrop_stream_state", "1 for the stream's current state", labels=["stream", "state"]
        )
        for stream in streams:
            for each in StreamState:
                state.add_metric([stream.name, each.value], float(stream.state is each))
        yield state
        totals = self.engine.totals()
        if "batches" in totals:
            yield CounterMetricFamily(
                "backdrop_inference_batches", "Batches run by the shared model", totals["batches"]
            )
            yield CounterMetricFamily(
                "backdrop_inference_frames", "Frames segmented by the shared model", totals["frames_inferred"]
            )
            yield CounterMetricFamily(
                "backdrop_inference_mixed_batches", "Batches holding frames of several streams", totals["mixed_batches"]
            )


def engine_registry(engine: Engine) -> CollectorRegistry:
    """A registry holding only the engine's metrics (not this process's default ones)."""
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine))
    return registry
