"""Visitors at once: a training, a render and an attack on one shared model, together.

The shared model must come out bit-for-bit unchanged, and each session must get exactly
what it gets alone (no crosstalk through random seeds, compiled functions or weights).
"""
from __future__ import annotations

import concurrent.futures
import hashlib

import numpy as np

from tlcore import attack, config, data, evaluate, runs, train, visualize


def weights_digest(model) -> str:
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def test_training_rendering_and_attacking_at_once_leave_the_shared_model_alone(
        tiny_run, tiny_folder, tmp_path):
    shared = runs.load_run(tiny_run.run_dir).load_model()
    images, labels = evaluate.dataset_of(tiny_run).split_arrays("validation", 32)
    images = images[:4].astype(np.float32)
    settings = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="end-to-end",
                                  epochs=3, image_size=32, batch_size=8, patience=0, seed=4)
    dataset = data.from_folder(tiny_folder)
    render_settings = config.RenderConfig(steps=20, seed=2)
    sessions = {
        "train": lambda: train.train_classifier(settings, dataset, runs_dir=tmp_path),
        "render": lambda: visualize.render(shared, 1, render_settings),
        "attack": lambda: attack.make_attack(config.AttackConfig(
            method="pgd", epsilon=8.0, steps=10, seed=3))(shared, images, labels[:4]),
    }
    alone = {name: session() for name, session in sessions.items()}
    before = weights_digest(shared)
    with concurrent.futures.ThreadPoolExecutor(len(sessions) * 2) as pool:
        futures = {(name, copy): pool.submit(session) for name, session in sessions.items()
                   for copy in range(2)}  # two visitors per kind: six sessions at once
        together = {key: future.result(timeout=600) for key, future in futures.items()}
    assert weights_digest(shared) == before
    for copy in range(2):
        np.testing.assert_array_equal(together["attack", copy].adversarial,
                                      alone["attack"].adversarial)
        np.testing.assert_allclose(together["render", copy].image, alone["render"].image,
                                   atol=1e-3)
        trained = together["train", copy]
        assert trained.info["history"] == alone["train"].info["history"]
        assert trained.run_id != alone["train"].run_id
    assert len(runs.list_runs(tmp_path)) == 3


def test_trainings_take_turns_in_order_and_a_waiting_one_can_be_cancelled():
    import threading
    import time

    import pytest

    turns, order, phases = train.Turns(), [], []
    inside, release, stop = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with turns.turn():
            inside.set()
            release.wait(10)
            order.append("first")

    def second() -> None:
        with turns.turn(lambda step, total, metrics: phases.append(metrics["phase"])):
            order.append("second")

    def third() -> None:
        with pytest.raises(train.TrainingCancelled, match="waiting for its turn"):
            with turns.turn(should_stop=stop.is_set):
                order.append("third")

    threads = [threading.Thread(target=work) for work in (first, second, third)]
    threads[0].start()
    inside.wait(10)
    for count, thread in ((2, threads[1]), (3, threads[2])):
        thread.start()
        while turns.ahead() < count:
            time.sleep(0.01)
    stop.set()
    threads[2].join(10)
    release.set()
    for thread in threads[:2]:
        thread.join(10)
    assert order == ["first", "second"] and turns.ahead() == 0
    assert phases[0] == "waiting: 1 training(s) ahead"


def test_a_failing_progress_callback_gives_its_place_in_the_queue_up():
    import pytest

    turns = train.Turns()

    def broken(step, total, metrics):
        raise RuntimeError("the page went away")
    with turns.turn():
        with pytest.raises(RuntimeError, match="went away"):
            with turns.turn(broken):
                pass
        assert turns.ahead() == 1  # only the holder: the failed waiter left the queue
    with turns.turn():  # and the next one gets its turn at once
        assert turns.ahead() == 1
