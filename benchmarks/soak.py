"""Soak: a live 720p30 RTSP camera through the full pipeline for many minutes, its publisher killed every few.

What a service has to survive: the camera drops off the network now and then, and the run must come back
each time without growing in memory, slowing down or piling up latency. One process runs it all (the
GStreamer relay and an FFmpeg publisher looping the demo person clip are child processes): NetworkSource →
the Backdrop pipeline (ONNX model, blur) → a null sink. Every ``--sample-s`` seconds it records the process's
resident memory, the output fps over the last interval, capture→sink latency (p50/p95 of recent frames),
and the drops and reconnects so far; it writes them as JSON and plots them over time with the outages shaded.

    .venv/bin/python -m backdrop.benchmarks.soak --minutes 30 --outage-every 180 --outage-s 10 --out DIR
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from backdrop.benchmarks.machine import describe_machine, describe_short
from backdrop.benchmarks.rtsp_servers import Publisher, Relay
from backdrop.model.segmenter import load_segmenter
from backdrop.stream.compositing.backgrounds import parse_background
from backdrop.stream.core.pipeline import Pipeline
from backdrop.stream.sinks.null import NullSink
from backdrop.stream.sources.demo_clip import write_clip
from backdrop.stream.sources.network import NetworkSource


def resident_mb() -> float:
    """This process's resident memory now (VmRSS), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


class Sampler:
    """Keeps one row per ``every_s`` seconds from the pipeline's progress snapshots."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.rows: list[dict[str, Any]] = []
        self._last: tuple[float, int] | None = None

    def __call__(self, stats: dict[str, Any], final: bool) -> None:
        now, frames = stats["elapsed_s"], stats["frames_out"]
        if self._last is not None and now - self._last[0] < self.every_s and not final:
            return
        fps = 0.0 if self._last is None else (frames - self._last[1]) / max(now - self._last[0], 1e-9)
        self._last = (now, frames)
        self.rows.append(
            {
                "t_s": round(now, 1),
                "rss_mb": resident_mb(),
                "fps": round(fps, 2),
                "latency_p50_ms": stats["latency_ms"]["p50"],
                "latency_p95_ms": stats["latency_ms"]["p95"],
                "frames_out": frames,
                "dropped": stats["dropped"],
                "reconnects": stats["reconnects"],
            }
        )


class Outages:
    """Kills the publisher every ``every_s`` seconds for ``length_s`` seconds, then starts a new one."""

    def __init__(self, relay: Relay, clip: Path, every_s: float, length_s: float) -> None:
        self.relay, self.clip, self.every_s, self.length_s = relay, clip, every_s, length_s
        self.spans: list[tuple[float, float]] = []
        self.stopped = threading.Event()
        self.publisher = self._publish()

    def _publish(self) -> Publisher:
        return Publisher(self.relay.publish_url("soak"), clip=self.clip).start()

    def run(self, started: float) -> None:
        while not self.stopped.wait(self.every_s):  # the schedule itself, not a synchronisation
            self.publisher.kill()
            down = time.monotonic() - started
            if self.stopped.wait(self.length_s):
                return
            self.publisher = self._publish()
            self.spans.append((round(down, 1), round(time.monotonic() - started, 1)))

    def stop(self) -> None:
        self.stopped.set()
        self.publisher.stop()


def soak(minutes: float, outage_every_s: float, outage_s: float, sample_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="backdrop-soak-") as scratch:
        clip = write_clip(Path(scratch) / "person.mp4", width=1280, height=720, frames=300)
        relay = Relay(("soak",)).start()
        outages = Outages(relay, clip, outage_every_s, outage_s)
        sampler = Sampler(sample_s)
        try:
            relay.wait_receiving("soak", timeout=60)
            with (
                NetworkSource(relay.play_url("soak")) as source,
                load_segmenter("general", "onnxruntime", threads=1) as segmenter,
            ):
                pipeline = Pipeline(source, segmenter, parse_background("blur:21"), [NullSink()], on_progress=sampler)
                started = time.monotonic()
                breaker = threading.Thread(target=outages.run, args=(started,), daemon=True)
                breaker.start()
                timer = threading.Timer(minutes * 60, pipeline.request_stop)
                timer.start()
                try:
                    final = pipeline.run()
                finally:
                    timer.cancel()
                    outages.stop()
                    breaker.join(outage_s + 5)
        finally:
            outages.stop()
            relay.stop()
    return {
        "minutes": minutes,
        "outage_every_s": outage_every_s,
        "outage_s": outage_s,
        "outages": outages.spans,
        "samples": sampler.rows,
        "final": final,
    }


def plot(result: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["samples"]
    minutes = [row["t_s"] / 60 for row in rows]
    panels = [
        ("resident memory (MiB)", ["rss_mb"]),
        ("output fps", ["fps"]),
        ("latency (ms)", ["latency_p50_ms", "latency_p95_ms"]),
        ("count", ["dropped", "reconnects"]),
    ]
    figure, axes = plt.subplots(len(panels), 1, figsize=(9, 9), sharex=True)
    for ax, (label, keys) in zip(axes, panels, strict=True):
        for key in keys:
            ax.plot(minutes, [row[key] for row in rows], label=key)
        for down, up in result["outages"]:
            ax.axvspan(down / 60, up / 60, color="red", alpha=0.15)
        ax.set_ylabel(label)
        if len(keys) > 1:
            ax.legend(loc="upper left", fontsize=8)
    axes[-1].set_xlabel("minutes (red: publisher down)")
    figure.suptitle(f"Soak: live 720p30 RTSP → pipeline, publisher killed every {result['outage_every_s']:g} s")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--outage-every", type=float, default=180.0, help="seconds between publisher kills")
    parser.add_argument("--outage-s", type=float, default=10.0, help="seconds the publisher stays down")
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument("--out", type=Path, help="folder for soak.json and soak.png")
    args = parser.parse_args()
    machine = describe_machine()
    result = {"machine": machine, **soak(args.minutes, args.outage_every, args.outage_s, args.sample_s)}
    rows = result["samples"]
    steady = [row for row in rows if row["t_s"] > 30]
    print(
        f"soak on {describe_short(machine)}: {args.minutes:g} min, {len(result['outages'])} outages, "
        f"RSS {steady[0]['rss_mb'] if steady else '?'} → {rows[-1]['rss_mb']} MiB, "
        f"frames {result['final']['frames_out']}, dropped {result['final']['dropped']}, "
        f"reconnects {result['final']['reconnects']}, latency p50 {result['final']['latency_ms']['p50']} ms"
    )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "soak.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(plot(result, args.out / "soak.png"))


if __name__ == "__main__":
    main()
