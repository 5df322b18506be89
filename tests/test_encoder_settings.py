"""Encoder settings that only show in what is written: ``encoder.audio`` in a YAML config, and the RTSP output's
H.264 (no B-frames, a keyframe a second) as a reader of the real GStreamer relay decodes it."""

# The relay fixture is imported and then named as a test parameter, which is what pytest wants.
# ruff: noqa: F811

from __future__ import annotations

import itertools
import subprocess
import time
from pathlib import Path

import av
import pytest
from av.video.frame import PictureType
from clips import run_cli
from rtsp_fixtures import FrameFeeder, Relay, relay  # noqa: F401

from backdrop.stream.sinks.rtsp import RtspSink
from backdrop.stream.sources.demo_clip import write_clip

FPS = 30
FRAMES = 10

# -- encoder.audio ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip_with_sound(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A third of a second of the person clip with a 440 Hz tone as AAC, as a camera records it."""
    folder = tmp_path_factory.mktemp("audio")
    video = write_clip(folder / "video.mp4", width=192, height=108, frames=FRAMES, fps=FPS)
    path = folder / "with_sound.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(video), "-f", "lavfi", "-i",
         f"sine=frequency=440:duration={FRAMES / FPS}", "-c:v", "copy", "-c:a", "aac", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    with av.open(str(path)) as container:
        assert container.streams.audio, "the source clip has no audio: nothing would be tested"
    return path


@pytest.mark.parametrize(
    ("encoder_section", "has_audio"),
    [
        ("encoder:\n  audio: false\n", False),
        ("encoder:\n  crf: 30\n", True),  # a config that leaves encoder.audio at its default keeps the sound
    ],
    ids=["audio-false", "default"],
)
def test_encoder_audio_in_the_config_decides_whether_the_output_has_sound(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, clip_with_sound: Path, encoder_section: str, has_audio: bool
) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(f"source:\n  uri: {clip_with_sound}\noutputs:\n  - {tmp_path / 'out.mp4'}\n{encoder_section}")
    code, stderr = run_cli(capsys, "run", "--config", config, "--runtime", "onnxruntime", "--no-progress")
    assert code == 0, stderr
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert len(container.streams.video) == 1
        assert len(container.streams.audio) == (1 if has_audio else 0)


# -- the RTSP output's H.264 -------------------------------------------------------------------------------

RTSP_FPS = 15
KEYFRAMES = 3  # two whole GOPs between them: about 2 s of stream


def decoded_picture_types(url: str, keyframes: int, timeout: float) -> list[tuple[bool, PictureType]]:
    """(key frame?, picture type) of every frame a reader decodes from ``url``, from its first frame until the
    ``keyframes``-th key frame."""
    deadline = time.monotonic() + timeout
    frames: list[tuple[bool, PictureType]] = []
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=10) as container:
        for packet in container.demux(video=0):
            for frame in packet.decode():
                frames.append((frame.key_frame, PictureType(frame.pict_type)))
                if sum(key for key, _ in frames) >= keyframes:
                    return frames
            if time.monotonic() > deadline:
                pytest.fail(f"{len(frames)} frames and too few key frames in {timeout} s: {frames}")
    pytest.fail(f"the stream ended after {len(frames)} frames")


@pytest.mark.rtsp
def test_the_rtsp_output_has_no_b_frames_and_a_keyframe_a_second(relay: Relay) -> None:
    sink = RtspSink(relay.publish_url("out"))
    sink.open(160, 96, RTSP_FPS)
    with sink, FrameFeeder(sink, 160, 96, fps=RTSP_FPS):
        relay.wait_receiving("out")
        frames = decoded_picture_types(relay.play_url("out"), KEYFRAMES, timeout=20)
    types = {kind for _, kind in frames}
    assert types <= {PictureType.I, PictureType.P}, types  # no B-frames: nothing waits for a later frame
    keys = [i for i, (key, _) in enumerate(frames) if key]
    assert keys[0] == 0  # the relay starts a reader at a keyframe
    assert all(frames[i][1] is PictureType.I for i in keys)
    # a keyframe every second of frames (gop_s 1 at the source's rate), not x264's default of 250
    assert [b - a for a, b in itertools.pairwise(keys)] == [RTSP_FPS] * (KEYFRAMES - 1), keys
