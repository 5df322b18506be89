"""Live controls: the state every front end changes, and the background that obeys it on every frame."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
from clips import error_lines, run_cli

from backdrop.api import frames
from backdrop.errors import ConfigError, SinkError
from backdrop.pixels import BGR, I420, bgr_to_i420, i420_planes
from backdrop.stream.compositing.blend import Matte
from backdrop.stream.compositing.live import LiveBackground
from backdrop.stream.config.run import parse_config
from backdrop.stream.core.live_controls import SNAPSHOT_BACKLOG, LiveControls, SnapshotWriter, draw_hint

W, H = 64, 48
GREEN, BLUE = (0, 255, 0), (255, 0, 0)


def picture() -> np.ndarray:
    """A frame with detail (so a blur changes it), different from every background colour used here."""
    yy, xx = np.mgrid[0:H, 0:W]
    image = np.zeros((H, W, 3), np.uint8)
    image[..., 2] = np.where((xx // 4 + yy // 4) % 2 == 0, 255, 0)
    return image


def background_only() -> Matte:
    return Matte(np.zeros((H, W), np.float32), (W, H))


def opened(controls: LiveControls, layout: str = BGR) -> LiveBackground:
    background = LiveBackground(controls)
    background.open(W, H, layout)
    return background


def test_cycles_backgrounds_both_ways_and_logs_each_change(caplog: pytest.LogCaptureFixture) -> None:
    controls = LiveControls(["color:#00ff00", "color:#0000ff", "blur:11"])
    with caplog.at_level(logging.INFO, logger="backdrop.stream.core.live_controls"):
        assert controls.act("next-background") == "background 2/3: color:#0000ff"
        assert controls.act("previous-background") == "background 1/3: color:#00ff00"
        assert controls.act("previous-background") == "background 3/3: blur:11"  # wraps around
    assert [record.getMessage() for record in caplog.records] == [
        "background 2/3: color:#0000ff",
        "background 1/3: color:#00ff00",
        "background 3/3: blur:11",
    ]
    assert controls.state().index == 2


def test_blur_steps_stay_within_the_blur_range_and_only_apply_to_blurs() -> None:
    controls = LiveControls(["blur:21", "color:#00ff00"], blur_step=100)
    assert [controls.act("blur-up") for _ in range(3)] == ["blur 121", "blur 221", "blur 255"]
    assert [controls.act("blur-down") for _ in range(3)] == ["blur 155", "blur 55", "blur 1"]
    controls.act("next-background")
    assert controls.act("blur-up") == "blur: background color:#00ff00 is not a blur"
    assert controls.state().blur is None


def test_toggles_and_unknown_actions() -> None:
    controls = LiveControls(["blur"])
    assert controls.act("mask-view") == "mask view on"
    assert controls.act("pass-through") == "replacement off (pass-through)"
    state = controls.state()
    assert state.mask_view and state.pass_through and state.blur == 21
    with pytest.raises(ConfigError, match="unknown control 'explode'"):
        controls.act("explode")


def test_the_hint_lasts_a_moment() -> None:
    controls = LiveControls(["blur"])
    assert controls.hint() is None
    controls.act("mask-view")
    assert controls.hint() == "mask view on"
    assert controls.hint(now=10**9) is None  # HINT_S later it is gone


def test_draw_hint_writes_only_into_its_box_at_the_bottom_left() -> None:
    image = np.full((120, 160, 3), 200, np.uint8)
    drawn = draw_hint(image, "blur 31")
    changed = np.argwhere(np.any(drawn != image, axis=2))
    assert len(changed) > 100
    assert changed[:, 0].min() > 60 and changed[:, 1].min() < 20  # lower half, from the left edge
    assert (image == 200).all()  # a copy: the frame the other outputs get is untouched
    assert draw_hint(image, None) is image


def test_live_background_follows_the_controls_on_every_frame() -> None:
    controls = LiveControls(["color:#00ff00", "color:#0000ff"])
    background = opened(controls)
    image = picture()
    assert (background.compose(image, background_only()) == GREEN).all()
    controls.act("next-background")
    assert (background.compose(image, background_only()) == BLUE).all()
    controls.act("pass-through")
    assert np.array_equal(background.compose(image, background_only()), image)
    controls.act("pass-through")
    controls.act("mask-view")
    person = Matte(np.ones((H, W), np.float32), (W, H))
    assert (background.compose(image, background_only()) == 0).all()
    assert (background.compose(image, person) == 255).all()


def test_a_live_blur_size_changes_the_picture() -> None:
    controls = LiveControls(["blur:3"], blur_step=40)
    background = opened(controls)
    light = background.compose(picture(), background_only())
    controls.act("blur-up")
    heavy = background.compose(picture(), background_only())
    assert heavy[..., 2].std() < 0.5 * light[..., 2].std()  # a wider blur flattens the checkerboard further


def test_mask_view_in_i420() -> None:
    controls = LiveControls(["color:#00ff00"])
    background = opened(controls, I420)
    controls.act("mask-view")
    out = background.compose(bgr_to_i420(picture()), Matte(np.ones((H, W), np.float32), (W, H)))
    luma, u, v = i420_planes(out)
    assert (luma == 255).all() and (u == 128).all() and (v == 128).all()


def test_snapshots_are_the_output_and_never_overwrite(tmp_path: Path) -> None:
    controls = LiveControls(["color:#0000ff"], snapshot_dir=tmp_path / "snaps")
    background = opened(controls)
    controls.act("snapshot")
    background.compose(picture(), background_only())
    background.compose(picture(), background_only())  # one request, one snapshot
    controls.act("snapshot")
    background.compose(picture(), background_only())
    background.close()  # waits for the writer thread
    names = sorted(p.name for p in (tmp_path / "snaps").iterdir())
    assert len(names) == 2 and all(n.startswith("snapshot-") and n.endswith(("-1.png", "-2.png")) for n in names)
    assert (cv2.imread(str(tmp_path / "snaps" / names[0])) == BLUE).all()
    taken = tmp_path / "snaps" / names[1].replace("-2.png", "-3.png")
    taken.write_bytes(b"someone else's file")
    background = opened(controls)  # the next run with the same controls
    controls.act("snapshot")
    background.compose(picture(), background_only())
    background.close()
    assert taken.read_bytes() == b"someone else's file"
    assert len(list((tmp_path / "snaps").glob("snapshot-*-4.png"))) == 1
    assert not list((tmp_path / "snaps").glob(".*"))  # no partial file left behind


@dataclass
class HeldDisk:
    """Every snapshot's PNG encoding waits until ``released`` is set: a slow disk, or a hung one."""

    entered: threading.Event = field(default_factory=threading.Event)  # a write has started
    released: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldDisk]:
    held = HeldDisk()
    encode = cv2.imencode

    def held_encode(ext: str, image: np.ndarray) -> tuple[bool, np.ndarray]:
        held.entered.set()
        held.released.wait(5)
        return encode(ext, image)

    monkeypatch.setattr(cv2, "imencode", held_encode)
    yield held
    held.released.set()  # never leave a writer thread waiting


def test_compose_only_copies_a_snapshot_and_a_writer_thread_saves_it(tmp_path: Path, disk: HeldDisk) -> None:
    controls = LiveControls(["color:#0000ff"], snapshot_dir=tmp_path)
    background = opened(controls)
    threads = set(threading.enumerate())
    background.compose(picture(), background_only())
    assert set(threading.enumerate()) == threads  # no snapshot yet: no writer thread
    controls.act("pass-through")
    controls.act("snapshot")
    image = picture()
    started = time.monotonic()
    assert background.compose(image, background_only()) is image
    assert time.monotonic() - started < 20  # the write is held up forever, compose is not (a failure bound)
    image[:] = 0  # the pipeline reuses the frame's buffer
    assert disk.entered.wait(5) and not list(tmp_path.glob("snapshot-*.png"))
    disk.released.set()
    background.close()
    (snapshot,) = tmp_path.glob("snapshot-*.png")
    assert np.array_equal(cv2.imread(str(snapshot)), picture())


def test_snapshots_the_disk_cannot_keep_up_with_are_dropped(
    tmp_path: Path, disk: HeldDisk, caplog: pytest.LogCaptureFixture
) -> None:
    controls = LiveControls(["color:#0000ff"], snapshot_dir=tmp_path)
    background = opened(controls)
    with caplog.at_level(logging.WARNING, logger="backdrop.stream.core.live_controls"):
        controls.act("snapshot")
        background.compose(picture(), background_only())
        assert disk.entered.wait(5)
        for _ in range(SNAPSHOT_BACKLOG + 2):
            controls.act("snapshot")
            background.compose(picture(), background_only())
    assert [record.getMessage() for record in caplog.records] == 2 * [
        f"snapshot dropped: {SNAPSHOT_BACKLOG + 1} earlier ones are still being written"
    ]
    disk.released.set()
    background.close()
    assert len(list(tmp_path.glob("snapshot-*.png"))) == SNAPSHOT_BACKLOG + 1


def test_closing_does_not_wait_for_a_hung_disk(
    tmp_path: Path, disk: HeldDisk, caplog: pytest.LogCaptureFixture
) -> None:
    writer = SnapshotWriter(LiveControls(["blur"], snapshot_dir=tmp_path).save_snapshot, close_s=0.2)
    writer.submit(picture(), BGR)
    assert disk.entered.wait(5)
    for _ in range(SNAPSHOT_BACKLOG):  # and more waiting: close does not wait for them either
        writer.submit(picture(), BGR)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="backdrop.stream.core.live_controls"):
        writer.close()
    assert time.monotonic() - started < 10  # the disk never answers: close gives up (a failure bound)
    assert [record.getMessage() for record in caplog.records] == [
        "snapshots still being written after 0.2 s are left unfinished"
    ]


def test_a_failed_snapshot_write_still_ends_the_run(tmp_path: Path) -> None:
    (tmp_path / "snaps").write_text("a file where the snapshot folder should be")
    controls = LiveControls(["color:#0000ff"], snapshot_dir=tmp_path / "snaps")
    background = opened(controls)
    controls.act("snapshot")
    background.compose(picture(), background_only())
    with pytest.raises(SinkError, match=re.escape(f"cannot save a snapshot in {tmp_path / 'snaps'}: ")):
        background.close()
    with pytest.raises(SinkError, match="cannot save a snapshot"):  # and on the compose thread, the run's next frame
        background.compose(picture(), background_only())


@pytest.mark.parametrize(
    ("controls", "error"),
    [
        ({"blur_step": 3}, "controls.blur_step: must be even"),
        ({"blur_step": 0}, r"controls.blur_step: must be in \[2, 128\]"),
        ({"backgrounds": ["blur", "transparent"]}, r"controls.backgrounds\[1\]: transparent cannot be switched"),
        ({"snapshot_dir": ""}, "controls.snapshot_dir: must not be empty"),
        ({"hotkeys": {}}, "unknown key 'controls.hotkeys'"),
        ({"backgrounds": "color:#0000ff", "blur_step": 20, "snapshot_dir": "shots"}, None),
    ],
)
def test_controls_config(controls: dict, error: str | None) -> None:
    if error is None:
        assert parse_config({"controls": controls}).controls.backgrounds == ("color:#0000ff",)
    else:
        with pytest.raises(ConfigError, match=error):
            parse_config({"controls": controls})


def test_a_transparent_run_cannot_switch_backgrounds() -> None:
    config = parse_config({"background": "transparent", "controls": {"backgrounds": ["blur"]}})
    with pytest.raises(ConfigError, match="cannot switch away from a transparent background"):
        LiveControls.from_config(config)


def test_a_bad_background_to_switch_to_fails_before_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(f"controls: {{backgrounds: [{tmp_path / 'missing.jpg'}]}}\n")
    code, stderr = run_cli(capsys, "run", "--config", config, "--source", "testsrc:64x48,frames=3", "--output", "null")
    assert code == 2
    assert error_lines(stderr) == [f"backdrop: error: background file not found: {tmp_path / 'missing.jpg'}"]


def test_the_python_api_takes_the_same_controls() -> None:
    config = parse_config(
        {
            "source": {"uri": "testsrc:64x48,frames=30"},
            "background": "color:#00ff00",
            "outputs": ["null"],
            "controls": {"backgrounds": ["color:#0000ff"]},
        }
    )
    controls = LiveControls.from_config(config)
    colours = []
    for frame in frames(config, controls=controls):
        colours.append(tuple(int(v) for v in np.median(frame.image.reshape(-1, 3), axis=0)))
        if len(colours) == 5:
            controls.act("next-background")
    assert colours[0] == GREEN and colours[-1] == BLUE and len(colours) == 30
