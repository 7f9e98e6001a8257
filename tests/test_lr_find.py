"""The learning-rate finder: an exponential sweep of one batch per rate that stops where the
smoothed loss blows up, rules that read a rate below that point, a rate that trains better
than one 100x higher, and the Train page's panel that puts it into the form."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from tlcore import backbones, config, data, lr_curve, lr_find, train
from tlcore.fitting import TrainingCancelled, TrainingDiverged

SCRATCH = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="end-to-end",
                             image_size=32, batch_size=8, patience=0)


def _falling_then_blowing_up() -> tuple[np.ndarray, np.ndarray, int]:
    """A smoothed curve as range tests draw it: flat, falling around 1e-3, blowing up past
    0.1; returns the rates, the losses and where the blow-up starts."""
    rates = np.geomspace(1e-7, 10, 100)
    position = np.log10(rates)
    losses = 0.3 + 2.0 / (1 + np.exp(3 * (position + 3)))  # 2.3 falling to 0.3
    blowing_up = int(np.searchsorted(rates, 0.1))
    losses[blowing_up:] += np.geomspace(0.05, 50, len(rates) - blowing_up)
    return rates, losses, blowing_up


def test_every_rule_reads_a_rate_where_the_loss_falls_before_it_blows_up():
    rates, losses, blowing_up = _falling_then_blowing_up()
    found = lr_curve.suggest(rates, losses, len(rates))
    assert set(found) == set(lr_curve.RULES)
    for suggestion in found.values():
        assert rates[10] <= suggestion.learning_rate < rates[blowing_up], suggestion
        assert suggestion.loss == pytest.approx(np.interp(
            math.log(suggestion.learning_rate), np.log(rates), losses))
    falling = (rates > 1e-5) & (rates < 1e-1)
    assert found["valley"].learning_rate in rates[falling]
    slopes = np.diff(losses) / np.diff(np.log(rates))
    assert found["steep"].learning_rate == rates[np.argmin(slopes[10:-5]) + 10]
    assert found["minimum"].learning_rate == pytest.approx(rates[np.argmin(losses)] / 10)
    assert lr_curve.DEFAULT_RULE in found and all(rule.explanation.endswith(".")
                                                 for rule in lr_curve.RULES.values())
    # Too short a curve (stopped early) suggests nothing rather than a guess.
    assert lr_curve.suggest(rates[:15], losses[:15], len(rates)) == {}


def _final_loss(train_config: config.TrainConfig, dataset: data.Dataset, runs_dir) -> float:
    try:
        run = train.train_classifier(train_config, dataset, runs_dir=runs_dir)
    except TrainingDiverged:
        return math.inf
    return math.inf if run.info.get("diverged") else run.info["history"]["loss"][-1]


@pytest.mark.slow
def test_a_sweep_grows_exponentially_stops_on_a_blow_up_and_its_rate_trains_better(
        make_image_folder, tmp_path, monkeypatch):
    # Its own home: "nothing saved" must not see another test's late cache writes.
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))
    dataset = data.from_folder(make_image_folder(tmp_path / "colours", per_class=16))
    runs_before = sorted(config.tlcore_home().rglob("*"))
    phases = set()
    result = lr_find.range_test(SCRATCH, dataset,
                                on_step=lambda step, total, metrics: phases.add(metrics["phase"]))
    assert sorted(config.tlcore_home().rglob("*")) == runs_before  # nothing saved
    rates, losses, smoothed = map(np.asarray, (result.learning_rates, result.losses,
                                               result.smoothed))
    assert rates[0] == lr_find.START
    assert np.allclose(np.diff(np.log(rates)), math.log(lr_find.END / lr_find.START) / 99)
    # The moving average with bias correction: its first value is the first loss.
    beta = lr_find.SMOOTHING
    assert smoothed[0] == pytest.approx(losses[0])
    assert smoothed[1] == pytest.approx((beta * (1 - beta) * losses[0] + (1 - beta) * losses[1])
                                        / (1 - beta ** 2))
    # It stopped at the first step whose smoothed loss passed 4x the lowest so far.
    assert result.ended == "diverged" and len(rates) < result.steps
    assert result.diverged_at == rates[-1]
    assert smoothed[-1] > lr_find.DIVERGE * smoothed.min()
    assert all(smoothed[i] <= lr_find.DIVERGE * smoothed[:i + 1].min()
               for i in range(len(smoothed) - 1))
    suggested = result.suggestion.learning_rate
    assert result.suggestion.rule == "valley" and suggested in rates
    assert lr_find.START <= suggested < result.diverged_at
    images = lr_find.sample_size(SCRATCH, dataset)
    assert result.images == images and images % SCRATCH.batch_size == 0
    assert {"trying learning rates", f"decoding {images} training images at 32 px"} <= phases
    described = lr_curve.describe(json.loads(json.dumps(result.to_dict())))
    assert f"Suggested learning rate: {suggested:.2g} (Valley" in described
    # Measured: two epochs at the suggested rate end lower than at 100x that rate.
    assert 100 * suggested < 1, suggested
    suggested_loss, higher_loss = (
        _final_loss(dataclasses.replace(SCRATCH, epochs=2, learning_rate=rate), dataset,
                    tmp_path / "runs") for rate in (suggested, 100 * suggested))
    print(f"suggested {suggested:.2g}: loss {suggested_loss:.3f}; 100x: {higher_loss:.3f}")
    assert suggested_loss < higher_loss


@pytest.mark.slow
def test_fine_tuning_trains_the_head_first_and_a_stopped_sweep_keeps_its_curve(
        make_image_folder, tmp_path):
    dataset = data.from_folder(make_image_folder(tmp_path / "colours", per_class=4))
    weights = tmp_path / "body.weights.h5"  # any weights file is a "pretrained" body
    backbones.build_backbone("scratch_cnn", input_size=32).save_weights(weights)
    fine_tune = config.TrainConfig(backbone="scratch_cnn", weights=str(weights),
                                   mode="fine-tune", image_size=32, batch_size=4, head_epochs=2)
    phases, tried = [], []

    def on_step(step: int, total: int, metrics: dict) -> None:
        phases.append(metrics["phase"])
        if step and metrics["phase"] == "trying learning rates":
            tried.append(metrics["learning_rate"])

    result = lr_find.range_test(fine_tune, dataset, steps=30, on_step=on_step,
                                should_stop=lambda: len(tried) >= 6)
    order = list(dict.fromkeys(phases))
    assert order.index("training the head first, as the training will") < order.index(
        "trying learning rates")
    assert result.ended == "stopped" and list(result.learning_rates) == tried
    assert result.suggestions == {} and result.suggestion is None  # too few to read
    assert result.settings["mode"] == "fine-tune"


def test_what_the_finder_cannot_take_is_refused_before_anything_runs(tiny_folder):
    dataset = data.from_folder(tiny_folder)
    refusals = [(config.TrainConfig(mode="fast"), {}, "feature extractor"),
                (config.TrainConfig(weights=None, mode="fine-tune"), {}, "end-to-end"),
                (SCRATCH, {"start": 1.0, "end": 0.1}, "0 < start < end"),
                (SCRATCH, {"steps": lr_find.MAX_STEPS + 1}, "steps"),
                (SCRATCH, {"diverge": 1.0}, "diverge")]
    for train_config, settings, message in refusals:
        with pytest.raises(ValueError, match=message):
            lr_find.range_test(train_config, dataset, **settings,
                               should_stop=pytest.fail)  # refused before any turn is taken
    with pytest.raises(TrainingCancelled):
        lr_find.range_test(SCRATCH, dataset, should_stop=lambda: True)


def _panel_page(folder: str, mode: str) -> None:
    """The panel under a stand-in for the training form."""
    from tlcore import config, data
    from ui import lr_finder

    train_config = config.TrainConfig(backbone="scratch_cnn", weights=None, mode=mode,
                                      image_size=32, batch_size=8)
    lr_finder.panel(train_config, data.from_folder(folder), key="lr")


@pytest.mark.slow
def test_the_panel_shows_the_curve_and_puts_the_chosen_rate_in_the_form(tiny_folder,
                                                                        monkeypatch):
    from streamlit.testing.v1 import AppTest

    from ui import lr_finder, state, training

    used: list[float] = []
    stubbed = not hasattr(training, "use_learning_rate")  # the Train page's, once it exists
    if stubbed:
        monkeypatch.setattr(training, "use_learning_rate", used.append, raising=False)
    fast = AppTest.from_function(_panel_page, args=(str(tiny_folder), "fast"),
                                 default_timeout=60).run()
    assert not fast.exception and fast.markdown[0].value == lr_finder.FAST_NOTE
    app = AppTest.from_function(_panel_page, args=(str(tiny_folder), "end-to-end"),
                                default_timeout=120).run()
    assert not app.exception, [error.value for error in app.exception]
    assert "At most" in app.caption[0].value
    app.select_slider(key="lr-steps").set_value(25).run()
    app.button(key="lr-run").click().run()
    assert not app.exception, [error.value for error in app.exception]
    result = app.session_state[state.LR_FOUND]["lr"][1]
    assert result.steps == 25 and app.radio(key="lr-rule").value == "valley"
    assert app.metric[0].value == f"{result.suggestion.learning_rate:.2g}"
    assert "Nothing was saved" in app.caption[-1].value
    app.radio(key="lr-rule").set_value("minimum").run()
    assert app.metric[0].value == f"{result.suggestions['minimum'].learning_rate:.2g}"
    app.button(key="lr-use").click().run()
    assert not app.exception, [error.value for error in app.exception]
    if stubbed:
        assert used == [result.suggestions["minimum"].learning_rate]
