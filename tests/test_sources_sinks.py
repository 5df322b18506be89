"""Sources and sinks on real files and codecs: round trips, routing by spec, and the errors users see."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from clips import decode

from backdrop.errors import SinkError, SourceError
from backdrop.pixels import BGRA, to_bgr
from backdrop.stream.config.run import SourceConfig
from backdrop.stream.core.frame import Frame
from backdrop.stream.sinks.factory import make_sink
from backdrop.stream.sinks.null import NullSink
from backdrop.stream.sinks.png_folder import PngFolderSink
from backdrop.stream.sinks.segmented_file import SegmentedFileSink
from backdrop.stream.sinks.video_file import VideoFileSink
from backdrop.stream.sinks.window import WindowSink
from backdrop.stream.sources.demo_clip import read_stamp
from backdrop.stream.sources.factory import make_source
from backdrop.stream.sources.image_folder import ImageFolderSource
from backdrop.stream.sources.testsrc import TestSource
from backdrop.stream.sources.video_file import VideoFileSource
from backdrop.stream.sources.webcam import WebcamSource


def read_all(source) -> list[np.ndarray]:
    with source:
        frames = []
        while (frame := source.read()) is not None:
            frames.append(to_bgr(frame.image, frame.layout))
        return frames


def gradient(index: int, width: int = 160, height: int = 96) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None]
    image[..., 1] = index * 10
    image[..., 2] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    return image


# --- sources -----------------------------------------------------------------------------------


def test_video_file_source_reads_every_frame_in_order(stamped_clip: Path) -> None:
    source = VideoFileSource(stamped_clip)
    frames = read_all(source)
    assert [read_stamp(f) for f in frames] == list(range(len(frames)))
    assert source.frame_count == len(frames) == 40
    assert source.fps == pytest.approx(30.0) and source.damage is None and not source.live


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.mp4", None, "input not found"),
        ("garbage.mp4", b"this is not a video" * 100, "cannot open"),
        ("empty.mkv", b"", "cannot open"),
    ],
)
def test_video_file_source_errors(tmp_path: Path, name: str, content: bytes | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        VideoFileSource(path).open()


def test_truncated_mkv_yields_its_good_frames_and_names_the_damage(tmp_path: Path, mkv_clip: Path) -> None:
    data = mkv_clip.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    source = VideoFileSource(cut)
    frames = read_all(source)
    assert 0 < len(frames) < 60
    stamps = [read_stamp(f) for f in frames]
    # in display order; a B-frame whose packet was cut off may be missing before the last good frame
    assert stamps == sorted(set(stamps)) and stamps[0] == 0 and stamps[-1] - len(stamps) < 3
    assert source.damage and "truncated" in source.damage


def test_image_folder_reads_sorted_and_skips_unreadable(tmp_path: Path) -> None:
    for index in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"img_{index:02d}.png"), gradient(index))
    (tmp_path / "img_03.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("ignored")
    source = ImageFolderSource(tmp_path, fps=12)
    frames = read_all(source)
    assert [int(f[0, 0, 1]) for f in frames] == [0, 10, 20]
    assert source.frame_count == 4 and source.fps == 12
    assert source.damage and "img_03.png" in source.damage


def test_image_folder_skips_images_too_small_and_names_them(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), gradient(0))
    cv2.imwrite(str(tmp_path / "b.png"), gradient(1, width=1, height=1))
    cv2.imwrite(str(tmp_path / "c.png"), gradient(2))
    cv2.imwrite(str(tmp_path / "d.png"), gradient(3, width=5, height=1))
    source = ImageFolderSource(tmp_path)
    frames = read_all(source)
    assert [int(f[0, 0, 1]) for f in frames] == [0, 20] and [f.shape for f in frames] == [(96, 160, 3)] * 2
    assert source.damage == f"{tmp_path}: skipped images under 2x2 pixels: b.png (1x1), d.png (5x1)"


@pytest.mark.parametrize(
    ("images", "message"),
    [
        ({"a.png": (1, 1)}, "skipped images under 2x2 pixels: a.png (1x1)"),
        (
            {"a.png": None, "b.png": (2, 1)},
            "skipped unreadable images: a.png; skipped images under 2x2 pixels: b.png (2x1)",
        ),
        ({"a.png": None}, "skipped unreadable images: a.png"),
    ],
)
def test_image_folder_without_a_usable_image_is_an_error(
    tmp_path: Path, images: dict[str, tuple[int, int] | None], message: str
) -> None:
    for name, size in images.items():
        if size is None:
            (tmp_path / name).write_bytes(b"not a png")
        else:
            cv2.imwrite(str(tmp_path / name), gradient(0, *size))
    with ImageFolderSource(tmp_path) as source, pytest.raises(SourceError) as error:
        source.read()
    assert str(error.value) == f"no usable images in folder {tmp_path}: {message}"


def test_empty_image_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no images"):
        ImageFolderSource(tmp_path).open()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("testsrc", (1280, 720, 30.0, None, False)),
        ("testsrc:320x240", (320, 240, 30.0, None, False)),
        ("testsrc:320x240@60", (320, 240, 60.0, None, False)),
        ("testsrc:@15,frames=7,live", (1280, 720, 15.0, 7, True)),
    ],
)
def test_testsrc_specs(spec: str, expected: tuple) -> None:
    source = TestSource.from_spec(spec)
    assert (source.width, source.height, source.fps, source.frames, source.live) == expected


def test_testsrc_is_finite_when_asked() -> None:
    frames = read_all(TestSource.from_spec("testsrc:64x48,frames=5"))
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)
    assert not np.array_equal(frames[0], frames[1])


def test_testsrc_bad_option() -> None:
    with pytest.raises(SourceError, match="unknown option"):
        TestSource.from_spec("testsrc:huge")


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("testsrc:64x48", TestSource),
        ("0", WebcamSource),
        ("webcam:2", WebcamSource),
        ("webcam", WebcamSource),
        ("/dev/video3", WebcamSource),
        ("clip.mp4", VideoFileSource),
    ],
)
def test_source_routing(uri: str, kind: type) -> None:
    assert type(make_source(SourceConfig(uri=uri))) is kind


@pytest.mark.parametrize(("uri", "device"), [("0", 0), ("webcam", 0), ("webcam:2", 2), ("/dev/video3", "/dev/video3")])
def test_webcam_devices(uri: str, device: int | str) -> None:
    assert make_source(SourceConfig(uri=uri)).device == device


def test_folder_source_routing(tmp_path: Path) -> None:
    assert isinstance(make_source(SourceConfig(uri=str(tmp_path), fps=5)), ImageFolderSource)


@pytest.mark.parametrize("uri", ["rtsp://127.0.0.1:8554/cam", "http://127.0.0.1:8080/video.mjpg"])
def test_network_source_routing_passes_options(uri: str) -> None:
    source = make_source(SourceConfig(uri=uri, transport="udp", read_timeout_s=1.5))
    assert type(source).__name__ == "NetworkSource" and source.live


def test_missing_webcam_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="cannot open webcam /dev/video63"):
        WebcamSource(63, open_timeout_s=0.5).open()


# --- sinks -------------------------------------------------------------------------------------


def test_h264_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    sink = VideoFileSink(path)
    sink.open(160, 96, 25.0)
    assert not path.exists()  # written under a temporary name until closed
    for index in range(12):
        sink.write(Frame(gradient(index)))
    sink.close()
    sink.close()  # twice is fine
    frames = decode(path)
    assert len(frames) == 12
    assert np.abs(frames[5].astype(int) - gradient(5)).mean() < 4
    with __import__("av").open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert stream.average_rate == 25
    assert not list(tmp_path.glob(".*partial*"))


def test_odd_frame_size_is_cropped_to_even(tmp_path: Path) -> None:
    sink = VideoFileSink(tmp_path / "odd.mkv")
    sink.open(161, 97, 30.0)
    sink.write(Frame(gradient(0, 161, 97)))
    sink.close()
    assert decode(tmp_path / "odd.mkv")[0].shape == (96, 160, 3)


@pytest.mark.parametrize("suffix", [".mov", ".mkv"])
def test_alpha_codecs_keep_transparency(tmp_path: Path, suffix: str) -> None:
    image = np.zeros((48, 64, 4), np.uint8)
    image[..., 2] = 200
    image[:, :32, 3] = 255
    sink = VideoFileSink(tmp_path / f"alpha{suffix}", alpha=True)
    sink.open(64, 48, 30.0)
    sink.write(Frame(image, BGRA))
    sink.close()
    (frame,) = decode(tmp_path / f"alpha{suffix}", "bgra")
    assert np.array_equal(frame, image)


def test_mp4_refuses_alpha(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match="cannot keep transparency"):
        VideoFileSink(tmp_path / "a.mp4", alpha=True)


def test_empty_run_leaves_no_file(tmp_path: Path) -> None:
    sink = VideoFileSink(tmp_path / "none.mp4")
    sink.open(64, 48, 30.0)
    sink.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("missing-folder/out.mp4", "does not exist"),
        ("/proc/out.mp4", "cannot write"),
    ],
)
def test_unwritable_video_path(tmp_path: Path, output: str, message: str) -> None:
    path = output if output.startswith("/") else tmp_path / output
    with pytest.raises(SinkError, match=message):
        VideoFileSink(path).open(64, 48, 30.0)


def test_png_folder_writes_rgba_frames(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    sink = PngFolderSink(folder)
    sink.open(64, 48, 30.0)
    image = np.zeros((48, 64, 4), np.uint8)
    image[..., 3] = 128
    sink.write(Frame(image, BGRA))
    sink.write(Frame(image, BGRA))
    sink.close()
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["frame_000000.png", "frame_000001.png"]
    read = cv2.imread(str(folder / names[0]), cv2.IMREAD_UNCHANGED)
    assert read.shape == (48, 64, 4) and (read[..., 3] == 128).all()


def test_png_folder_under_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(SinkError, match="cannot create output folder"):
        PngFolderSink(tmp_path / "file" / "frames").open(64, 48, 30.0)


def test_window_without_display_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(SinkError, match="needs a display"):
        WindowSink().open(64, 48, 30.0)


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("null", NullSink),
        ("out.mp4", VideoFileSink),
        ("out.MKV", VideoFileSink),
        ("frames/", PngFolderSink),
        ("out/frames", PngFolderSink),
        ("window", WindowSink),
        ("rec/%Y%m%d-%H%M%S.mp4", SegmentedFileSink),  # strftime fields: segmented recordings
        ("rec/%Y-%m-%d/%H%M%S.mkv", SegmentedFileSink),
        ("rec/out.mp4", VideoFileSink),
        ("rec/", PngFolderSink),  # a folder stays PNG frames
    ],
)
def test_sink_routing(spec: str, kind: type) -> None:
    assert type(make_sink(spec)) is kind


@pytest.mark.parametrize(
    ("spec", "module", "name"),
    [
        ("rtsp://127.0.0.1:8554/out", "backdrop.stream.sinks.rtsp", "RtspSink"),
        ("http://127.0.0.1:8080", "backdrop.stream.sinks.preview", "PreviewSink"),
        ("vcam", "backdrop.stream.sinks.vcam", "VirtualCameraSink"),
        ("vcam:/dev/video9", "backdrop.stream.sinks.vcam", "VirtualCameraSink"),
    ],
)
def test_network_sink_routing(spec: str, module: str, name: str) -> None:
    sink = make_sink(spec)  # a sink module gone fails here (ModuleNotFoundError), never a skip
    assert type(sink).__name__ == name and type(sink).__module__ == module


@pytest.mark.parametrize(
    ("spec", "alpha", "message"),
    [
        ("out.avi", False, "unknown output"),
        ("windw", False, "unknown output"),
        ("out.mp4", True, "cannot keep transparency"),
        ("window", True, "cannot carry transparency"),
        ("rtsp://127.0.0.1/x", True, "cannot carry transparency"),
    ],
)
def test_bad_sink_specs(spec: str, alpha: bool, message: str) -> None:
    with pytest.raises(SinkError, match=message):
        make_sink(spec, alpha=alpha)
