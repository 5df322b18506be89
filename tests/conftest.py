"""Shared fixtures: the real model, and small generated clips of a person (a public-domain photo)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clips import CLIP_FRAMES, CLIP_SIZE

from backdrop.model.segmenter import Segmenter
from backdrop.stream.sources.demo_clip import write_clip


@pytest.fixture(scope="session")
def segmenter() -> Iterator[Segmenter]:
    """The bundled general model on ONNX Runtime, loaded once."""
    from backdrop.model.segmenter import load_segmenter

    with load_segmenter("general", "onnxruntime", threads=1) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def stamped_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 640×360 H.264 clip of a person, each frame's index stamped on the chest as a binary code."""
    path = tmp_path_factory.mktemp("clips") / "stamped.mp4"
    width, height = CLIP_SIZE
    return write_clip(path, width=width, height=height, frames=CLIP_FRAMES, with_stamp=True)


@pytest.fixture(scope="session")
def mkv_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same person clip in Matroska (its header states the duration, so truncation is detectable)."""
    path = tmp_path_factory.mktemp("clips") / "clip.mkv"
    width, height = CLIP_SIZE
    return write_clip(path, width=width, height=height, frames=60, with_stamp=True)


class Unprivileged:
    """A folder, and calls made in it as a user that file modes bind: ``nobody`` where the tests run as root.

    Root writes anywhere (CAP_DAC_OVERRIDE) and CI runs as root, so a read-only folder proves nothing in-process
    there; the call drops to nobody in a forked child instead (a skip would hide the check exactly where it runs).
    Forked, not a new interpreter: nobody may not reach this one (a pyenv under /root, say), so the child has
    every module the parent imported, and one it imports later must be readable by nobody. Run as anyone else,
    calls run as that user.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        nobody = pwd.getpwnam("nobody")
        self.ids = (nobody.pw_uid, nobody.pw_gid) if os.geteuid() == 0 else None
        self.user = "nobody" if self.ids else pwd.getpwuid(os.geteuid()).pw_name

    def own(self, *paths: Path) -> None:
        """Give ``paths`` to the user, so that only their modes keep it from writing."""
        for path in paths:
            if self.ids:
                os.chown(path, *self.ids, follow_symlinks=False)

    def call(self, function: Callable[[], object], timeout: float = 60) -> tuple[int, str]:
        """``function()`` in a child process as the user, in the folder: its exit code and its stderr.

        The exit code is what the function returns (None: 0), its SystemExit's code, or 70 for an exception.
        """
        with tempfile.TemporaryFile() as stderr:
            pid = os.fork()
            if pid == 0:  # the child: never returns into pytest
                code = 70
                try:
                    sys.stderr = open(os.dup(stderr.fileno()), "w", encoding="utf-8")  # noqa: SIM115
                    os.chdir(self.folder)
                    if self.ids:
                        os.setgroups([])
                        os.setgid(self.ids[1])
                        os.setuid(self.ids[0])
                    result = function()
                    code = result if isinstance(result, int) else 0
                except SystemExit as exit_:
                    if exit_.code is None or isinstance(exit_.code, int):
                        code = exit_.code or 0
                    else:
                        print(exit_.code, file=sys.stderr)
                        code = 1
                except BaseException:
                    traceback.print_exc()
                finally:
                    sys.stderr.flush()
                    os._exit(code)
            deadline = time.monotonic() + timeout
            while (waited := os.waitpid(pid, os.WNOHANG))[0] == 0:
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    pytest.fail(f"the call as {self.user} took over {timeout} s")
                time.sleep(0.01)
            stderr.seek(0)
            return os.waitstatus_to_exitcode(waited[1]), stderr.read().decode()


@pytest.fixture
def unprivileged() -> Iterator[Unprivileged]:
    """An :class:`Unprivileged` folder of its own, outside tmp_path (whose parents only the test's user may enter)."""
    folder = Path(tempfile.mkdtemp(prefix="backdrop-unprivileged-"))
    try:
        folder.chmod(0o755)
        runner = Unprivileged(folder)
        runner.own(folder)
        yield runner
    finally:
        for place, _, _ in os.walk(folder):  # modes a test left read-only (rmtree needs to write the folders)
            Path(place).chmod(0o755)
        shutil.rmtree(folder)


@pytest.fixture
def chromium() -> str:
    """Debian's chromium, which `make test` installs (make system-deps): a failure without it, never a skip."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium missing: run `make system-deps` (`make test` does)")
    return path
