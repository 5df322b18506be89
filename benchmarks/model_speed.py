"""Model-only speed: milliseconds per frame for every runtime × model variant × batch size × thread count.

Each (runtime, threads) pair runs in a fresh process: TensorFlow fixes its thread pools at start-up, and
ONNX Runtime's spinning pool threads would otherwise keep burning a core while the next runtime is timed.
Speeds are also given as a ratio to a baseline runtime timed in the same run (the Keras reference when it
is measured), so numbers from a busy machine still compare.

    .venv/bin/python -m benchmarks.model_speed [--repeats 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from backdrop.benchmarks.timing import summarize_ms, time_calls

VARIANTS = ("general", "landscape")
BATCHES = (1, 4)
THREADS = (1, 2)
REFERENCE_RUNTIME = "keras"  # the source of truth every other runtime is compared with
WORKER_TIMEOUT_S = 900.0  # one (runtime, threads) worker, all variants and batches included


@dataclass(frozen=True)
class ModelPlan:
    """What to time: the grid, and how many untimed and timed calls per cell."""

    runtimes: tuple[str, ...]
    variants: tuple[str, ...] = VARIANTS
    batches: tuple[int, ...] = BATCHES
    threads: tuple[int, ...] = THREADS
    warmup: int = 10
    repeats: int = 100

    @property
    def cells(self) -> int:
        return len(self.runtimes) * len(self.variants) * len(self.batches) * len(self.threads)


def _frames(batch: int, size: tuple[int, int]) -> np.ndarray:
    """A fixed pseudo-random batch in the model's input format (a CNN's cost does not depend on content)."""
    height, width = size
    return np.random.default_rng(0).random((batch, height, width, 3), dtype=np.float32)


def _time_runtime(runtime: str, threads: int, plan: ModelPlan) -> Iterator[dict[str, Any]]:
    """Rows for one runtime at one thread count, every variant and batch size."""
    from backdrop.model.segmenter import load_segmenter

    for variant in plan.variants:
        with load_segmenter(variant, runtime, threads=threads) as segmenter:
            providers = getattr(segmenter, "providers", None)
            size = segmenter.contract.input_size
            for batch in plan.batches:
                frames = _frames(batch, size)
                samples = time_calls(partial(segmenter.segment, frames), warmup=plan.warmup, repeats=plan.repeats)
                yield {
                    "runtime": runtime,
                    "device": providers[0] if providers else runtime,
                    "variant": variant,
                    "input": f"{size[1]}x{size[0]}",
                    "batch": batch,
                    "threads": threads,
                    "ms_per_frame": summarize_ms(samples.wall, per=batch),
                    "cpu_ms_per_frame": samples.cpu_ms(per=batch),
                }


def _worker(runtime: str, threads: int, plan: ModelPlan, conn: Connection) -> None:
    """Child-process entry: send each row as it is measured, then None; an exception goes as its message."""
    try:
        for row in _time_runtime(runtime, threads, plan):
            conn.send(row)
        conn.send(None)
    except Exception as e:  # reported to the parent, which records the runtime as failed
        conn.send({"error": f"{type(e).__name__}: {e}"})
    finally:
        conn.close()


def _run_worker(runtime: str, threads: int, plan: ModelPlan, on_row: Callable[[dict], None]) -> str | None:
    """Time one (runtime, threads) pair in a fresh process; the error text when it failed, else None."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_worker, args=(runtime, threads, plan, sender), daemon=True)
    process.start()
    sender.close()
    error = None
    try:
        while True:
            if not receiver.poll(WORKER_TIMEOUT_S):
                error = f"no result within {WORKER_TIMEOUT_S:.0f} s"
                break
            message = receiver.recv()
            if message is None:
                break
            if "error" in message:
                error = message["error"]
                break
            on_row(message)
    except EOFError:
        error = "the benchmark process died"
    finally:
        receiver.close()
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()
    if error is None and process.exitcode:
        error = f"the benchmark process exited with code {process.exitcode}"
    return error


def baseline_runtime(rows: Sequence[dict[str, Any]]) -> str | None:
    """The Keras reference when it was measured, else the last measured runtime (the registry is fastest-first)."""
    measured = list(dict.fromkeys(row["runtime"] for row in rows))
    if not measured:
        return None
    return REFERENCE_RUNTIME if REFERENCE_RUNTIME in measured else measured[-1]


def add_ratios(rows: list[dict[str, Any]]) -> str | None:
    """Give each row ``ratio``: the baseline's median time ÷ its own at the same variant, batch and threads."""
    baseline = baseline_runtime(rows)
    reference = {
        (r["variant"], r["batch"], r["threads"]): r["ms_per_frame"]["median"] for r in rows if r["runtime"] == baseline
    }
    for row in rows:
        base = reference.get((row["variant"], row["batch"], row["threads"]))
        median = row["ms_per_frame"]["median"]
        row["ratio"] = round(base / median, 3) if base and median > 0 else None
        row["fps"] = round(1000.0 / median, 1) if median > 0 else None
    return baseline


def measure_models(plan: ModelPlan, *, on_row: Callable[[dict], None] = lambda row: None) -> dict[str, Any]:
    """The model section of a benchmark result: rows, the baseline, and runtimes that failed while timed."""
    rows: list[dict[str, Any]] = []
    failed: dict[str, str] = {}

    def keep(row: dict[str, Any]) -> None:
        rows.append(row)
        on_row(row)

    for runtime in plan.runtimes:
        for threads in plan.threads:
            error = _run_worker(runtime, threads, plan, keep)
            if error:
                failed[runtime] = error
                break
    baseline = add_ratios(rows)
    return {
        "baseline": baseline,
        "settings": {"warmup": plan.warmup, "repeats": plan.repeats},
        "rows": rows,
        "failed": failed,
    }


def main(argv: list[str] | None = None) -> int:
    from backdrop.benchmarks.report import model_table
    from backdrop.model.segmenter import available_runtimes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", action="append", help="runtime to time (repeatable; default: every usable one)")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the model section here")
    args = parser.parse_args(argv)
    usable = [name for name, reason in available_runtimes().items() if not reason]
    plan = ModelPlan(tuple(args.runtime or usable), warmup=args.warmup, repeats=args.repeats)
    section = measure_models(plan, on_row=lambda row: print(json.dumps(row), file=sys.stderr, flush=True))
    print(model_table(section))
    if args.json:
        args.json.write_text(json.dumps(section, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
