"""Visitors at once: a training, a render and an attack on one shared model, together.

The shared model must come out bit-for-bit unchanged, and each session must get exactly
what it gets alone (no crosstalk through random seeds, compiled functions or weights).
"""
from __future__ import annotations

import concurrent.futures
import hashlib

import numpy as np
import pytest

from tlcore import attack, config, data, evaluate, runs, train, visualize


def weights_digest(model) -> str:
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


@pytest.mark.slow
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
