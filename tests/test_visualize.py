"""Ideal images: the class logit climbs, and TV falls as its weight rises."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tlcore import config, images, models, visualize


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


def test_the_clean_preset_climbs_too(tiny_run):
    model = tiny_run.load_model()
    target = tiny_run.classes.index("red")
    result = visualize.render(model, target, visualize.preset("clean", 32, steps=150))
    assert result.probability > 0.9, result.probability
    assert result.logit_trace[-1] > result.logit_trace[0]


def test_a_sweep_renders_one_image_per_weight_and_tv_falls(tiny_run):
    model = tiny_run.load_model()
    weights = [0.0, 0.1, 1.0]
    results = visualize.render_sweep(model, 0, config.RenderConfig(steps=40), weights)
    assert [r.tv_weight for r in results] == weights
    values = [r.total_variation for r in results]
    assert values[0] > values[1] > values[2], values
    # The same start and settings alone give the same image as the sweep's member.
    alone = visualize.render(model, 0, config.RenderConfig(steps=40, tv_weight=0.1))
    np.testing.assert_allclose(alone.image, results[1].image, atol=0.05)


def test_a_sweep_reports_every_step_asked_with_all_its_images_and_can_stop(tiny_run):
    model = tiny_run.load_model()
    calls = []
    results = visualize.render_sweep(
        model, 0, config.RenderConfig(steps=6), [0.0, 1.0], report_every=1,
        on_step=lambda *event: calls.append(event), should_stop=lambda: len(calls) >= 4)
    assert [step for step, _, _ in calls] == [1, 2, 3, 4]
    assert {total for _, total, _ in calls} == {6}
    assert calls[-1][2]["images"].shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(calls[-1][2]["image"], calls[-1][2]["images"][0])
    assert len(results[0].objective_trace) == 4  # stopped early, keeping what it had


def test_a_render_measures_its_pace_and_expects_the_next(tiny_run):
    model = tiny_run.load_model()
    assert visualize.expected_seconds(model, 10, 3) is None  # never rendered: unknown
    result = visualize.render_sweep(model, 0, config.RenderConfig(steps=8), [0.0, 0.1, 1.0])[0]
    assert result.first_step_seconds > 0 and result.step_seconds > 0
    assert result.first_step_seconds + 7 * result.step_seconds <= result.seconds
    expected = visualize.expected_seconds(model, 8, 3)
    assert expected == pytest.approx(result.first_step_seconds + 7 * result.step_seconds)
    # Another batch size is scaled per image from the nearest measured one.
    assert visualize.expected_seconds(model, 8, 6) == pytest.approx(2 * expected)
    assert visualize.expected_seconds(model, 15, 3) > expected


def test_the_fourier_image_stays_in_bounds_and_inverts_a_start():
    start = np.random.default_rng(1).uniform(10, 245, (1, 16, 16, 3)).astype(np.float32)
    fourier = visualize.FourierImage((1, 16, 16, 3), start)
    np.testing.assert_allclose(fourier.image().numpy(), start, atol=0.05)
    fourier.variable.assign(fourier.variable * 1000.0)  # a wild step
    pixels = fourier.image().numpy()
    assert pixels.min() >= 0.0 and pixels.max() <= 255.0


def test_a_compiled_step_equals_the_eager_one(tiny_run):
    model = tiny_run.load_model()
    # Plain gradient steps: Adam's first steps are about lr x sign(gradient), so a
    # component whose gradient is ~0 would turn a rounding difference between the graph and
    # the eager run into a full step.
    settings = visualize.preset("clean", 32, steps=3, optimizer="sgd", l2_weight=0.01,
                                l1_weight=0.01, blur_weight=0.1, tv_weight=0.05)
    compiled = visualize.render(model, 1, settings)
    eager = visualize.render(model, 1, settings, compiled=False)
    np.testing.assert_allclose(compiled.image, eager.image, atol=0.01)  # of 255
    np.testing.assert_allclose(compiled.objective_trace, eager.objective_trace, rtol=1e-4)


def test_objectives_compose_and_a_channel_can_be_climbed(tiny_run):
    model = tiny_run.load_model()
    objective = visualize.channel("block3_conv", 5) - 0.1 * visualize.class_logit(2)
    assert objective.layers == ("block3_conv",) and objective.target == 2
    assert objective.description == "channel[block3_conv:5] - 0.1 * logit[2]"
    result = visualize.render(model, visualize.channel("block3_conv", 5),
                              config.RenderConfig(steps=30, tv_weight=0.0))
    assert result.target is None and result.probability is None
    assert result.objective_trace[-1] > result.objective_trace[0]
    with pytest.raises(ValueError, match="no layer named"):
        visualize.render(model, visualize.channel("nope", 0), config.RenderConfig(steps=1))


def test_penalties_by_hand():
    image = np.full((1, 4, 4, 3), 127.5, dtype=np.float32)
    image[0, 0, 0, :] = 127.5 + 48.0
    assert float(visualize.l1_from_grey(tf.constant(image))[0]) == pytest.approx(48.0 / 16)
    assert float(visualize.blur_distance(tf.constant(image))[0]) > 0
    assert float(visualize.blur_distance(tf.constant(np.full((1, 4, 4, 3), 9.0, np.float32)))[0]) == 0


def test_the_lesson_preset_is_its_recipe():
    lesson = visualize.preset("lesson", 224)
    assert lesson.tv_weight == pytest.approx(0.005 * 299_712)
    assert (lesson.optimizer, lesson.learning_rate, lesson.objective,
            lesson.objective_weight, lesson.steps) == ("sgd", 1.0, "probability", 10.0, 1000)
    with pytest.raises(ValueError, match="preset='nope'"):
        visualize.preset("nope", 224)
    with pytest.raises(ValueError, match="parameterization"):
        config.RenderConfig(parameterization="wavelet")


@pytest.mark.slow
def test_the_lesson_moves_pixels_as_far_on_a_rescaling_model(two_conventions):
    """The lesson's steps of 1 pixel were made for an input in pixels; behind [-1, 1] the
    same network's pixel gradient is 127.5 times smaller, and the image stayed grey. With
    the class term scaled by the input scale the first steps move pixels as far."""
    caffe_like, rescaling = two_conventions
    assert models.input_scale(caffe_like) == pytest.approx(1.0)
    assert models.input_scale(rescaling) == pytest.approx(1 / 127.5)
    moved = []
    for model in (caffe_like, rescaling):
        settings = visualize.preset("lesson", 16, input_scale=models.input_scale(model),
                                    steps=20, tv_weight=0.0)
        start = visualize.start_noise(16, settings.seed, settings.noise_std)
        image = visualize.render(model, 1, settings).image
        moved.append(float(np.sqrt(np.mean((image - start) ** 2))))
    assert moved[0] > 0.05, moved  # the lesson's own case moves at all
    assert 0.5 < moved[1] / moved[0] < 2.0, moved


def test_the_lesson_says_what_it_scaled():
    assert visualize.lesson_note(1.0) == ""
    assert visualize.lesson_class_weight(1.0) == 10.0
    note = visualize.lesson_note(1 / 127.5)
    assert "127.5" in note and "1275 x" in note
    assert visualize.preset("lesson", 96, input_scale=1 / 127.5).objective_weight == pytest.approx(1275)


@pytest.mark.parametrize("name, scale", [("vgg16", 1.0), ("mobilenet_v2", 1 / 127.5),
                                         ("mobilenet_v3_small", 1 / 127.5),
                                         ("scratch_cnn", 1 / 255)])
def test_input_scale_reads_preprocessing_and_built_in_rescaling(name, scale):
    from tlcore import backbones

    body = backbones.build_backbone(name, weights=None, input_size=32)
    classifier = models.build_classifier(name, body, 3)
    assert models.input_scale(classifier) == pytest.approx(scale, rel=1e-5)


def test_the_lesson_objective_is_minus_the_cross_entropy(tiny_run):
    model = tiny_run.load_model()
    result = visualize.render(model, 1, config.RenderConfig(steps=60, objective="probability",
                                                            tv_weight=0.0))
    # The trace is log p of the class, so it ends near log(probability).
    assert result.objective_trace[-1] == pytest.approx(np.log(result.probability), abs=0.05)


def test_every_preset_is_one_table_entry_and_overrides_win():
    for name, entry in visualize.PRESETS.items():
        settings = visualize.preset(name, 32, input_scale=0.5)
        assert entry.label and settings == entry.settings(32, 0.5)
        assert visualize.preset(name, 32, steps=7, seed=3).steps == 7
    custom = visualize.preset("custom", 32)  # the recipe the page and the command line start from
    assert (custom.optimizer, custom.parameterization, custom.objective) == ("adam", "pixels",
                                                                             "logit")


@pytest.mark.slow
def test_the_package_loads_tensorflow_only_when_a_renderer_is_used():
    import subprocess
    import sys

    code = ("import sys; from tlcore import visualize; visualize.preset('lesson', 32); "
            "print('tensorflow' in sys.modules); from tlcore.visualize import render, rendering; "
            "print(render is rendering.render, 'render' in dir(visualize))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=300, check=True).stdout.split()
    assert shown == ["False", "True", "True"]
