"""Reports from concurrent slots share requests: what waits while one is in flight goes
together in the next, every caller gets its own answers, and errors reach their callers."""

from __future__ import annotations

import threading

import pytest

from placet.runners.coalesce import Coalescer


class Wire:
    """A ``send`` that records each batch and can be held mid-request by the test."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.fail_on: int | None = None

    def send(self, items: list[int]) -> list[str]:
        self.batches.append(list(items))
        self.entered.set()
        assert self.release.wait(20), "the test never released the request"
        if self.fail_on is not None and self.fail_on in items:
            raise RuntimeError(f"refused batch with {self.fail_on}")
        return [f"ok {item}" for item in items]


def test_one_caller_alone_sends_its_items_in_one_request() -> None:
    wire = Wire()
    assert Coalescer(wire.send, 8).send([1, 2]) == ["ok 1", "ok 2"]
    assert wire.batches == [[1, 2]]


def test_items_queued_while_a_request_is_in_flight_go_together_in_the_next() -> None:
    wire = Wire()
    sender = Coalescer(wire.send, 8)
    wire.release.clear()
    answers: dict[int, list[str]] = {}
    first = threading.Thread(target=lambda: answers.update({1: sender.send([1])}))
    first.start()
    assert wire.entered.wait(20)
    waiting = [
        threading.Thread(target=lambda n=n: answers.update({n: sender.send([n, n * 10])}))
        for n in (2, 3, 4)
    ]
    for thread in waiting:
        thread.start()
    pause = threading.Event()  # never set: a bounded pause between looks
    for _ in range(2000):  # until all three callers have queued behind the first request
        if len(sender._waiting) == 6:
            break
        pause.wait(0.01)
    assert len(sender._waiting) == 6
    wire.release.set()
    for thread in (first, *waiting):
        thread.join(20)
    assert wire.batches[0] == [1]
    assert len(wire.batches) == 2 and sorted(wire.batches[1]) == [2, 3, 4, 20, 30, 40]
    assert answers == {
        1: ["ok 1"],
        2: ["ok 2", "ok 20"],
        3: ["ok 3", "ok 30"],
        4: ["ok 4", "ok 40"],
    }


def test_a_batch_never_carries_more_than_its_limit() -> None:
    wire = Wire()
    assert Coalescer(wire.send, 2).send([1, 2, 3, 4, 5]) == [f"ok {n}" for n in (1, 2, 3, 4, 5)]
    assert wire.batches == [[1, 2], [3, 4], [5]]


def test_an_error_reaches_the_callers_of_that_batch_and_the_next_batch_still_goes() -> None:
    wire = Wire()
    wire.fail_on = 2
    sender = Coalescer(wire.send, 2)
    with pytest.raises(RuntimeError, match="refused batch with 2"):
        sender.send([1, 2, 3])
    assert wire.batches == [[1, 2], [3]]  # the leader still sent what was behind
    wire.fail_on = None
    assert sender.send([4]) == ["ok 4"]  # and a later caller is not stuck


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Coalescer(Wire().send, 0)
