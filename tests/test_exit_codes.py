"""Exit codes of the real ``backdrop`` console script: a bug is exit 1 with its traceback, bad input exit 2 in one line.

backdrop/cli.py turns every BackdropError into one ``backdrop: error:`` line and exit 2, and lets anything else
through to Python, which prints the traceback and exits 1: a user (or a script's ``&&``) can tell a mistake of
theirs from a bug of ours. The bug is injected by a ``sitecustomize`` module on PYTHONPATH, which Python imports
at start-up, so the program that runs is the installed console script, unchanged, with one step that raises.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BACKDROP = Path(sys.executable).with_name("backdrop")  # the console script pip installed beside this Python
RUN = ("--output", "null", "--max-frames", "3", "--runtime", "onnxruntime", "--no-progress")

# Compositing a frame raises, as a bug in the blend would: on the compositor's thread, mid-run.
INJECTED_BUG = """
from backdrop.stream.core import steps

def broken(self, frame, mask):
    raise RuntimeError("injected bug in the compositor")

steps.Compositor.__call__ = broken
"""


def backdrop(*args: object, sitecustomize: str | None = None, folder: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if sitecustomize is not None:
        (folder / "sitecustomize.py").write_text(textwrap.dedent(sitecustomize))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), env.get("PYTHONPATH")]))
    return subprocess.run(
        [str(BACKDROP), *map(str, args)], capture_output=True, text=True, timeout=120, env=env, cwd=folder
    )


@pytest.fixture(scope="module", autouse=True)
def console_script() -> None:
    if not BACKDROP.is_file():
        pytest.fail(f"the backdrop console script is not installed at {BACKDROP}: pip install -e .")


def test_an_unexpected_exception_exits_1_with_its_traceback(tmp_path: Path, stamped_clip: Path) -> None:
    result = backdrop("run", "--source", stamped_clip, *RUN, sitecustomize=INJECTED_BUG, folder=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    assert "RuntimeError: injected bug in the compositor" in result.stderr
    assert "in broken" in result.stderr  # the traceback reaches down to the frame that raised
    assert "backdrop: error:" not in result.stderr  # not dressed up as the user's mistake


def test_bad_input_exits_2_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    result = backdrop("run", "--source", tmp_path / "missing.mp4", *RUN, folder=tmp_path)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("backdrop: error:")]
    assert len(errors) == 1 and "missing.mp4" in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_the_same_run_without_the_bug_exits_0(tmp_path: Path, stamped_clip: Path) -> None:
    # The control: the injection above, not the run's flags, is what made it exit 1.
    result = backdrop("run", "--source", stamped_clip, *RUN, folder=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
