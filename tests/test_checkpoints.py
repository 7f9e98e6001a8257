"""Interrupted trainings leave a per-epoch checkpoint and resume from it."""
from __future__ import annotations

import unittest.mock

import numpy as np
import pytest

from tlcore import backbones, checkpoints, config, data, evaluate, runs, train


@pytest.mark.slow
def test_end_to_end_resumes_from_the_last_finished_epoch(tiny_folder, tmp_path,
                                                         interrupted_training):
    interrupted = interrupted_training(tiny_folder, tmp_path, epochs=5, crash_epoch=3)
    assert runs.list_runs(tmp_path) == []  # nothing half-written is listed
    assert interrupted.epochs_done == 2 and len(interrupted.state["history"]["loss"]) == 2
    assert "epoch 2/5" in interrupted.label()

    resumed_epochs = []
    run = train.resume_training(interrupted, on_step=lambda s, t, m: resumed_epochs.append(
        m["epoch"]) if m.get("epoch_end") else None)
    assert resumed_epochs == [3, 4, 5]
    assert len(run.info["history"]["loss"]) == 5 and run.info["resumed_from_epoch"] == 2
    assert run.run_id == interrupted.run_id and checkpoints.list_interrupted(tmp_path) == []
    report = evaluate.evaluate_run(run, "validation")
    assert report["accuracy"] == pytest.approx(run.info["metrics"]["val_accuracy"])


@pytest.mark.slow
def test_fine_tuning_resumes_in_its_second_stage(tiny_folder, tmp_path, server_died, die_in_epoch):
    weights = tmp_path / "body.weights.h5"
    backbones.build_backbone("scratch_cnn", weights=None, input_size=32).save_weights(str(weights))
    train_config = config.TrainConfig(backbone="scratch_cnn", weights=str(weights),
                                      mode="fine-tune", epochs=3, head_epochs=2, image_size=32,
                                      patience=0, augment=False)
    dataset = data.from_folder(tiny_folder)
    with pytest.raises(server_died):
        train.train_classifier(train_config, dataset, runs_dir=tmp_path / "runs",
                               on_step=die_in_epoch(2, "fine-tuning"))
    [interrupted] = checkpoints.list_interrupted(tmp_path / "runs")
    assert interrupted.epochs_done == 1
    assert len(interrupted.state["history"]["loss"]) == 3  # 2 head epochs + 1 fine-tuning
    run = train.resume_training(interrupted)
    assert run.info["head_epochs"] == 2 and len(run.info["history"]["loss"]) == 5
    assert run.info["trainable_blocks"] == config.FINE_TUNE_BLOCKS


@pytest.mark.slow
def test_a_checkpoint_holds_the_weights_of_its_epoch(tiny_folder, tmp_path, interrupted_training):
    interrupted = interrupted_training(tiny_folder, tmp_path)
    body = backbones.build_backbone("scratch_cnn", weights=None, input_size=32)
    from tlcore import models
    model = models.build_classifier("scratch_cnn", body, 3, freeze_batch_norm=False)
    interrupted.load_weights(model)
    saved = np.load(interrupted.folder / interrupted.state["weights_file"])
    assert np.array_equal(model.get_weights()[0], saved["weight_0"])
    assert sorted(path.name for path in interrupted.folder.iterdir()) == [
        "best-0001.npz", "epoch-0001.npz", "state.json"]  # older epochs' files are gone


@pytest.mark.slow
def test_resume_continues_the_optimiser_and_its_schedule(tiny_folder, tmp_path,
                                                         interrupted_training):
    interrupted = interrupted_training(tiny_folder, tmp_path, epochs=4, crash_epoch=3)
    steps_per_epoch = -(-len(data.from_folder(tiny_folder).splits["train"]) // 8)
    iterations = interrupted.optimizer_state()[0]
    assert int(iterations) == 2 * steps_per_epoch  # Adam's step count: the schedule's clock
    seen = {}
    real_restore = checkpoints.restore_optimizer

    def spy(model, checkpoint):
        seen["model"] = model
        return real_restore(model, checkpoint)

    with unittest.mock.patch.object(checkpoints, "restore_optimizer", spy):
        train.resume_training(interrupted)
    # Two epochs restored plus two trained: fit went on from the restored count.
    assert int(seen["model"].optimizer.iterations.numpy()) == 4 * steps_per_epoch


@pytest.mark.slow
def test_finished_and_cancelled_trainings_leave_no_checkpoint(tiny_folder, tmp_path):
    train_config = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="end-to-end",
                                      epochs=2, image_size=32)
    train.train_classifier(train_config, data.from_folder(tiny_folder), runs_dir=tmp_path)
    assert checkpoints.list_interrupted(tmp_path) == []
    with pytest.raises(train.TrainingCancelled):
        train.train_classifier(train_config, data.from_folder(tiny_folder), runs_dir=tmp_path,
                               should_stop=lambda: True)
    assert checkpoints.list_interrupted(tmp_path) == []


@pytest.mark.slow
def test_resume_refuses_changed_data(tmp_path, make_image_folder, interrupted_training):
    folder = make_image_folder(tmp_path / "set", per_class=6)
    interrupted = interrupted_training(folder, tmp_path / "r")
    (folder / "red" / "red_000.png").unlink()
    with pytest.raises(ValueError, match="changed since training"):
        train.resume_training(interrupted)


@pytest.mark.slow
def test_a_checkpoint_of_a_live_process_is_not_interrupted(tiny_folder, tmp_path,
                                                           interrupted_training):
    import json
    import subprocess
    import sys
    interrupted = interrupted_training(tiny_folder, tmp_path)
    state_path = interrupted.folder / checkpoints.STATE_FILE
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        state_path.write_text(json.dumps({**interrupted.state, "pid": other.pid}))
        assert checkpoints.list_interrupted(tmp_path) == []
    finally:
        other.kill()
        other.wait()
    assert len(checkpoints.list_interrupted(tmp_path)) == 1


@pytest.mark.slow
def test_a_checkpoint_without_its_weights_file_is_not_offered(tiny_folder, tmp_path,
                                                              interrupted_training):
    interrupted = interrupted_training(tiny_folder, tmp_path)
    (interrupted.folder / interrupted.state["weights_file"]).unlink()  # killed mid-write
    assert checkpoints.list_interrupted(tmp_path) == []
    with pytest.raises(ValueError, match="has no weights yet"):
        checkpoints.load(interrupted.folder)
