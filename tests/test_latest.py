"""LatestSlot: the newest item only, overwrites counted, readers woken by newer items or by close."""

from __future__ import annotations

import threading

from backdrop.stream.core.latest import LatestSlot


def take_in_thread(slot: LatestSlot[str], after_seq: int) -> tuple[threading.Thread, list]:
    """Start a reader blocked in ``slot.take(after_seq)``; the list receives what it returns."""
    results: list = []
    reader = threading.Thread(target=lambda: results.append(slot.take(after_seq)), daemon=True)
    reader.start()
    return reader, results


def test_take_returns_the_newest_item_and_counts_those_nobody_took() -> None:
    slot: LatestSlot[str] = LatestSlot()
    assert slot.seq == 0 and slot.take(0, timeout=0) is None  # empty: nothing to take
    slot.put("a")
    slot.put("b")  # "a" was never taken
    assert slot.take(0) == (2, "b") and slot.overwritten == 1
    assert slot.take(2, timeout=0) is None  # nothing newer than what this reader has
    slot.put("c")  # "b" was taken: replacing it loses nothing
    slot.put("d")
    assert slot.overwritten == 2 and slot.take(2) == (4, "d")


def test_several_readers_all_get_the_item() -> None:
    slot: LatestSlot[str] = LatestSlot()
    slot.put("frame")
    assert slot.take(0) == slot.take(0) == (1, "frame")  # taking does not remove it
    assert slot.overwritten == 0


def test_a_blocked_reader_wakes_for_a_newer_item() -> None:
    slot: LatestSlot[str] = LatestSlot()
    slot.put("old")
    reader, results = take_in_thread(slot, after_seq=1)
    slot.put("new")
    reader.join(5)
    assert results == [(2, "new")]


def test_close_wakes_every_blocked_reader_with_none_and_ignores_later_puts() -> None:
    slot: LatestSlot[str] = LatestSlot()
    readers = [take_in_thread(slot, after_seq=0) for _ in range(3)]
    slot.close()
    for reader, results in readers:
        reader.join(5)
        assert not reader.is_alive() and results == [None]
    slot.put("late")
    assert slot.seq == 0 and slot.take(0) is None


def test_a_slow_reader_sees_increasing_items_and_every_item_is_taken_or_counted() -> None:
    slot: LatestSlot[int] = LatestSlot()
    total = 5000
    writer = threading.Thread(target=lambda: [slot.put(i) for i in range(1, total + 1)], daemon=True)
    writer.start()
    received = []
    seq = 0
    while seq < total:
        seq, item = slot.take(seq)
        assert item == seq
        received.append(item)
    writer.join(5)
    assert received == sorted(set(received))
    assert len(received) + slot.overwritten == total
