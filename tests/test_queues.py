"""Stage queues: backpressure keeps every item in order, drop-oldest keeps the newest, close wakes waiters."""

from __future__ import annotations

import threading

from backdrop.stream.core.queues import END_OF_STREAM, QueueClosed, StageQueue


def test_backpressure_keeps_every_item_in_order() -> None:
    queue = StageQueue("q", 2, drop_oldest=False)
    received: list[int] = []

    def consume() -> None:
        while (item := queue.get()) is not END_OF_STREAM:
            received.append(item)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(500):
        queue.put(i)
    queue.put(END_OF_STREAM)
    consumer.join(timeout=10)
    assert not consumer.is_alive()
    assert received == list(range(500)) and queue.dropped == 0


def test_drop_oldest_keeps_the_newest_without_blocking() -> None:
    queue = StageQueue("q", 3, drop_oldest=True)
    for i in range(10):
        queue.put(i)  # never blocks although nobody reads
    assert [queue.get() for _ in range(3)] == [7, 8, 9]
    assert queue.dropped == 7


def test_drop_oldest_never_drops_end_of_stream() -> None:
    queue = StageQueue("q", 1, drop_oldest=True)
    queue.put(END_OF_STREAM)
    blocked = threading.Thread(target=queue.put, args=(1,))
    blocked.start()
    assert queue.get() is END_OF_STREAM
    blocked.join(timeout=10)
    assert queue.get() == 1


def test_close_wakes_a_blocked_producer_and_consumer() -> None:
    full = StageQueue("full", 1, drop_oldest=False)
    full.put("x")
    empty = StageQueue("empty", 1, drop_oldest=False)
    outcomes: dict[str, object] = {}
    producer_waiting = threading.Event()

    def produce() -> None:
        producer_waiting.set()
        try:
            full.put("y")
        except QueueClosed:
            outcomes["put"] = "closed"

    def consume() -> None:
        outcomes["get"] = empty.get()

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for thread in threads:
        thread.start()
    assert producer_waiting.wait(10)
    full.close()
    empty.close()
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive()
    assert outcomes == {"put": "closed", "get": END_OF_STREAM}


def test_get_nowait_gathers_a_batch_but_leaves_end_of_stream() -> None:
    queue = StageQueue("q", 4, drop_oldest=False)
    for item in (1, 2, END_OF_STREAM):
        queue.put(item)
    assert [queue.get_nowait(), queue.get_nowait(), queue.get_nowait()] == [1, 2, None]
    assert queue.get() is END_OF_STREAM
