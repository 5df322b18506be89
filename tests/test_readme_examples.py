"""The README's shell examples run as written, from an empty folder, with ``backdrop`` and ``python`` the venv's.

Every ```` ```sh ```` block of README.md is split into commands (a line ending in ``\\`` continues the next; a
``# …`` comment is dropped). The rule for which commands run: a command runs unless it contains one of SKIP,
i.e. unless it needs something a test machine does not have or must not do. A command is skipped when a word
of it contains ``vcam``, ``/dev/video`` or ``webcam`` (a camera or virtual camera), ``window`` (a display),
``rtsp://``, ``http://`` or ``gst_rtsp_relay`` (a network peer or server); when its program is ``sudo``,
``docker``, ``curl``, ``pip``, ``pipx``, ``git``, ``make`` or ``source`` (root, a server, an install or a clone,
the shell's state); or when it is ``backdrop serve`` (runs until stopped) or ``backdrop bench`` (minutes of
measuring; it has tests of its own). Commands that run do so in order in one temporary folder and must exit 0, and every
output they name (after ``--output``/``--stats-json``, or the clip demo_clip writes) must exist afterwards.
``office.jpg``, the reader's own picture in the examples, is provided: a generated one.

A skipped ``backdrop …`` command is still parsed by ``backdrop.cli.build_parser()``: a flag the CLI does not
have fails here, as does a ``--set`` that is not KEY=VALUE.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from backdrop.benchmarks.readme_picture import scenery
from backdrop.benchmarks.report import readme_span
from backdrop.cli import build_parser
from backdrop.stream.config.typed_yaml import parse_assignment

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
VENV_BIN = Path(sys.executable).parent  # where the venv's backdrop and python are
SKIP_WORDS = ("vcam", "/dev/video", "webcam", "window", "rtsp://", "http://", "gst_rtsp_relay")
SKIP_PROGRAMS = {"sudo", "docker", "curl", "pip", "pipx", "git", "make", "source"}
SKIP_SUBCOMMANDS = {"serve", "bench"}
NOT_FILES = {"null", "window"}
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def readme_commands() -> list[str]:
    """Every command of the README's sh blocks, continuation lines joined, comments and blank lines left out."""
    commands = []
    for block in BLOCK.findall(README.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    return commands


def skipped(command: str) -> bool:
    """The rule of the module docstring."""
    words = shlex.split(command)
    return (
        any(part in word for word in words for part in SKIP_WORDS)
        or words[0] in SKIP_PROGRAMS
        or (words[0] == "backdrop" and len(words) > 1 and words[1] in SKIP_SUBCOMMANDS)
    )


COMMANDS = readme_commands()
RUNNABLE = [c for c in COMMANDS if not skipped(c)]
SKIPPED_BACKDROP = [c for c in COMMANDS if c not in RUNNABLE and c.startswith("backdrop ")]


def outputs_named(command: str) -> list[str]:
    words = shlex.split(command)
    named = [after for flag, after in itertools.pairwise(words) if flag in ("--output", "--stats-json")]
    if words[:3] == ["python", "-m", "backdrop.stream.sources.demo_clip"]:
        named.append(words[3])
    return [name for name in named if name not in NOT_FILES]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("readme")
    cv2.imwrite(str(folder / "office.jpg"), scenery(1280, 720))
    return folder


def test_the_readme_is_a_front_page() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    picture = REPO / "docs" / "images" / "before_after.jpg"
    assert "docs/images/before_after.jpg" in text and picture.stat().st_size < 150_000
    assert "'backdrop[" not in text  # the distribution is backdrop-video: `backdrop` on PyPI is another project
    assert len(RUNNABLE) >= 4 and SKIPPED_BACKDROP


@pytest.mark.parametrize("command", RUNNABLE)
def test_readme_command_runs(command: str, workdir: Path) -> None:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        ["bash", "-c", command], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )  # fmt: skip
    assert result.returncode == 0, f"{command}\n{result.stderr[-2000:]}"
    for name in outputs_named(command):
        assert (workdir / name).exists(), f"{command} did not write {name}"


@pytest.mark.parametrize("command", SKIPPED_BACKDROP)
def test_skipped_readme_command_parses(command: str) -> None:
    args = build_parser().parse_args(shlex.split(command)[1:])  # argparse exits 2 on a flag it does not know
    for assignment in getattr(args, "set", None) or ():
        parse_assignment(assignment)


def test_make_bench_writes_its_tables_into_the_performance_page() -> None:
    page = REPO / "docs" / "performance.md"
    start, end = readme_span(page.read_text(encoding="utf-8"), str(page))  # ConfigError if the markers are gone
    assert "--readme docs/performance.md" in (REPO / "Makefile").read_text() and start < end
