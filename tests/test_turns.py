"""Heavy work takes turns: first come first served, a few at a time, and a waiter can leave."""
from __future__ import annotations

import threading
import time

import pytest

from tlcore import config, fitting, turns


def _wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_trainings_take_turns_in_order_and_a_waiting_one_can_be_cancelled():
    queue, order, phases = turns.Turns(slots=1, noun="training",
                                       cancelled=fitting.TrainingCancelled), [], []
    inside, release, stop = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with queue.turn():
            inside.set()
            release.wait(10)
            order.append("first")

    def second() -> None:
        with queue.turn(lambda step, total, metrics: phases.append(metrics["phase"])):
            order.append("second")

    def third() -> None:
        with pytest.raises(fitting.TrainingCancelled, match="waiting for its turn"):
            with queue.turn(should_stop=stop.is_set):
                order.append("third")

    threads = [threading.Thread(target=work) for work in (first, second, third)]
    threads[0].start()
    inside.wait(10)
    for count, thread in ((2, threads[1]), (3, threads[2])):
        thread.start()
        _wait_until(lambda: queue.ahead() >= count)
    stop.set()
    threads[2].join(10)
    release.set()
    for thread in threads[:2]:
        thread.join(10)
    assert order == ["first", "second"] and queue.ahead() == 0
    assert phases[0] == "waiting for a turn: 1 training(s) ahead"


def test_a_failing_progress_callback_gives_its_place_in_the_queue_up():
    queue, failures = turns.Turns(slots=1), []

    def broken(step, total, metrics):
        raise RuntimeError("the page went away")

    def waiter() -> None:
        try:
            with queue.turn(broken):
                pass
        except RuntimeError as error:
            failures.append(str(error))

    with queue.turn():
        thread = threading.Thread(target=waiter)
        thread.start()
        thread.join(10)
        assert failures == ["the page went away"]
        assert queue.ahead() == 1  # only the holder: the failed waiter left the queue
    with queue.turn():  # and the next one gets its turn at once
        assert queue.ahead() == 1


def test_slots_let_that_many_hold_at_once_and_the_rest_wait():
    queue, inside, release = turns.Turns(slots=2), [], threading.Event()

    def work(name: str) -> None:
        with queue.turn():
            inside.append(name)
            release.wait(10)

    threads = [threading.Thread(target=work, args=(name,)) for name in "abc"]
    for thread in threads:
        thread.start()
    _wait_until(lambda: len(inside) == 2 and queue.ahead() == 3)
    time.sleep(0.2)
    assert len(inside) == 2 and queue.busy() == 2  # the third waits
    release.set()
    for thread in threads:
        thread.join(10)
    assert sorted(inside) == ["a", "b", "c"] and queue.ahead() == 0


def test_a_holder_calling_more_heavy_work_does_not_wait_for_itself():
    queue = turns.Turns(slots=1)
    with queue.turn():
        with queue.turn():  # the same thread: no deadlock
            assert queue.busy() == 1
    assert queue.ahead() == 0


def test_the_work_queue_reads_its_size_from_the_limits(monkeypatch):
    assert turns.WORK.slots == config.OWN_LIMITS.heavy_slots
    monkeypatch.setenv("TLCORE_PUBLIC_DEMO", "1")
    assert turns.WORK.slots == config.DEMO_LIMITS.heavy_slots == 1
