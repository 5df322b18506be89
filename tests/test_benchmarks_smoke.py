"""Smoke tests of the benchmarks the README quotes that `backdrop bench` does not run: each one's own ``main`` on
tiny inputs (a few frames, a second or two, small frames), checking that it finishes and writes the figures the
README quotes, in the format of the result file the README links to (benchmarks/results/).

They say nothing about the numbers, only that the commands in the README still run and report what it shows.
The RTSP ones use the GStreamer relay the other streaming tests use. What a benchmark builds at a fixed size
that a smoke test need not wait for (soak's 720p input clip; rtsp_latency's 3 s warm-up) is shrunk in place.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backdrop.benchmarks.rtsp_servers import relay_available

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def committed(name: str) -> dict[str, Any]:
    """A result file the README links to, as it is in the repository."""
    return json.loads((RESULTS / name).read_text())


@pytest.fixture
def needs_relay() -> None:
    if not relay_available():
        pytest.fail("GStreamer RTSP server missing: run `make system-deps` (`make test` does)")


def test_crash_safety_cost(tmp_path: Path) -> None:
    from backdrop.benchmarks import crash_safety_cost

    out = tmp_path / "crash_safety_cost.json"
    assert crash_safety_cost.main(["--frames", "4", "--repeats", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result) == set(committed("crash_safety_cost.json"))  # frames … fps_cost, cpu_cost
    assert (result["frames"], result["repeats"], result["suffix"]) == (4, 1, ".mp4")
    for variant in (
        "crash_safe",
        "plain",
    ):  # README: "69.7 fps crash-safe against 64.5 plain, 19.4 against 20.1 CPU ms"
        figures = result[variant]
        assert figures["fps"] > 0 and figures["cpu_ms_per_frame"] > 0
        assert len(figures["fps_runs"]) == 1
    assert isinstance(result["fps_cost"], float) and isinstance(result["cpu_cost"], float)


@pytest.mark.slow
@pytest.mark.rtsp
def test_serve_capacity(tmp_path: Path, needs_relay: None) -> None:
    from backdrop.benchmarks import serve_capacity

    out = tmp_path / "capacity.json"
    args = ["--streams", "1", "--size", "160x96", "--seconds", "1", "--warmup", "0", "--repeats", "1"]
    assert serve_capacity.main([*args, "--outputs", "restream", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert "machine" in result
    rows = {row["mode"]: row for row in result["results"]}
    assert set(rows) == {"serve", "run"}  # one serve process against a backdrop run per stream, in the same run
    # the README's capacity table: fps per stream, dropped, CPU ms / frame, cores busy, memory per stream, p50
    quoted = {"fps_per_stream", "drop_percent", "cpu_ms_per_frame", "cpu_cores_busy", "rss_mb_per_stream"}
    quoted |= {"latency_p50_ms", "size", "fps", "streams", "interval", "background"}
    for row in rows.values():
        assert quoted <= set(row), quoted - set(row)
        assert row["streams"] == 1 and row["size"] == "160x96" and row["fps_per_stream"] > 0
        assert (row["outputs"], row["outputs_verified"]) == ("restream", True)  # the relay got what was sent
        assert row["repeats"] == len(row["runs"]) == 1  # the runs are kept beside their medians
    assert {"mean_batch_size", "mixed_batch_percent"} <= set(rows["serve"])  # serve's own batching figures
    committed_row = committed("serve/capacity_6x480p.json")["results"][0]
    assert quoted | {"mean_batch_size", "mixed_batch_percent"} <= set(committed_row)


@pytest.mark.slow
@pytest.mark.rtsp
def test_serve_capacity_records(tmp_path: Path, needs_relay: None) -> None:
    """With recordings (the default output), each stream's .mp4 is real H.264 with the frames the stream wrote."""
    import av

    from backdrop.benchmarks import serve_capacity

    out, kept = tmp_path / "capacity.json", tmp_path / "kept"
    args = ["--streams", "1", "--size", "160x96", "--seconds", "1", "--warmup", "0", "--repeats", "1", "--modes"]
    assert serve_capacity.main([*args, "serve", "--json", str(out), "--keep", str(kept)]) == 0
    (row,) = json.loads(out.read_text())["results"]
    assert (row["mode"], row["outputs"], row["outputs_verified"]) == ("serve", "record", True)
    (stream,) = row["runs"][0]["outputs_check"]["streams"]
    with av.open(str(kept / "serve_1_1" / "s0.mp4")) as container:  # decoded here too, not only by the benchmark
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        frames = sum(1 for _ in container.decode(video))
    assert frames > 0 and frames == stream["frames_decoded"] == stream["frames_written"]


def test_serve_capacity_reads_run_progress() -> None:
    """A ``backdrop run`` is read from its progress line: the parser follows the line's format."""
    from backdrop.benchmarks.capacity_fleet import parse_progress
    from backdrop.commands.progress import format_progress

    line = format_progress(  # a live source's: no frame count
        {"frames_out": 1234, "frame_count": None, "elapsed_s": 41.2, "fps_out": 29.9, "dropped": 7, "reconnects": 0,
         "latency_ms": {"p50": 18.4, "p95": 30.0}}
    )  # fmt: skip
    count = parse_progress(5.0, line)
    assert count is not None and (count.at, count.frames, count.dropped, count.latency_p50_ms) == (5.0, 1234, 7, 18.0)
    assert parse_progress(5.0, "backdrop: error: no frames") is None


@pytest.mark.slow
@pytest.mark.rtsp
def test_soak(tmp_path: Path, needs_relay: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from backdrop.benchmarks import soak
    from backdrop.stream.sources.demo_clip import write_clip

    # soak loops a 10 s 720p clip; 3 s of a small one take the same path through the code (a 1 s loop does not:
    # the relay's reader then fails to open with "Invalid data found when processing input")
    monkeypatch.setattr(soak, "write_clip", lambda path, **_: write_clip(path, width=320, height=180, frames=90))
    argv = ["soak", "--minutes", "0.08", "--outage-every", "2", "--outage-s", "0.5", "--sample-s", "1"]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(tmp_path)])
    soak.main()
    result = json.loads((tmp_path / "soak.json").read_text())
    reference = committed("soak/soak.json")
    assert set(result) == set(reference)  # machine, minutes, outage settings, outages, samples, final
    assert len(result["outages"]) == 1  # the publisher was killed and started again once
    assert result["samples"], "no samples"
    for row in result["samples"]:  # the README's memory, fps, latency, drops over time
        assert set(row) == set(reference["samples"][0])
    assert set(reference["final"]) <= set(result["final"])
    assert result["final"]["frames_out"] > 0
    assert (tmp_path / "soak.png").stat().st_size > 0  # the plot the README shows


@pytest.fixture(scope="module")
def rtsp_latency_result(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One run of the RTSP latency benchmark at 320x240, 10 fps, half a second per chain."""
    if not relay_available():
        pytest.fail("GStreamer RTSP server missing: run `make system-deps` (`make test` does)")
    from backdrop.benchmarks import rtsp_latency

    out = tmp_path_factory.mktemp("rtsp_latency") / "rtsp_latency.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rtsp_latency, "WARMUP_S", 0.5)  # connection set-up; 3 s in a real run
        patch.setattr(sys, "argv", ["rtsp_latency", "--size", "320x240", "--fps", "10", "--seconds", "0.5"])
        sys.argv.extend(["--json", str(out)])
        rtsp_latency.main()
    yield json.loads(out.read_text())


CHAINS = ("pipeline_tcp_ms", "rtsp_tcp_ms", "rtsp_udp_ms")


@pytest.mark.slow
@pytest.mark.rtsp
def test_rtsp_latency(rtsp_latency_result: dict[str, Any]) -> None:
    result = rtsp_latency_result
    assert set(result) == set(committed("rtsp_latency.json"))  # codec floor and the three chains of the table
    assert (result["size"], result["fps"]) == ("320x240", 10.0)
    assert result["codec_floor_ms"]["p50"] > 0  # measured in memory: no relay, no stamps lost on the way
    for chain in CHAINS:
        assert set(result[chain]) == {"p50", "p95", "stamped_frames", "frames_read"}
        assert result[chain]["frames_read"] > 0, chain  # frames came through the relay


@pytest.mark.slow
@pytest.mark.rtsp
def test_rtsp_latency_times_the_frames_it_reads(rtsp_latency_result: dict[str, Any]) -> None:
    for chain in ("rtsp_tcp_ms", "rtsp_udp_ms"):  # the transport alone: the stamp is never behind a matte
        figures = rtsp_latency_result[chain]
        assert figures["stamped_frames"] > 0 and figures["p50"] > 0, (chain, figures)


def test_matte_motion(tmp_path: Path) -> None:
    from backdrop.benchmarks import matte_motion

    out = tmp_path / "matte_motion.json"
    assert matte_motion.main(["--quick", "--size", "320x180", "--mediapipe-python", "", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result) == set(committed("matte_motion.json"))  # still, pan, moving, talking, matte_ms_per_frame …
    assert len(result["still"]) == 4 and all("mediapipe" not in row for row in result["still"].values())
    moving = result["moving"]
    assert moving["cuts"] == [12, 24] and len(moving["first_frame_after_cut_iou"]) == 2
    assert moving["interval_1"]["frames_inferred"] < moving["interval_0"]["frames_inferred"] == moving["frames"]
    assert 0 < result["talking"]["frames_inferred"] <= result["talking"]["frames"]
    assert set(result["matte_ms_per_frame"]) == {"default", "no_filter"}


def test_clean_edges(tmp_path: Path) -> None:
    from backdrop.benchmarks import clean_edges

    out, sheet = tmp_path / "clean_edges.json", tmp_path / "hair.jpg"
    assert clean_edges.main(["--repeats", "1", "--json", str(out), "--sheet", str(sheet)]) == 0
    result = json.loads(out.read_text())
    assert set(result) == set(committed("clean_edges.json"))  # leftovers per photo and variant, compose_ms
    assert set(result["compose_ms"]) == {
        f"{size} {layout}" for size in ("480p", "720p", "1080p") for layout in ("bgr", "i420")
    }
    for rows in result["leftovers"].values():
        assert rows["color:#00b140 bgr default"]["plain"]["red_left"] > 0  # the plain blend keeps the red wall
    assert sheet.stat().st_size > 0
