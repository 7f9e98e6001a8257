"""A robust training stopped by a dying server resumes robustly: its checkpoint keeps the
budget, the method and the steps, the resumed epochs attack their batches with them, and the
finished run records them."""
from __future__ import annotations

import pytest

from tlcore import adversarial, checkpoints, config, data, train

ROBUST = {"adversarial_epsilon": 3.0, "adversarial_method": "pgd", "adversarial_steps": 2}


@pytest.mark.slow
def test_a_robust_training_resumes_with_its_budget_method_and_steps(
        tiny_folder, tmp_path, server_died, die_in_epoch, monkeypatch):
    settings = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="end-to-end",
                                  epochs=2, image_size=32, batch_size=8, patience=0, **ROBUST)
    with pytest.raises(server_died):
        train.train_classifier(settings, data.from_folder(tiny_folder), runs_dir=tmp_path,
                               on_step=die_in_epoch(2))
    [interrupted] = checkpoints.list_interrupted(tmp_path)
    assert interrupted.epochs_done == 1
    resumed_settings = interrupted.train_config()
    assert {key: getattr(resumed_settings, key) for key in ROBUST} == ROBUST

    trainers = []

    def kept(classifier, train_config):
        trainers.append(real_trainer(classifier, train_config))
        return trainers[-1]

    real_trainer = adversarial.trainer
    monkeypatch.setattr(adversarial, "trainer", kept)
    run = train.resume_training(interrupted)
    [trainer] = trainers  # the resumed epoch's fit trained on attacked batches
    assert isinstance(trainer, adversarial.AdversarialTraining)
    assert (trainer.epsilon, trainer.method, trainer.attack_steps) == (3.0, "pgd", 2)
    assert run.info["resumed_from_epoch"] == 1 and len(run.info["history"]["loss"]) == 2
    assert {key: run.info["config"][key] for key in ROBUST} == ROBUST
