"""Restart backoff: ``Backoff`` itself, and ``backdrop serve``'s runner retrying a stream whose source never opens.

The runner is driven without sleeping: its stop event is replaced by one that records each wait's length and
returns at once, and its clock (``runner.time``) by one the test advances, so a "healthy" 30 s run takes no time.
Everything else is real: the run config, ``open_pipeline`` and the source that fails to open.
"""

from __future__ import annotations

import logging
import threading
import types
from pathlib import Path

import pytest

from backdrop.model.segmenter import Segmenter
from backdrop.stream.config.run import load_config, with_overrides
from backdrop.stream.config.serve import ServeOptions
from backdrop.stream.core.backoff import Backoff
from backdrop.stream.core.figures import StreamState
from backdrop.stream.serve import runner as runner_module
from backdrop.stream.serve.runner import HEALTHY_S, StreamRunner

# -- Backoff ---------------------------------------------------------------------------------------------


def delays(backoff: Backoff, count: int) -> list[float]:
    return [backoff.next_delay() for _ in range(count)]


def test_delays_double_from_the_initial_one_up_to_the_cap() -> None:
    backoff = Backoff(initial_s=1.0, max_s=30.0)
    assert delays(backoff, 7) == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff.failures == 7


def test_reset_starts_again_from_the_initial_delay() -> None:
    backoff = Backoff(initial_s=0.5, max_s=10.0)
    assert delays(backoff, 3) == [0.5, 1.0, 2.0]
    backoff.reset()
    assert backoff.failures == 0
    assert delays(backoff, 2) == [0.5, 1.0]


def test_days_of_failures_stay_at_the_cap_without_overflowing() -> None:
    backoff = Backoff(initial_s=1.0, max_s=30.0)
    assert delays(backoff, 5000)[-1] == 30.0  # 2.0 ** 4999 would overflow a float


def test_a_cap_below_the_initial_delay_wins() -> None:
    assert delays(Backoff(initial_s=5.0, max_s=2.0), 2) == [2.0, 2.0]


# -- the serve runner's use of it ---------------------------------------------------------------------------


class RecordedWaits(threading.Event):
    """The runner's stop event: each timed wait is recorded and returns at once; after ``limit`` waits it is set,
    which stops the runner as ``StreamRunner.stop()`` would. ``after_wait`` runs after each one."""

    def __init__(self, limit: int, after_wait) -> None:
        super().__init__()
        self.waits: list[float] = []
        self.limit = limit
        self.after_wait = after_wait

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is None:
            return super().wait()
        self.waits.append(timeout)
        self.after_wait(len(self.waits))
        if len(self.waits) >= self.limit:
            self.set()
        return self.is_set()


class FakeClock:
    """``time`` for runner.py: ``monotonic()`` moves on by ``step`` seconds at each call (0: attempts are instant)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.step = 0.0

    def monotonic(self) -> float:
        now = self.now
        self.now += self.step
        return now


def failing_runner(tmp_path: Path, segmenter: Segmenter, options: ServeOptions) -> StreamRunner:
    """A stream whose source, a file that does not exist, fails to open on every attempt."""
    config = with_overrides(load_config(None), {"source.uri": str(tmp_path / "missing.mp4"), "outputs": ["null"]})
    return StreamRunner("cam", config, segmenter, options)


def run_until_stopped(runner: StreamRunner, waits: RecordedWaits) -> None:
    runner._stop = waits  # the runner's own event, as stop() sets it
    runner.start()
    assert runner.join(30), "the runner did not stop"


def test_a_stream_that_never_opens_is_retried_with_doubling_delays_up_to_the_cap(
    tmp_path: Path, segmenter: Segmenter, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runner_module, "time", types.SimpleNamespace(monotonic=FakeClock().monotonic))
    runner = failing_runner(tmp_path, segmenter, ServeOptions(restart_initial_s=0.5, restart_max_s=4.0))
    waits = RecordedWaits(limit=6, after_wait=lambda n: None)
    with caplog.at_level(logging.WARNING, logger="backdrop"):
        run_until_stopped(runner, waits)
    assert waits.waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]  # serve.restart_initial_s doubling to serve.restart_max_s
    assert runner.restarts == 6
    assert runner.state is StreamState.STOPPED
    assert runner.error is not None and "missing.mp4" in runner.error
    logged = [r.getMessage() for r in caplog.records if "restarting in" in r.getMessage()]
    assert [m.rsplit("restarting in ", 1)[1] for m in logged] == ["0.5 s", "1.0 s", "2.0 s", "4.0 s", "4.0 s", "4.0 s"]


def test_after_a_healthy_run_the_delays_start_again_from_the_initial_one(
    tmp_path: Path, segmenter: Segmenter, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(runner_module, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    runner = failing_runner(tmp_path, segmenter, ServeOptions(restart_initial_s=1.0, restart_max_s=8.0))

    def after_wait(count: int) -> None:
        # the attempt after the 3rd failure lasts HEALTHY_S on the runner's clock (a stream that ran, then failed);
        # every other attempt fails at once
        clock.step = HEALTHY_S if count == 3 else 0.0

    waits = RecordedWaits(limit=6, after_wait=after_wait)
    run_until_stopped(runner, waits)
    assert waits.waits == [1.0, 2.0, 4.0, 1.0, 2.0, 4.0]
    assert runner.restarts == 6


def test_a_failure_just_short_of_healthy_keeps_doubling(
    tmp_path: Path, segmenter: Segmenter, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(runner_module, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    runner = failing_runner(tmp_path, segmenter, ServeOptions(restart_initial_s=1.0, restart_max_s=8.0))
    waits = RecordedWaits(limit=5, after_wait=lambda count: setattr(clock, "step", HEALTHY_S - 1))
    run_until_stopped(runner, waits)
    assert waits.waits == [1.0, 2.0, 4.0, 8.0, 8.0]
