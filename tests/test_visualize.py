"""Ideal images: the class logit climbs, and TV falls as its weight rises."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tlcore import config, images, visualize


def test_tf_total_variation_matches_numpy():
    image = np.random.default_rng(0).uniform(0, 255, (6, 5, 3)).astype(np.float32)
    value = float(visualize.total_variation(tf.constant(image[None]))[0])
    assert value == pytest.approx(images.total_variation(image), rel=1e-5)


def test_render_climbs_the_class_and_stays_in_pixel_range(tiny_run):
    model = tiny_run.load_model()
    target = tiny_run.classes.index("green")
    calls = []
    result = visualize.render(model, target, config.RenderConfig(steps=100, tv_weight=0.0),
                              on_step=lambda *event: calls.append(event))
    assert result.logit_trace[-1] > result.logit_trace[0]
    assert result.probability > 0.9
    assert result.image.min() >= 0 and result.image.max() <= 255
    assert calls and calls[-1][0] == 100 and calls[-1][2]["image"].shape == (32, 32, 3)


def test_total_variation_falls_as_its_weight_rises(tiny_run):
    model = tiny_run.load_model()
    values = [visualize.render(model, 0, config.RenderConfig(steps=40, tv_weight=weight)).total_variation
              for weight in (0.0, 0.1, 1.0)]
    assert values[0] > values[1] > values[2], values


def test_render_is_seeded_and_refuses_bad_targets(tiny_run):
    model = tiny_run.load_model()
    settings = config.RenderConfig(steps=3, seed=7)
    first = visualize.render(model, 1, settings)
    assert np.array_equal(first.image, visualize.render(model, 1, settings).image)
    with pytest.raises(ValueError, match="target=9"):
        visualize.render(model, 9, settings)
    with pytest.raises(ValueError, match="tv_weight"):
        config.RenderConfig(tv_weight=-1)
