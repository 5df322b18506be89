"""A plain (non-editable) install works: one import name, bundled data inside, the console script runs.

The editable install of the development venv maps folders onto ``backdrop.*`` with a finder that hides
packaging mistakes (a subpackage or data file missing from pyproject.toml still imports from the checkout).
So this builds a wheel from a copy of the source tree, installs it into a fresh venv and runs it from an
empty folder. The fresh venv borrows the heavy dependencies through a ``.pth`` line naming the development
venv's site-packages: a path line is added to sys.path, but the ``.pth`` files there (the editable finder)
are not processed, so ``backdrop`` can only come from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import av
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
# what a fresh clone does not have: the development venv, caches, earlier build output
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".cache",
    "build",
    "dist",
    "out",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "site",
)
STRAY_TOP_LEVEL = ("stream", "model", "benchmarks", "configs", "tests")


class Venv:
    """A fresh venv with the wheel installed; runs its commands from an empty folder with a clean environment."""

    def __init__(self, root: Path, cwd: Path) -> None:
        self.root, self.cwd = root, cwd
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}

    @property
    def site_packages(self) -> Path:
        return Path(self.python("-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())

    def run(self, program: str, *args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [str(self.root / "bin" / program), *map(str, args)]
        return subprocess.run(command, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=timeout)

    def python(self, *args: object) -> subprocess.CompletedProcess[str]:
        result = self.run("python", *args)
        assert result.returncode == 0, result.stderr
        return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source") / "backdrop"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", out, source],
        check=True,
        capture_output=True,
        timeout=180,
    )
    (built,) = out.glob("backdrop_video-*.whl")  # the distribution is backdrop-video; the import name backdrop
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", root], check=True, capture_output=True, timeout=120)
    installed = Venv(root, tmp_path_factory.mktemp("empty"))
    (installed.site_packages / "dev-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    result = installed.run("pip", "install", "-q", "--no-deps", "--no-index", wheel)
    assert result.returncode == 0, result.stderr
    return installed


def test_the_wheel_holds_one_import_name(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (top_level,) = [name for name in names if name.endswith(".dist-info/top_level.txt")]
        assert archive.read(top_level).decode().split() == ["backdrop"]
    assert {name.split("/")[0] for name in names if ".dist-info/" not in name} == {"backdrop"}
    for data in ("backdrop/configs/default.yaml", "backdrop/assets/astronaut.jpg", "backdrop/model/weights/"):
        assert any(name.startswith(data) for name in names), data


def test_the_install_adds_only_backdrop(venv: Venv) -> None:
    site = venv.site_packages
    assert (site / "backdrop" / "stream" / "core" / "pipeline.py").is_file()
    assert not [name for name in STRAY_TOP_LEVEL if (site / name).exists()]
    found = venv.python(
        "-c", "import backdrop, backdrop.stream.core.pipeline as p; print(backdrop.__file__, p.__file__)"
    )
    assert all(Path(path).is_relative_to(site) for path in found.stdout.split())


def test_the_console_script_runs_from_an_empty_folder(venv: Venv) -> None:
    version = venv.run("backdrop", "--version")
    assert version.returncode == 0 and version.stdout.startswith("backdrop 0."), version.stderr
    # the demo clip is made from the packaged photo, and the run reads the packaged weights
    venv.python("-m", "backdrop.stream.sources.demo_clip", "clip.mp4", "--size", "320x180", "--frames", "10")
    result = venv.run("backdrop", "run", "--source", "clip.mp4", "--output", "o.mp4", "--runtime", "onnxruntime",
                      "--no-progress")  # fmt: skip
    assert result.returncode == 0, result.stderr
    with av.open(str(venv.cwd / "o.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 10


def test_bench_runs(venv: Venv) -> None:
    result = venv.run("backdrop", "bench", "--quick", "--runtime", "onnxruntime", "--json", "b.json", "--no-progress",
                      timeout=240)  # fmt: skip
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert json.loads((venv.cwd / "b.json").read_text())


def test_bundled_configs_load_by_package(venv: Venv) -> None:
    code = (
        "from importlib import resources; from backdrop.stream.config.run import load_config; "
        "print(sorted(p.name for p in resources.files('backdrop.configs').iterdir())); "
        "print(load_config('file').background)"
    )
    listing, background = venv.python("-c", code).stdout.splitlines()
    assert "'default.yaml'" in listing and "'file.yaml'" in listing
    assert background.startswith("color:")
