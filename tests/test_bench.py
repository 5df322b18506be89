"""`backdrop bench` as a user runs it: the quick suite's JSON, table and plots; --compare; one-line errors."""

from __future__ import annotations

import copy
import itertools
import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from clips import run_cli
from rtsp_fixtures import Publisher, Relay, publisher, relay  # noqa: F401
from test_resampling import mediapipe_python

from backdrop.benchmarks import report
from backdrop.benchmarks.end_to_end import MODES
from backdrop.benchmarks.model_speed import BATCHES, THREADS, VARIANTS
from backdrop.benchmarks.stage_costs import BACKGROUNDS, pipeline_stages
from backdrop.model.segmenter import available_runtimes

STAGES = {
    "decode",
    "preprocess",
    "inference",
    "matte (refine none)",
    "flow + warp",
    "matte (edge + motion)",
    "encode",
} | {f"composite {mode}" for mode in BACKGROUNDS}


README = "# Title\n\n## Performance\n\n<!-- bench:start -->\nold table\n<!-- bench:end -->\n\n![plot](fps.png)\n"


def backdrop(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backdrop.cli", *map(str, args)], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """One `backdrop bench --quick` run writing every artefact, shared by the tests that read them."""
    out = tmp_path_factory.mktemp("bench")
    (out / "README.md").write_text(README)
    return out, backdrop("bench", "--quick", "--out", out, "--json", out / "copy.json", "--readme", out / "README.md")


def assert_consistent(data: dict) -> None:
    """The ratios are what the medians say, and each section's baseline has ratio 1."""
    model = data["model"]
    base = {
        (r["variant"], r["batch"], r["threads"]): r["ms_per_frame"]["median"]
        for r in model["rows"]
        if r["runtime"] == model["baseline"]
    }
    for row in model["rows"]:
        expected = base[row["variant"], row["batch"], row["threads"]] / row["ms_per_frame"]["median"]
        assert row["ratio"] == pytest.approx(expected, rel=1e-2, abs=1e-3)
    inference = {r["resolution"]: r["ms"]["median"] for r in data["stages"]["rows"] if r["stage"] == "inference"}
    for row in data["stages"]["rows"]:
        assert row["ratio"] == pytest.approx(row["ms"]["median"] / inference[row["resolution"]], rel=1e-2, abs=1e-3)
    loops = {
        (r["resolution"], r["runtime"]): r["fps"]["median"]
        for r in data["pipeline"]["rows"]
        if r["mode"] == "sequential"
    }
    for row in data["pipeline"]["rows"]:
        assert row["ratio"] == pytest.approx(
            row["fps"]["median"] / loops[row["resolution"], row["runtime"]], rel=1e-2, abs=1e-3
        )
    # the pipeline's CPU against its stages': the sum is of the stage rows' own CPU figures
    against = data["pipeline"]["against_stages"]
    assert against["rows"] and against["stages"] == list(pipeline_stages(data["pipeline"]["settings"]["background"]))
    stage_cpu = {(r["resolution"], r["stage"]): r["cpu_ms"] for r in data["stages"]["rows"]}
    for row in against["rows"]:
        assert row["runtime"] == data["stages"]["runtime"]
        assert row["stages_cpu_ms"] == {name: stage_cpu[row["resolution"], name] for name in against["stages"]}
        assert row["sum_cpu_ms"] == pytest.approx(sum(row["stages_cpu_ms"].values()), abs=0.01)
        assert row["ratio"] == pytest.approx(row["pipeline_cpu_ms"] / row["sum_cpu_ms"], rel=1e-2) and row["ratio"] > 0


@pytest.mark.slow
def test_quick_bench_writes_a_valid_result_table_and_plots(quick_run: tuple[Path, subprocess.CompletedProcess]):
    out, result = quick_run
    assert result.returncode == 0, result.stderr
    data = report.load(out / "bench.json")  # raises unless it follows the documented schema
    assert json.loads((out / "copy.json").read_text()) == data
    assert data["quick"] is True
    assert data["machine"]["cpu"] and data["machine"]["usable_cores"] >= 1 and data["machine"]["packages"]["numpy"]

    # every registered runtime is listed: unusable ones with the reason, usable ones measured or skipped with why
    for name, reason in available_runtimes().items():
        entry = data["runtimes"][name]
        if reason:
            assert entry == {"status": "unavailable", "reason": reason}
        else:
            assert entry["status"] == "measured" or (entry["status"] == "skipped" and entry["reason"])
    measured = [name for name, entry in data["runtimes"].items() if entry["status"] == "measured"]
    assert "onnxruntime" in measured

    cells = {(r["runtime"], r["variant"], r["batch"], r["threads"]) for r in data["model"]["rows"]}
    assert cells == set(itertools.product(measured, VARIANTS, BATCHES, THREADS))
    assert {r["stage"] for r in data["stages"]["rows"]} == STAGES
    assert {r["resolution"] for r in data["stages"]["rows"]} == {"480p"}
    pipeline = {(r["runtime"], r["mode"]) for r in data["pipeline"]["rows"]}
    assert {mode for _, mode in pipeline} == set(MODES)
    assert {runtime for runtime, _ in pipeline} <= set(measured)
    assert all(r["frames"] == 45 and r["size"] == "854x480" for r in data["pipeline"]["rows"])
    cpu = [r["cpu_ms_per_frame"] for r in data["model"]["rows"] + data["pipeline"]["rows"]]
    assert all(value > 0 for value in cpu + [r["cpu_ms"] for r in data["stages"]["rows"]])
    assert_consistent(data)

    # stdout is the Markdown table, also saved; it names every measured runtime and every stage
    table = (out / "bench.md").read_text()
    assert result.stdout.strip() == table.strip()
    for heading in (
        "### Runtimes",
        "### Model only",
        "### Per-stage cost",
        "### End to end",
        "### Pipeline CPU against its stages",
    ):
        assert heading in table
    assert "peer" not in data and "MediaPipe" not in table  # only with --against
    for name in [*measured, *STAGES]:
        assert f"| {name} |" in table
    # the README got the same tables between its markers; the rest of it is unchanged
    readme = (out / "README.md").read_text()
    head, _, rest = readme.partition("<!-- bench:start -->")
    inside, _, tail = rest.partition("<!-- bench:end -->")
    assert head + tail == README.replace("<!-- bench:start -->\nold table\n<!-- bench:end -->", "")
    assert "old table" not in inside and "#### Model only" in inside and "| inference |" in inside
    # the progress bar counted every step to the end
    steps = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert steps and steps[-1].split()[1].split("/")[0] == steps[-1].split()[1].split("/")[1]

    for plot in ("fps.png", "stages.png"):
        image = cv2.imread(str(out / plot))
        assert image is not None and image.shape[0] > 200 and image.shape[1] > 400
        assert image.std() > 10  # something is drawn
        assert (out / plot).stat().st_size < 100_000  # small enough for the README


@pytest.mark.slow
def test_compare_shows_speed_and_version_changes(quick_run: tuple[Path, subprocess.CompletedProcess], tmp_path):
    out, result = quick_run
    assert result.returncode == 0, result.stderr
    before = json.loads((out / "bench.json").read_text())
    after = copy.deepcopy(before)
    faster = next(r for r in after["pipeline"]["rows"] if r["mode"] == "pipeline")
    for key in ("median", "min", "max"):
        faster["fps"][key] *= 2
    after["machine"]["packages"]["onnxruntime"] = "99.0"
    dropped = after["stages"]["rows"].pop(0)
    (tmp_path / "A.json").write_text(json.dumps(before))
    (tmp_path / "B.json").write_text(json.dumps(after))

    compared = backdrop("bench", "--compare", tmp_path / "A.json", tmp_path / "B.json")
    assert compared.returncode == 0, compared.stderr
    lines = compared.stdout.splitlines()
    key = f"| {faster['resolution']} {faster['runtime']} pipeline |"
    assert "2.00×" in next(line for line in lines if line.startswith(key))
    unchanged = [line for line in lines if " sequential |" in line]
    assert unchanged and all("| 1.00× |" in line for line in unchanged)
    assert any(line.startswith("| onnxruntime |") and "99.0" in line for line in lines)
    assert any(
        line.startswith(f"| {dropped['resolution']} {dropped['stage']} |") and "only in A.json" in line
        for line in lines
    )


@pytest.mark.slow
@pytest.mark.rtsp
def test_live_source_is_recorded_for_the_given_seconds(relay: Relay, publisher: Publisher, tmp_path):  # noqa: F811
    url = relay.play_url("cam")
    result = backdrop(
        "bench",
        "--quick",
        "--runtime",
        "onnxruntime",
        "--source",
        url,
        "--duration",
        "2",
        "--json",
        tmp_path / "r.json",
    )
    assert result.returncode == 0, result.stderr
    rows = report.load(tmp_path / "r.json")["pipeline"]["rows"]
    assert {r["mode"] for r in rows} == set(MODES)
    assert all(r["size"] == "320x240" and r["input"] == f"{url} (recorded)" for r in rows)
    assert all(30 <= r["frames"] <= 70 for r in rows)  # about 2 s of a 30 fps stream


@pytest.mark.parametrize(
    "args, message",
    [
        (("--runtime", "nosuch"), "unknown runtime 'nosuch'"),
        (("--resolution", "12p"), "resolution '12p'"),
        (("--frames", "0"), "--frames must be at least 1"),
        (("--source", "{tmp}/none.mp4"), "input not found"),
        (("--source", "rtsp://127.0.0.1:9/cam"), "is live: give --duration"),
        (("--json", "{tmp}/no/such/dir/r.json"), "folder {tmp}/no/such/dir does not exist"),
        (("--compare", "{tmp}/missing.json", "{tmp}/missing.json"), "cannot read {tmp}/missing.json"),
        (("--compare", "{tmp}/other.json", "{tmp}/other.json"), "is not a backdrop bench result"),
        (("--readme", "{tmp}/other.json"), "has no <!-- bench:start --> … <!-- bench:end --> markers"),
        (("--mediapipe-python", "{tmp}/python"), "--mediapipe-python is for --against mediapipe"),
        (("--against", "mediapipe", "--mediapipe-python", "{tmp}/python"), "cannot start {tmp}/python"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path, args, message):
    (tmp_path / "other.json").write_text('{"fps": 30}')
    code, stderr = run_cli(capsys, "bench", "--no-progress", *(a.format(tmp=tmp_path) for a in args))
    assert code == 2
    assert stderr.strip().splitlines() == [stderr.strip()]
    assert stderr.startswith("backdrop: error:") and message.format(tmp=tmp_path) in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.json"]  # nothing written


def test_an_unusable_runtime_asked_for_by_name_says_why(capsys: pytest.CaptureFixture[str]):
    reason = available_runtimes()["tensorrt"]
    if not reason:
        pytest.skip("TensorRT runs here")
    code, stderr = run_cli(capsys, "bench", "--runtime", "tensorrt")
    assert code == 2 and stderr.strip() == f"backdrop: error: runtime tensorrt cannot run here: {reason}"


@pytest.mark.slow
def test_against_mediapipe_runs_both_whole_loops_in_pairs(tmp_path):
    """Both loops run on the same tiny clip, as whole processes; the rows hold both sides and their ratios."""
    python = mediapipe_python()
    out = tmp_path / "r.json"
    quick = ("--quick", "--runtime", "onnxruntime", "--resolution", "160x96", "--frames", "12", "--no-progress")
    result = backdrop("bench", *quick, "--against", "mediapipe", "--mediapipe-python", python, "--json", out)
    assert result.returncode == 0, result.stderr
    data = report.load(out)
    assert_consistent(data)
    peer = data["peer"]
    assert peer["mediapipe"][0].isdigit() and peer["settings"]["pairs"] == 1
    assert [(r["resolution"], r["background"]) for r in peer["rows"]] == [("160x96", "color"), ("160x96", "blur")]
    for row in peer["rows"]:
        assert row["frames"] == 12 and row["pairs"] == row["fps"]["runs"] == row["mediapipe_fps"]["runs"] == 1
        assert row["fps"]["median"] > 0 and row["mediapipe_fps"]["median"] > 0
        assert row["cpu_ms_per_frame"] > 0 and row["mediapipe_cpu_ms_per_frame"] > 0
        assert row["ratio"] == pytest.approx(row["fps"]["median"] / row["mediapipe_fps"]["median"], rel=1e-2)
        assert row["cpu_ratio"] == pytest.approx(row["cpu_ms_per_frame"] / row["mediapipe_cpu_ms_per_frame"], rel=1e-2)
    table = result.stdout
    assert "### Against MediaPipe's loop" in table
    assert "| 160x96 | color:#c0c0c0 |" in table and "| 160x96 | blur:21 |" in table


def test_against_mediapipe_without_its_interpreter_says_how_to_get_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("BACKDROP_MEDIAPIPE_PYTHON", raising=False)  # and this interpreter has no mediapipe
    code, stderr = run_cli(capsys, "bench", "--against", "mediapipe", "--no-progress")
    assert code == 2 and stderr.strip().splitlines() == [stderr.strip()]
    assert "needs a Python with mediapipe" in stderr and "make mediapipe-env" in stderr
