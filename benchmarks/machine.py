"""What a benchmark ran on: CPU, cores, memory, GPU, OS, and the versions of every package that sets the speed.

Recorded with every result, so two JSON files from two machines or two versions can be told apart.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

# Distributions whose versions change the numbers (runtimes, codecs, array libraries).
PACKAGES = (
    "backdrop-video",
    "numpy",
    "opencv-python-headless",
    "opencv-python",
    "av",
    "onnxruntime",
    "onnxruntime-gpu",
    "ai-edge-litert",
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "tensorrt",
    "cuda-python",
    "matplotlib",
)
REPO_ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    """Total RAM in GiB (Linux), or None where /proc/meminfo does not exist."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def usable_cores() -> int:
    """Cores this process may run on (a container or taskset may allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def gpus() -> list[dict[str, str]]:
    """NVIDIA GPUs as nvidia-smi reports them; empty when there is no driver."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    rows = [[part.strip() for part in line.split(",")] for line in out.splitlines() if line.strip()]
    return [{"name": r[0], "driver": r[1], "memory": r[2]} for r in rows if len(r) == 3]


def package_versions() -> dict[str, str]:
    """Installed versions of PACKAGES; the ones not installed are left out."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_commit() -> str | None:
    """The source checkout's commit (with ``+dirty`` for local changes), or None outside a git checkout."""
    if not (REPO_ROOT / ".git").exists() or shutil.which("git") is None:
        return None
    try:

        def git(*args: str) -> str:
            return subprocess.run(
                ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()

        commit = git("rev-parse", "--short", "HEAD")
        return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def load_average() -> list[float] | None:
    """1/5/15-minute load averages: other work on the machine skews timings, so it is recorded."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def onnxruntime_providers() -> list[str]:
    """Execution providers of the installed onnxruntime build (CUDA/TensorRT ones only in GPU builds)."""
    try:
        import onnxruntime
    except ImportError:
        return []
    return list(onnxruntime.get_available_providers())


def describe_machine() -> dict[str, Any]:
    """Everything above as one JSON-ready mapping."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "memory_gib": memory_gib(),
        "gpus": gpus(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "onnxruntime_providers": onnxruntime_providers(),
        "commit": git_commit(),
        "load_average": load_average(),
    }


def describe_short(machine: dict[str, Any]) -> str:
    """One line for table captions: CPU, cores, GPU."""
    gpu = ", ".join(g["name"] for g in machine.get("gpus", [])) or "no GPU"
    return f"{machine['cpu']}, {machine['usable_cores']} cores, {machine['memory_gib']} GiB, {gpu}"
