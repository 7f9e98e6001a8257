"""Attacks respect their budget in the saved 8-bit image, and PGD beats FGSM."""
from __future__ import annotations

import numpy as np
import pytest

from tlcore import attack, config, data, evaluate


@pytest.fixture(scope="module")
def model_and_images(tiny_run):
    images, labels = data.load_dataset(tiny_run.info["data"]["source"]).split_arrays("train", 32)
    return tiny_run.load_model(), images.astype(np.float32), labels


@pytest.mark.parametrize("epsilon", [0.6, 2.5, 8.0])
@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_budget_bounds_and_whole_pixels(model_and_images, method, epsilon):
    model, images, labels = model_and_images
    result = attack.make_attack(config.AttackConfig(method=method, epsilon=epsilon, steps=5))(
        model, images[:6], labels[:6])
    assert (np.abs(result.adversarial - result.clean) <= epsilon + 1e-6).all()
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 255
    assert np.array_equal(result.adversarial, np.round(result.adversarial))
    assert (result.linf <= epsilon).all()
    again = evaluate.predict_logits(model, result.adversarial).argmax(-1)
    assert np.array_equal(again != labels[:6], result.success)


def test_pgd_succeeds_at_least_as_often_as_fgsm(model_and_images):
    model, images, labels = model_and_images
    rates = {}
    for method in ("fgsm", "pgd"):
        result = attack.make_attack(config.AttackConfig(method=method, epsilon=16, steps=10))(
            model, images, labels)
        rates[method] = result.success.mean()
    assert rates["pgd"] >= rates["fgsm"] and rates["pgd"] > 0.5, rates


def test_targeted_pgd_reaches_the_target(model_and_images):
    model, images, labels = model_and_images
    target = 0
    chosen = labels != target
    result = attack.PGD(epsilon=32, steps=20)(model, images[chosen][:6], labels[chosen][:6],
                                              target=target)
    assert result.success.mean() >= 0.8
    assert (result.adversarial_logits.argmax(-1)[result.success] == target).all()


def test_attack_settings_and_inputs_are_checked(model_and_images):
    model, images, _ = model_and_images
    with pytest.raises(ValueError, match="epsilon"):
        attack.FGSM(epsilon=0)
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        attack.FGSM(epsilon=4)(model, images[:1] / 255.0 - 1.0)
    with pytest.raises(ValueError, match="target=7"):
        attack.FGSM(epsilon=4)(model, images[:1], target=7)
    assert repr(attack.PGD(epsilon=4, steps=3)).startswith("PGD(epsilon=4.0, steps=3")
