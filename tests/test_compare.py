"""The robustness lab's comparisons of two runs, on two small runs of different sides."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tlcore import compare, config, data, evaluate, models, train, visualize


@pytest.fixture(scope="module")
def small_run(tiny_folder):
    """A second run of the tiny folder (same split seed) at another side: 48 px."""
    train_config = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="end-to-end",
                                      epochs=4, image_size=48, batch_size=8, seed=0,
                                      learning_rate=5e-3, patience=0)
    return train.train_classifier(train_config, data.from_folder(tiny_folder))


@pytest.fixture(scope="module")
def pair(tiny_run, small_run):
    """The two runs' models and their validation images, each at its own side."""
    compare.check_pair(tiny_run, small_run)
    dataset = evaluate.dataset_of(tiny_run)
    chosen = evaluate.sample_split(dataset, "validation", 6)
    loaded = [evaluate.sample_pixels(dataset, chosen, run.image_size)
              for run in (tiny_run, small_run)]
    pixels = [images.astype(np.float32) for images, _ in loaded]
    return [tiny_run.load_model(), small_run.load_model()], pixels, loaded[0][1]


def test_runs_of_other_data_or_classes_or_the_same_run_are_refused(tiny_run, small_run):
    with pytest.raises(ValueError, match="two different runs"):
        compare.check_pair(tiny_run, tiny_run)
    other_split = dataclasses.replace(small_run, info={
        **small_run.info, "data": {**small_run.info["data"], "seed": 1}})
    with pytest.raises(ValueError, match="same data set and split seed"):
        compare.check_pair(tiny_run, other_split)
    other_classes = dataclasses.replace(small_run, info={**small_run.info,
                                                         "classes": ["a", "b"]})
    with pytest.raises(ValueError, match="different classes"):
        compare.check_pair(tiny_run, other_classes)


def test_robustness_pair_is_each_models_curve_in_one_count(pair):
    pair_models, pixels, labels = pair
    reports = []
    curves = compare.robustness_pair(pair_models, pixels, labels, [0, 4], steps=2,
                                     on_step=lambda done, total, metrics:
                                     reports.append((done, total, metrics["detail"])))
    assert len(curves) == 2
    for model, images, curve in zip(pair_models, pixels, curves):
        clean = models.predict_logits(model, images).argmax(-1) == labels
        assert curve["pgd"][0]["accuracy"] == pytest.approx(clean.mean())
        assert len(curve["fgsm"][1]["per_class"]) == 3
    totals = {total for _, total, _ in reports}
    assert len(totals) == 1 and reports[-1][0] == totals.pop()
    assert [done for done, _, _ in reports] == sorted(done for done, _, _ in reports)
    assert reports[0][2].startswith("model A") and reports[-1][2].startswith("model B")


def test_transfer_table_scores_each_attack_with_both_models(pair):
    pair_models, pixels, labels = pair
    table = compare.transfer_table(pair_models, pixels, labels,
                                   config.AttackConfig(method="pgd", epsilon=8, steps=3))
    assert [len(row) for row in table] == [2, 2]
    for number, (model, images) in enumerate(zip(pair_models, pixels)):
        own = table[number][number]
        clean = models.predict_logits(model, images).argmax(-1) == labels
        assert own["clean_accuracy"] == pytest.approx(clean.mean())
        for cell in table[number]:
            assert 0 <= cell["accuracy"] <= 1 and 0 <= cell["fooled"] <= 1
            assert cell["images"] == len(labels)
    # the other model scores the resized clean images: its accuracy on them is its own
    scorer = pair_models[1]
    resized = models.fit_input(scorer, pixels[0])
    assert resized.shape[1] == 48
    clean = models.predict_logits(scorer, resized).argmax(-1) == labels
    assert table[0][1]["clean_accuracy"] == pytest.approx(clean.mean())


def test_render_classes_batches_what_one_render_per_class_gives(tiny_run):
    model = tiny_run.load_model()
    settings = visualize.preset("custom", 32, steps=12, transforms=False)
    together = visualize.render_classes(model, [2, 0], settings)
    assert [result.target for result in together] == [2, 0]
    for result in together:
        alone = visualize.render(model, result.target, settings)
        np.testing.assert_allclose(result.image, alone.image, atol=0.05)
        assert result.probability == pytest.approx(alone.probability, abs=1e-4)


def test_render_classes_keeps_to_the_sweep_limit_and_reports_one_count(tiny_run, monkeypatch):
    real_limits = config.limits
    monkeypatch.setattr(config, "limits", 
                        lambda: dataclasses.replace(real_limits(), sweep_images=2))
    model = tiny_run.load_model()
    reports = []
    settings = visualize.preset("custom", 32, steps=4, transforms=False)
    results = visualize.render_classes(model, [0, 1, 2], settings, report_every=2,
                                       on_step=lambda done, total, metrics:
                                       reports.append((done, total, len(metrics["images"]))))
    assert len(results) == 3
    assert visualize.class_render_steps(3, 4) == 8
    assert reports == [(2, 8, 2), (4, 8, 2), (6, 8, 1), (8, 8, 1)]
    with pytest.raises(ValueError, match="indices"):
        visualize.render_classes(model, [3], settings)


def test_ideal_pair_renders_every_class_for_both_at_their_sides(pair):
    pair_models = pair[0]
    rendered = compare.ideal_pair(pair_models, [0, 1, 2], "custom",
                                  overrides={"steps": 3})
    assert [[result.target for result in results] for results in rendered] == [[0, 1, 2]] * 2
    assert rendered[0][0].image.shape == (32, 32, 3)
    assert rendered[1][0].image.shape == (48, 48, 3)
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 1
    stopped = compare.ideal_pair(pair_models, [0, 1, 2], "custom", overrides={"steps": 3},
                                 should_stop=stop)
    assert len(stopped) == 1


def test_alignment_is_the_share_a_judge_calls_the_intended_class(pair):
    pair_models = pair[0]
    rendered = compare.ideal_pair(pair_models, [0, 1, 2], "custom", overrides={"steps": 20})
    images = np.stack([result.image for result in rendered[0]])
    own = compare.alignment(pair_models[0], images, [0, 1, 2])
    expected = np.mean([result.probabilities.argmax() == result.target
                        for result in rendered[0]])
    assert own["share"] == pytest.approx(expected)
    other = compare.alignment(pair_models[1], images, [0, 1, 2])
    probabilities = compare.verdicts(pair_models[1], images)
    assert probabilities.shape == (3, 3)
    assert other["predicted"] == probabilities.argmax(-1).tolist()
