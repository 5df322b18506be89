"""One model for many streams: every stream's inference stage calls ``segment``; one worker batches across them.

A stream's Pipeline stays exactly as in ``backdrop run``: it is handed this Segmenter instead of its own.
The worker takes the oldest waiting request, waits at most ``wait_s`` for requests from other streams to
fill the batch up to ``batch_size`` frames, runs the real model once and hands each caller its masks. A
caller never waits on another stream's pace, only on the model: the worker never waits for a slow stream
beyond ``wait_s``, and a closed batcher fails every caller at once instead of leaving it blocked.

With ``workers`` > 1 (runtimes whose sessions run calls in parallel: ONNX Runtime) one worker collects the next
batch while another runs the model, so many streams can use more than the one core a single worker would.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from backdrop.errors import BackdropError
from backdrop.model.segmenter import Segmenter

POLL_S = 0.5  # a blocked caller or idle worker rechecks whether the batcher was closed at least this often


def mean_batch_size(frames: int, batches: int) -> float:
    """Frames per model call (0 before the first)."""
    return round(frames / batches, 3) if batches else 0.0


class BatcherClosed(BackdropError):
    """The shared model was shut down while a stream still asked for masks."""


class _Request:
    """One caller's frames, and (once the worker ran them) its masks or the error that ended its batch."""

    def __init__(self, batch: np.ndarray) -> None:
        self.batch = batch
        self.masks: np.ndarray | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class BatchingSegmenter(Segmenter):
    """A Segmenter that funnels every caller's frames into shared batches of the wrapped ``inner`` model."""

    def __init__(self, inner: Segmenter, *, batch_size: int, wait_s: float, workers: int = 1) -> None:
        super().__init__(inner.files, threads=inner.threads)
        self.name = inner.name
        self.inner = inner
        self.batch_size = batch_size
        self.wait_s = wait_s
        self.batches = 0
        self.frames = 0
        self.mixed = 0  # batches that held more than one caller's frames: each stream has one caller
        self._pending: deque[_Request] = deque()
        self._changed = threading.Condition()
        self._closed = False
        self._collecting = threading.Lock()
        self._workers = [
            threading.Thread(target=self._work, name=f"backdrop-batcher-{i}", daemon=True) for i in range(workers)
        ]
        for worker in self._workers:
            worker.start()

    @staticmethod
    def require() -> None:
        """Nothing to check: the wrapped runtime was checked when it was loaded."""

    def segment(self, batch: np.ndarray) -> np.ndarray:
        request = _Request(batch)
        with self._changed:
            if self._closed:
                raise BatcherClosed("the shared model is shut down")
            self._pending.append(request)
            self._changed.notify_all()
        while not request.done.wait(POLL_S):
            if self._closed and not any(worker.is_alive() for worker in self._workers):
                raise BatcherClosed("the shared model is shut down")
        if request.error is not None:
            raise request.error
        if request.masks is None:  # a worker sets the masks or the error before it sets done
            raise RuntimeError("the shared model finished a request without masks")
        return request.masks

    def stats(self) -> dict[str, float]:
        """Batches run, those that mixed callers (streams), frames inferred, and the mean frames per batch."""
        return {
            "batches": self.batches,
            "mixed_batches": self.mixed,
            "frames_inferred": self.frames,
            "mean_batch_size": mean_batch_size(self.frames, self.batches),
        }

    def close(self) -> None:
        """Stop the worker; requests still waiting fail with BatcherClosed. The wrapped model is not closed."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        for worker in self._workers:
            worker.join(POLL_S * 4)

    def _work(self) -> None:
        while True:
            with self._collecting:  # one worker fills a batch at a time, so batches fill rather than split
                requests = self._collect()
            if requests is None:
                return
            self._run(requests)

    def _collect(self) -> list[_Request] | None:
        """The next batch: the oldest request plus those arriving within ``wait_s`` that fit; None once closed."""
        with self._changed:
            while not self._pending:
                if self._closed:
                    return None
                self._changed.wait(POLL_S)
            if self._closed:
                self._fail_pending(list(self._pending))
                self._pending.clear()
                return None
            requests = [self._pending.popleft()]
            frames = len(requests[0].batch)
            deadline = time.monotonic() + self.wait_s
            while frames < self.batch_size:
                if self._pending:
                    if frames + len(self._pending[0].batch) > self.batch_size:
                        break
                    request = self._pending.popleft()
                    requests.append(request)
                    frames += len(request.batch)
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    break
                self._changed.wait(left)
            return requests

    def _run(self, requests: list[_Request]) -> None:
        try:
            masks = self.inner.segment(np.concatenate([r.batch for r in requests]))
        except BaseException as e:  # every stream in this batch sees the model's error; the worker goes on
            self._fail_pending(requests, e)
            return
        with self._changed:
            self.batches += 1
            self.frames += len(masks)
            self.mixed += len(requests) > 1
        start = 0
        for request in requests:
            request.masks = masks[start : start + len(request.batch)]
            start += len(request.batch)
            request.done.set()

    def _fail_pending(self, requests: list[_Request], error: BaseException | None = None) -> None:
        for request in requests:
            request.error = error or BatcherClosed("the shared model is shut down")
            request.done.set()
