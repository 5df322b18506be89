"""A benchmark result: its JSON schema (validation), Markdown tables, PNG plots, and the comparison of two runs.

The result is one JSON object (schema documented in README.md, "Result JSON"):

    schema      "backdrop-bench/1"
    quick       whether --quick shortened the run
    duration_s  wall time of the whole run
    machine     CPU, cores, memory, GPUs, OS, package versions, commit, load average (start and end)
    runtimes    {name: {"status": measured | unavailable | skipped | failed, "reason": text}}
    model       {"baseline", "settings", "rows": [{runtime, device, variant, input, batch, threads,
                 ms_per_frame: {median, min, max, runs}, cpu_ms_per_frame, fps, ratio}]}
                                                                  ratio = baseline ms ÷ this ms
    stages      {"baseline", "runtime", "threads", "settings", "rows": [{resolution, size, stage,
                 ms: {median, min, max, runs}, cpu_ms, ratio}]}               ratio = this ms ÷ inference ms
    pipeline    {"baseline", "settings", "rows": [{input, resolution, size, frames, runtime, mode,
                 fps: {median, min, max, runs}, cpu_ms_per_frame, ratio}],  ratio = this fps ÷ sequential fps
                 "against_stages": {"stages", "threads", "rows": [{input, resolution, runtime,
                 stages_cpu_ms: {stage: ms}, sum_cpu_ms, pipeline_cpu_ms, ratio}]}}
                                                 ratio = pipeline CPU ms ÷ the sum of its stages' CPU ms
                 mode: pipeline | sequential | codec_floor (decode → encode alone, no model)
    peer        only with --against mediapipe: {"baseline": "mediapipe", "mediapipe" (version), "settings",
                 "rows": [{input, resolution, size, frames, background, ours, fps: {median, min, max, runs},
                 mediapipe_fps: {…}, cpu_ms_per_frame, mediapipe_cpu_ms_per_frame, pairs, ratio, cpu_ratio}]}
                                  ratio = our fps ÷ MediaPipe's; cpu_ratio = our CPU ms ÷ MediaPipe's (medians)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from backdrop.benchmarks.machine import describe_short
from backdrop.errors import ConfigError

SCHEMA = "backdrop-bench/1"
SECTIONS = {  # section -> (fields that identify a row, the statistic's field, its unit, higher is better)
    "model": (("runtime", "variant", "batch", "threads"), "ms_per_frame", "ms/frame", False),
    "stages": (("resolution", "stage"), "ms", "ms", False),
    "pipeline": (("resolution", "runtime", "mode"), "fps", "fps", True),
    "peer": (("resolution", "background"), "fps", "fps", True),
}
OPTIONAL = ("peer",)  # sections only some runs have
STATUSES = ("measured", "unavailable", "skipped", "failed")


def validate(data: Any, name: str = "result") -> dict[str, Any]:
    """Return ``data`` if it is a benchmark result of this schema; else ConfigError naming the first problem."""

    def fail(problem: str) -> NoReturn:
        raise ConfigError(f"{name} is not a backdrop bench result: {problem}")

    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        fail(f'expected "schema": "{SCHEMA}"')
    for key in ("quick", "duration_s", "machine", "runtimes", *(s for s in SECTIONS if s not in OPTIONAL)):
        if key not in data:
            fail(f"missing {key!r}")
    if not isinstance(data["machine"], dict) or not isinstance(data["runtimes"], dict):
        fail("machine and runtimes must be objects")
    for runtime, entry in data["runtimes"].items():
        if not isinstance(entry, dict) or entry.get("status") not in STATUSES:
            fail(f"runtimes.{runtime}.status must be one of {', '.join(STATUSES)}")
    for section, (keys, stat, _, _) in SECTIONS.items():
        if section not in data:
            continue
        rows = data[section].get("rows") if isinstance(data[section], dict) else None
        if not isinstance(rows, list):
            fail(f"{section}.rows must be a list")
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                fail(f"{section}.rows[{i}] must be an object")
            missing = [k for k in (*keys, stat, "ratio") if k not in row]
            if missing:
                fail(f"{section}.rows[{i}] lacks {', '.join(missing)}")
            summary = row[stat]
            if not isinstance(summary, dict) or not all(
                isinstance(summary.get(k), int | float) for k in ("median", "min", "max", "runs")
            ):
                fail(f"{section}.rows[{i}].{stat} needs numeric median, min, max and runs")
            if not summary["min"] <= summary["median"] <= summary["max"]:
                fail(f"{section}.rows[{i}].{stat}: min ≤ median ≤ max does not hold")
    return data


def load(path: Path) -> dict[str, Any]:
    """Read and validate a result file; every problem is one ConfigError line."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from e
    except ValueError as e:
        raise ConfigError(f"{path} is not JSON: {e}") from e
    return validate(data, str(path))


def publish(result: dict[str, Any], path: Path | None) -> None:
    """Print a benchmark's result as JSON and, when a ``path`` is given, write it there (its folder made)."""
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _pivot(
    rows: Sequence[dict[str, Any]], row_key: Callable[[dict], tuple], col_key: Callable[[dict], str], cell: Callable
) -> tuple[list[str], list[list[str]]]:
    """Rows grouped by ``row_key`` with one column per distinct ``col_key`` (in first-seen order)."""
    columns = list(dict.fromkeys(col_key(r) for r in rows))
    grouped: dict[tuple, dict[str, str]] = {}
    for r in rows:
        grouped.setdefault(row_key(r), {})[col_key(r)] = cell(r)
    return columns, [[*key, *(cells.get(c, "–") for c in columns)] for key, cells in grouped.items()]


def runtime_table(result: dict[str, Any]) -> str:
    rows = [[name, entry["status"], entry.get("reason", "")] for name, entry in result["runtimes"].items()]
    return _table(("runtime", "status", "note"), rows)


def model_table(section: dict[str, Any]) -> str:
    """Median ms per frame per runtime/variant (rows) × batch/threads (columns), with the speed-up over baseline."""
    if not section["rows"]:
        return "_no runtime was measured_"
    columns, rows = _pivot(
        section["rows"],
        lambda r: (r["runtime"], r["device"], f"{r['variant']} {r['input']}"),
        lambda r: f"batch {r['batch']}, {r['threads']} thr",
        lambda r: f"{r['ms_per_frame']['median']:.2f} / {r['cpu_ms_per_frame']:.2f} ({_ratio(r['ratio'])})",
    )
    settings = section["settings"]
    note = (
        f"Median wall / CPU ms per frame of {settings['repeats']} runs after {settings['warmup']} warm-up runs "
        f"(CPU time of all threads: above the wall time when threads work in parallel, far above it when they "
        f"spin); in brackets the speed-up over {section['baseline']} at the same setting (min/max in the JSON)."
    )
    return _table(("runtime", "device", "model", *columns), rows) + "\n\n" + note


def stage_table(section: dict[str, Any]) -> str:
    """Median ms per stage (rows) × resolution (columns), with the cost in units of inference."""
    columns, rows = _pivot(
        section["rows"],
        lambda r: (r["stage"],),
        lambda r: r["resolution"],
        lambda r: f"{r['ms']['median']:.2f} ({_ratio(r['ratio'])})",
    )
    settings = section["settings"]
    note = (
        f"Median ms per frame of {settings['repeats']} calls after {settings['warmup']} warm-up calls, one stage "
        f"at a time ({section['runtime']}, threads {section['threads'] or 'default'}); in brackets the cost "
        f"relative to {section['baseline']}. Frames in I420, as a file → file run has them (transparent and mask "
        "compose BGR only)."
    )
    return _table(("stage", *columns), rows) + "\n\n" + note


def pipeline_table(section: dict[str, Any]) -> str:
    """fps of the pipeline, the sequential loop and the codec floor per input and runtime, with the ratios."""
    rows = []
    by_key = {(r["resolution"], r["runtime"], r["mode"]): r for r in section["rows"]}
    for (resolution, runtime, mode), row in by_key.items():
        if mode != "pipeline":
            continue
        loop = by_key.get((resolution, runtime, "sequential"))
        floor = by_key.get((resolution, runtime, "codec_floor"))
        fps = row["fps"]
        rows.append(
            [
                row["input"],
                runtime,
                f"{fps['median']:.1f} ({fps['min']:.1f}–{fps['max']:.1f})",
                f"{loop['fps']['median']:.1f}" if loop else "–",
                _ratio(row["ratio"]),
                f"{floor['fps']['median']:.1f}" if floor else "–",
                f"{fps['median'] / floor['fps']['median']:.0%}" if floor else "–",
                f"{row['cpu_ms_per_frame']:.1f} / {loop['cpu_ms_per_frame']:.1f}" if loop else "–",
            ]
        )
    settings = section["settings"]
    note = (
        f"Median fps (min–max) of {settings['repeats']} runs, file → {settings.get('model', 'general')} model, "
        f"{settings['background']} → H.264 file; codec floor: decode → encode alone on two threads; "
        f"runtime threads: pipeline {settings['pipeline_threads'] or 'default'}, "
        f"loop {settings['loop_threads'] or 'default'}. CPU ms per frame (all threads) does not depend on how busy "
        "the machine is; cores × 1000 ÷ it bounds the fps."
    )
    header = (
        "input",
        "runtime",
        "pipeline fps",
        "sequential fps",
        "pipeline ÷ sequential",
        "codec floor fps",
        "pipeline ÷ floor",
        "CPU ms/frame pipe / seq",
    )
    return _table(header, rows) + "\n\n" + note


def stages_sum_table(section: dict[str, Any]) -> str:
    """The pipeline's CPU per frame against the sum of its stages' CPU, each stage timed alone."""
    against = section["against_stages"]
    if not against["rows"]:
        return "_no stage was timed at an input's size with the pipeline's runtime_"
    names = against["stages"]
    rows = [
        [
            r["input"],
            r["runtime"],
            *(f"{r['stages_cpu_ms'][name]:.2f}" for name in names),
            f"{r['sum_cpu_ms']:.2f}",
            f"{r['pipeline_cpu_ms']:.2f}",
            _ratio(r["ratio"]),
        ]
        for r in against["rows"]
    ]
    note = (
        "CPU ms per frame (all threads). Each stage timed alone (the per-stage section's medians, runtime threads "
        f"{against['threads'] or 'default'}) against the pipeline's whole run (the end-to-end section's, runtime "
        f"threads {section['settings']['pipeline_threads'] or 'default'}, opening the clip and the model included). "
        "Above 1× is what running the stages together adds: threads, queues, hand-overs (target ≤ 1.15×)."
    )
    header = ("input", "runtime", *names, "sum of stages", "pipeline", "pipeline ÷ sum")
    return _table(header, rows) + "\n\n" + note


def peer_table(section: dict[str, Any]) -> str:
    """Backdrop against MediaPipe's documented loop, whole process against whole process, with both ratios."""

    def fps(summary: dict[str, float]) -> str:
        return f"{summary['median']:.1f} ({summary['min']:.1f}–{summary['max']:.1f})"

    rows = [
        [
            r["resolution"],
            r["ours"],
            fps(r["fps"]),
            fps(r["mediapipe_fps"]),
            _ratio(r["ratio"]),
            f"{r['cpu_ms_per_frame']:.1f}",
            f"{r['mediapipe_cpu_ms_per_frame']:.1f}",
            _ratio(r["cpu_ratio"]),
        ]
        for r in section["rows"]
    ]
    settings = section["settings"]
    note = (
        f"Median fps (min–max) of {settings['pairs']} interleaved pairs (Backdrop, MediaPipe, Backdrop, …) on the "
        f"same clip, each a whole process from its start to a finished H.264 file ({settings['encoder']}): "
        f"{settings['ours']} against MediaPipe {section['mediapipe']}'s {settings['theirs']}, in its own "
        "interpreter, writing through the ffmpeg command. MediaPipe's background is its example's grey plate, or "
        "the whole frame blurred by cv2.GaussianBlur at the same kernel. Speed ratio: Backdrop fps ÷ MediaPipe's; "
        "CPU ratio: Backdrop's CPU ms per frame ÷ MediaPipe's (below 1: less), each process's user + system time "
        "with its helpers', as the kernel counts it."
    )
    header = (
        "resolution",
        "background",
        "Backdrop fps",
        "MediaPipe fps",
        "speed ratio",
        "Backdrop CPU ms/frame",
        "MediaPipe CPU ms/frame",
        "CPU ratio",
    )
    return _table(header, rows) + "\n\n" + note


def markdown(result: dict[str, Any]) -> str:
    """The whole result as Markdown: machine, runtimes, then one table per section."""
    machine = result["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items())
    return "\n\n".join(
        [
            f"Machine: {describe_short(machine)}; Python {machine['python']}; load average "
            f"{machine['load_average']} at start, {machine.get('load_average_end')} at end"
            + (" (--quick)" if result["quick"] else ""),
            f"Packages: {packages}",
            "### Runtimes\n\n" + runtime_table(result),
            "### Model only\n\n" + model_table(result["model"]),
            "### Per-stage cost\n\n" + stage_table(result["stages"]),
            "### End to end\n\n" + pipeline_table(result["pipeline"]),
            "### Pipeline CPU against its stages\n\n" + stages_sum_table(result["pipeline"]),
            *(["### Against MediaPipe's loop\n\n" + peer_table(result["peer"])] if "peer" in result else []),
        ]
    )


README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def readme_span(text: str, name: str) -> tuple[int, int]:
    """Where the generated tables go in a README: between the two markers; ConfigError when they are missing."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ConfigError(f"{name} has no {README_START} … {README_END} markers to put the tables between")
    return start + len(README_START), end


def update_readme(path: Path, table: str) -> None:
    """Replace what lies between the README's markers with ``table`` (the Markdown of a result)."""
    text = path.read_text()
    start, end = readme_span(text, str(path))
    path.write_text(text[:start] + "\n" + table.replace("\n### ", "\n#### ") + "\n" + text[end:])


def write_plots(result: dict[str, Any], folder: Path) -> list[Path]:
    """fps.png (pipeline, loop and codec floor fps by runtime and resolution) and stages.png (per-stage costs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    caption = describe_short(result["machine"])
    paths = []

    pipeline = result["pipeline"]["rows"]
    resolutions = list(dict.fromkeys(r["resolution"] for r in pipeline))
    series = list(dict.fromkeys((r["runtime"], r["mode"]) for r in pipeline if r["mode"] != "codec_floor"))
    figure, axes = plt.subplots(figsize=(7, 3.6), dpi=80)
    width = 0.8 / max(1, len(series))
    colours = {runtime: f"C{i}" for i, runtime in enumerate(dict.fromkeys(r for r, _ in series))}
    for i, (runtime, mode) in enumerate(series):
        values = {r["resolution"]: r["fps"]["median"] for r in pipeline if (r["runtime"], r["mode"]) == (runtime, mode)}
        x = np.arange(len(resolutions)) + (i - (len(series) - 1) / 2) * width
        sequential = mode == "sequential"
        axes.bar(
            x,
            [values.get(res, 0) for res in resolutions],
            width,
            label=f"{runtime} {mode}",
            color=colours[runtime],
            alpha=0.45 if sequential else 1.0,
            hatch="//" if sequential else None,
        )
    floors = {r["resolution"]: r["fps"]["median"] for r in pipeline if r["mode"] == "codec_floor"}
    if floors:  # one floor per input (the runtime does not matter to it): a grey band behind the bars
        axes.bar(np.arange(len(resolutions)), [floors.get(res, 0) for res in resolutions], 0.9, color="0.85",
                 zorder=0, label="codec floor (decode → encode)")  # fmt: skip
    axes.set_xticks(np.arange(len(resolutions)), resolutions)
    axes.set_ylabel("frames per second (median)")
    axes.set_title(f"End to end, file → {result['pipeline']['settings']['background']} → H.264", fontsize=10)
    paths.append(_save_figure(figure, axes, caption, folder / "fps.png"))

    stages = result["stages"]["rows"]
    names = list(dict.fromkeys(r["stage"] for r in stages))
    resolutions = list(dict.fromkeys(r["resolution"] for r in stages))
    figure, axes = plt.subplots(figsize=(7, 0.28 * len(names) * max(1, len(resolutions)) ** 0.5 + 1.2), dpi=80)
    height = 0.8 / max(1, len(resolutions))
    for i, resolution in enumerate(resolutions):
        values = {r["stage"]: r["ms"]["median"] for r in stages if r["resolution"] == resolution}
        y = np.arange(len(names)) + (i - (len(resolutions) - 1) / 2) * height
        axes.barh(y, [values.get(n, 0) for n in names], height, label=resolution)
    axes.set_yticks(np.arange(len(names)), names, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("ms per frame (median)")
    axes.set_title(f"Per-stage cost ({result['stages']['runtime']})", fontsize=10)
    paths.append(_save_figure(figure, axes, caption, folder / "stages.png"))
    return paths


def _save_figure(figure, axes, caption: str, path: Path) -> Path:
    """Legend, the machine caption along the bottom, save and free the figure."""
    import matplotlib.pyplot as plt

    axes.legend(fontsize=7)
    figure.text(0.01, 0.01, caption, fontsize=6)
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    figure.savefig(path)
    plt.close(figure)
    return path


def _speed(value: float, higher_is_better: bool) -> float:
    return value if higher_is_better else 1.0 / value


def compare(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str] = ("A", "B")) -> str:
    """Markdown of what changed from run A to run B: machine and versions, then every matching row.

    ``B ÷ A`` is the change in speed (above 1 = B is faster); the ratio columns compare each run's speed
    relative to its own baseline, which stays meaningful when the two machines were differently busy.
    """
    out = [f"## {names[0]} → {names[1]}"]
    ma, mb = a["machine"], b["machine"]
    changed = [
        [key, ma.get(key), mb.get(key)]
        for key in ("cpu", "usable_cores", "memory_gib", "gpus", "os", "python", "commit", "load_average")
        if ma.get(key) != mb.get(key)
    ]
    changed += [[key, a[key], b[key]] for key in ("quick",) if a[key] != b[key]]
    packages = sorted(set(ma["packages"]) | set(mb["packages"]))
    changed += [
        [name, ma["packages"].get(name, "–"), mb["packages"].get(name, "–")]
        for name in packages
        if ma["packages"].get(name) != mb["packages"].get(name)
    ]
    out.append("### Machine\n\n" + (_table(("", *names), changed) if changed else "_same machine and versions_"))
    for section, (keys, stat, unit, higher) in SECTIONS.items():
        if section not in a and section not in b:
            continue
        index_a = {tuple(r[k] for k in keys): r for r in a.get(section, {"rows": []})["rows"]}
        index_b = {tuple(r[k] for k in keys): r for r in b.get(section, {"rows": []})["rows"]}
        rows = []
        for key in [*index_a, *(k for k in index_b if k not in index_a)]:
            ra, rb = index_a.get(key), index_b.get(key)
            va = ra[stat]["median"] if ra else None
            vb = rb[stat]["median"] if rb else None
            change = (
                f"{_speed(vb, higher) / _speed(va, higher):.2f}×" if va and vb else ("only in " + names[ra is None])
            )
            rows.append(
                [
                    " ".join(str(k) for k in key),
                    "–" if va is None else f"{va:.2f}",
                    "–" if vb is None else f"{vb:.2f}",
                    change,
                    _ratio(ra["ratio"] if ra else None),
                    _ratio(rb["ratio"] if rb else None),
                ]
            )
        header = (" ".join(keys), f"{names[0]} {unit}", f"{names[1]} {unit}", "speed B ÷ A", "ratio A", "ratio B")
        text = f"### {section}\n\n" + (_table(header, rows) if rows else "_no rows_")
        if section in a and section in b and a[section]["baseline"] != b[section]["baseline"]:
            text += (
                f"\n\nThe baselines differ ({a[section]['baseline']} in {names[0]}, {b[section]['baseline']} in "
                f"{names[1]}): compare the ratio columns with care."
            )
        out.append(text)
    return "\n\n".join(out)
