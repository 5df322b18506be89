"""A stream's figures as one typed record, their sum, and the versioned ``--stats-json`` document.

Every place that reports on streams reads these: ``backdrop run --stats-json``, ``backdrop serve --stats-json``,
the serve API's ``GET /streams``, its Prometheus metrics and overview page, and the serve benchmarks. The JSON
they produce is described, key by key, in ``stats_schema.json`` beside this module (schema version
STATS_SCHEMA_VERSION); a test validates real runs against it, so a key cannot vanish unnoticed.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

STATS_SCHEMA_VERSION = 1
RUN_STREAM_NAME = "main"  # the one stream of ``backdrop run``


class StreamState(str, enum.Enum):
    """Where a stream is in its life. Each state has one meaning, in every engine."""

    STARTING = "starting"  # opening its source for the first time (Ray: its actor has not answered yet)
    RUNNING = "running"  # frames flow from the source to the outputs
    RECONNECTING = "reconnecting"  # the source was lost; the running pipeline is reconnecting it
    RETRYING = "retrying"  # has never played: its source or outputs failed to open; tried again after a backoff
    RESTARTING = "restarting"  # played, then failed; started again after a backoff (Ray: its actor is restarting)
    FAILED = "failed"  # gone for good: nothing will start it again (Ray: its actor died past its restarts)
    FINISHED = "finished"  # ended by itself: the source ended or the frame limit was reached
    STOPPED = "stopped"  # ended on request: a signal, DELETE /streams/NAME, or a viewer closing the window

    @property
    def flowing(self) -> bool:
        """Playing, even if the source is being reconnected."""
        return self in (StreamState.RUNNING, StreamState.RECONNECTING)

    @property
    def waiting_to_retry(self) -> bool:
        return self in (StreamState.RETRYING, StreamState.RESTARTING)


@dataclass(frozen=True)
class StreamFigures:
    """One stream's figures: counters add up over the stream's restarts; rates and latencies are the latest run's."""

    name: str
    state: StreamState = StreamState.STARTING
    error: str | None = None  # the last failure, one line
    frames_in: int = 0  # frames read from the source
    frames_out: int = 0  # frames every output has written
    frames_inferred: int = 0  # frames the model segmented (model.interval skips some)
    dropped: int = 0  # frames dropped anywhere, the sum of ``drops``
    drops: Mapping[str, int] = field(default_factory=dict)  # frames dropped per place (a queue, a source, a sink)
    reconnects: int = 0  # reconnections of the source or of a network output
    restarts: int = 0  # restarts of the stream after a failure (Ray: also of its actor)
    fps_in: float = 0.0
    fps_out: float = 0.0
    latency_p50_ms: float = 0.0  # capture to output
    latency_p95_ms: float = 0.0
    pid: int | None = None  # the process running the stream
    node: str | None = None  # the host (Ray: the node's address) running it

    @classmethod
    def of_run(
        cls, name: str, snapshot: Mapping[str, Any], state: StreamState, *, error: str | None = None
    ) -> StreamFigures:
        """The figures of one pipeline run, from its RunStats snapshot, in this process."""
        latency = snapshot.get("latency_ms", {})
        return cls(
            name=name,
            state=state,
            error=error,
            frames_in=snapshot.get("frames_in", 0),
            frames_out=snapshot.get("frames_out", 0),
            frames_inferred=snapshot.get("frames_inferred", 0),
            dropped=snapshot.get("dropped", 0),
            drops=dict(snapshot.get("drops", {})),
            reconnects=snapshot.get("reconnects", 0),
            fps_in=snapshot.get("fps_in", 0.0),
            fps_out=snapshot.get("fps_out", 0.0),
            latency_p50_ms=latency.get("p50", 0.0),
            latency_p95_ms=latency.get("p95", 0.0),
            pid=os.getpid(),
            node=socket.gethostname(),
        )

    def after(self, earlier: StreamFigures) -> StreamFigures:
        """These figures continuing ``earlier`` ones (a previous run or process of the same stream): counters add up."""
        drops = dict(earlier.drops)
        for place, count in self.drops.items():
            drops[place] = drops.get(place, 0) + count
        return dataclasses.replace(
            self,
            frames_in=earlier.frames_in + self.frames_in,
            frames_out=earlier.frames_out + self.frames_out,
            frames_inferred=earlier.frames_inferred + self.frames_inferred,
            dropped=earlier.dropped + self.dropped,
            drops=drops,
            reconnects=earlier.reconnects + self.reconnects,
            restarts=earlier.restarts + self.restarts,
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``GET /streams`` and of ``streams.NAME`` in ``--stats-json``."""
        data = dataclasses.asdict(self)
        data["state"] = self.state.value
        data["drops"] = dict(self.drops)
        return data


@dataclass(frozen=True)
class StreamTotals:
    """Every stream's figures added up."""

    streams: int = 0
    running: int = 0  # flowing (running or reconnecting)
    retrying: int = 0  # waiting to be tried again (retrying or restarting)
    failed: int = 0  # gone for good
    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    reconnects: int = 0
    restarts: int = 0
    fps_out: float = 0.0


def sum_figures(streams: Iterable[StreamFigures]) -> StreamTotals:
    """The one place per-stream figures are added up."""
    streams = list(streams)
    return StreamTotals(
        streams=len(streams),
        running=sum(s.state.flowing for s in streams),
        retrying=sum(s.state.waiting_to_retry for s in streams),
        failed=sum(s.state is StreamState.FAILED for s in streams),
        frames_in=sum(s.frames_in for s in streams),
        frames_out=sum(s.frames_out for s in streams),
        dropped=sum(s.dropped for s in streams),
        reconnects=sum(s.reconnects for s in streams),
        restarts=sum(s.restarts for s in streams),
        fps_out=round(sum(s.fps_out for s in streams), 2),
    )


def stats_document(
    command: str, streams: Sequence[StreamFigures], totals: Mapping[str, Any], *, run: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``--stats-json`` document of ``backdrop run`` and ``backdrop serve`` (see stats_schema.json).

    ``totals`` is ``sum_figures`` of the streams plus what the engine adds (batching, memory); ``run`` holds
    ``backdrop run``'s details (per-stage times, queue depths, how the run ended).
    """
    document: dict[str, Any] = {
        "schema": STATS_SCHEMA_VERSION,
        "command": command,
        "streams": {s.name: s.to_json() for s in streams},
        "totals": dict(totals),
    }
    if run is not None:
        document["run"] = dict(run)
    return document


def stats_schema() -> dict[str, Any]:
    """The JSON Schema of the ``--stats-json`` document, with a description of every key."""
    return json.loads(resources.files(__package__).joinpath("stats_schema.json").read_text())
