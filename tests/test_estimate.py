"""Time estimates before a training starts (tlcore.estimate)."""
from __future__ import annotations

import numpy as np
import pytest

from tlcore import backbones, config, data, estimate, models, runs, train


@pytest.mark.parametrize("name", backbones.names())
def test_registry_gflops_are_counted_from_the_model(name):
    body = backbones.build_backbone(name, weights=None, input_size=224)
    assert backbones.get_spec(name).gflops == pytest.approx(models.forward_gflops(body),
                                                            rel=0.02)


def test_image_size_follows_config_then_data_then_backbone(tiny_folder):
    dataset = data.from_folder(tiny_folder)
    assert estimate.resolve_image_size(config.TrainConfig(image_size=64), dataset) == 64
    assert estimate.resolve_image_size(config.TrainConfig(backbone="resnet50"), dataset) == 224
    demo_like = data.Dataset("d", ("a", "b"), (), np.zeros(0, int), {}, native_size=96)
    assert estimate.resolve_image_size(config.TrainConfig(), demo_like) == 96


def test_estimate_counts_passes_and_knows_the_embedding_cache(tiny_folder, tmp_path):
    dataset = data.from_folder(tiny_folder)
    fast = config.TrainConfig(backbone="vgg16", weights="edges", mode="fast", image_size=32)
    before = estimate.training_seconds(fast, dataset)
    assert not before.cached and before.parts["embedding"] > 0
    run = train.train_classifier(fast, dataset, runs_dir=tmp_path)
    assert run.info["estimated_seconds"] == pytest.approx(before.seconds, abs=0.01)
    after = estimate.training_seconds(fast, dataset)
    assert after.cached and "embedding" not in after.parts and after.seconds < before.seconds
    # Twice the images' side is four times the pixels: four times each image's pass.
    large = estimate.training_seconds(config.TrainConfig(
        backbone="vgg16", weights="edges", mode="end-to-end", image_size=64, epochs=2), dataset)
    small = estimate.training_seconds(config.TrainConfig(
        backbone="vgg16", weights="edges", mode="end-to-end", image_size=32, epochs=2), dataset)
    work = [(value.parts["training"] - estimate.TRACE_SECONDS) for value in (large, small)]
    assert work[0] == pytest.approx(4 * work[1])
    assert "about" in large.describe() and "training" in large.describe()
    faster = estimate.training_seconds(config.TrainConfig(
        backbone="vgg16", weights="edges", mode="end-to-end", image_size=64, epochs=2), dataset,
        speed=2.0)
    assert faster.parts["scoring"] == pytest.approx(large.parts["scoring"] / 2)


def test_speed_comes_from_this_servers_latest_runs(tmp_path):
    def made(estimated, actual, cancelled=False):
        return runs.Run(tmp_path, {"estimated_seconds": estimated, "cancelled": cancelled,
                                   "metrics": {"seconds": actual}})

    assert estimate.speed_from_runs([]) == 1.0
    assert estimate.speed_from_runs([made(20, 10), made(30, 10), made(10, 10)]) == 2.0
    # Cancelled runs and runs without an estimate say nothing; only the latest count.
    latest = [made(20, 10), made(5, 100, cancelled=True), runs.Run(tmp_path, {})]
    assert estimate.speed_from_runs(latest + [made(1, 100)] * 10) == pytest.approx(0.01)
    assert estimate.speed_from_runs([made(40, 10)] * 5 + [made(1, 100)] * 10) == 4.0


def test_adversarial_training_counts_the_attacks_passes(tiny_folder):
    """Each attack step is a forward pass and a gradient back to the pixels for every
    training image and epoch: FGSM-RS one step, PGD its steps; fine-tuning pays them through
    the frozen layers too. A fast run cannot be robust (the config refuses it)."""
    dataset = data.from_folder(tiny_folder)

    def seconds(mode="end-to-end", **adversarial):
        return estimate.training_seconds(config.TrainConfig(
            backbone="vgg16", weights="edges", mode=mode, image_size=64, epochs=2,
            **adversarial), dataset)

    standard, fgsm = seconds(), seconds(adversarial_epsilon=4.0)
    pgd = seconds(adversarial_epsilon=4.0, adversarial_method="pgd", adversarial_steps=7)
    assert "attacks" not in standard.parts
    assert standard.seconds < fgsm.seconds < pgd.seconds
    assert pgd.parts["attacks"] == pytest.approx(7 * fgsm.parts["attacks"])
    assert fgsm.parts["training"] == standard.parts["training"]
    tuned, tuned_robust = seconds("fine-tune"), seconds("fine-tune", adversarial_epsilon=4.0)
    assert tuned_robust.parts["attacks"] == fgsm.parts["attacks"]
    assert tuned_robust.seconds > tuned.seconds
    assert "attacks" in pgd.describe()
