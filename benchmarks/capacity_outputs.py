"""Where a capacity case's streams write, and the check afterwards that they really wrote it.

``record``: an H.264 .mp4 per stream (the encoder config's defaults: libx264 ultrafast, crf 23), decoded
afterwards with PyAV and its frames counted against what the stream reported writing. ``restream``: each stream
published over RTSP to its own path on the relay its camera comes from (``NAME-out``); afterwards the relay says
how many access units arrived, against the frames the stream sent (written less those its RTSP output dropped).
``preview``: a browser preview nobody watches, so nothing is encoded; nothing to check.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av

from backdrop.benchmarks.capacity_fleet import free_ports
from backdrop.benchmarks.rtsp_servers import Relay

OUTPUT_KINDS = ("record", "restream", "preview")
TOLERANCE = 0.01  # share of the frames written that may be missing from what arrived (the last ones at the stop)


def probe_recording(path: Path) -> dict[str, Any]:
    """Codec, decoded frames and duration of a recording; ``error`` instead where it is missing or does not decode."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frames = sum(1 for _ in container.decode(stream))
            duration = float(container.duration or 0) / av.time_base
            return {"codec": stream.codec_context.name, "frames_decoded": frames, "duration_s": round(duration, 2)}
    except (OSError, av.FFmpegError, IndexError) as e:
        return {"error": str(e)}


def arrived(expected: int, received: int) -> bool:
    """True when ``received`` frames are all of ``expected`` but the few a stop may cut off, and no more."""
    return expected > 0 and expected * (1 - TOLERANCE) - 1 <= received <= expected


class CaseOutputs:
    """The outputs of the streams ``names`` of one case, of one kind, in ``folder`` or on the case's relay."""

    def __init__(self, kind: str, names: Sequence[str], folder: Path) -> None:
        if kind not in OUTPUT_KINDS:
            raise ValueError(f"output kind {kind!r}: use one of {', '.join(OUTPUT_KINDS)}")
        self.kind = kind
        self.names = list(names)
        self.folder = folder

    @property
    def relay_paths(self) -> list[str]:
        """The relay's paths: every camera's, and where the streams publish when they restream."""
        return self.names + [f"{name}-out" for name in self.names if self.kind == "restream"]

    def specs(self, relay: Relay) -> list[str]:
        """Every stream's ``--output``."""
        if self.kind == "record":
            return [str(self.folder / f"{name}.mp4") for name in self.names]
        if self.kind == "restream":
            return [relay.publish_url(f"{name}-out") for name in self.names]
        return [f"http://127.0.0.1:{port}" for port in free_ports(len(self.names))]

    def verify(self, relay: Relay, specs: Sequence[str], final: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
        """What arrived of each stream's output against what it reported (``final``: its ``--stats-json`` figures),
        once the streams and the relay are stopped; None for previews."""
        if self.kind == "preview":
            return None
        streams = []
        for name, spec, figures in zip(self.names, specs, final, strict=True):
            if self.kind == "record":
                found = probe_recording(Path(spec))
                ok = found.get("codec") == "h264" and arrived(figures["frames_out"], found.get("frames_decoded", 0))
                streams.append({"stream": name, "frames_written": figures["frames_out"], **found, "ok": ok})
            else:
                sent = figures["frames_out"] - figures["drops"].get(spec, 0)
                received = relay.units_received(f"{name}-out")
                ok = arrived(sent, received)
                streams.append({"stream": name, "frames_sent": sent, "units_received": received, "ok": ok})
        return {"ok": all(s["ok"] for s in streams), "streams": streams}
