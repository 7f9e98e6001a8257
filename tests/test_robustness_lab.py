"""The Robustness lab page: two runs of different image sizes, every comparison view."""
from __future__ import annotations

import pytest

from tests.test_app import by_label, open_page
from tlcore import config, data, train

LAB = "app_pages/robustness_lab.py"


@pytest.fixture(scope="module")
def robust_run(tiny_folder):
    """A robust run of the tiny folder (same split seed as `tiny_run`) at 48 px."""
    train_config = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="end-to-end",
                                      epochs=2, image_size=48, batch_size=8, seed=0,
                                      learning_rate=5e-3, patience=0, adversarial_epsilon=4)
    return train.train_classifier(train_config, data.from_folder(tiny_folder))


def clicked(app, label: str):
    """Press the button labelled `label` and check the page ran cleanly."""
    by_label(app.button, label).click().run()
    assert not app.exception, [error.value for error in app.exception]
    return app


@pytest.mark.slow
def test_the_lab_compares_a_standard_and_a_robust_run_of_different_sizes(tiny_run, robust_run):
    app = open_page(LAB)
    # other tests of this process may have saved newer runs: pick the pair
    by_label(app.selectbox, "Model A").set_value(tiny_run).run()
    by_label(app.selectbox, "Model B").set_value(robust_run).run()
    assert not app.exception, [error.value for error in app.exception]
    summary = app.dataframe[0].value
    assert [network.endswith(side) for network, side in
            zip(summary["network"], (", 32 px", ", 48 px"))] == [True, True]
    assert summary["training"].tolist() == ["standard", "robust, 4/255 FGSM-RS"]
    by_label(app.slider, "Validation images").set_value(6).run()
    by_label(app.number_input, "PGD steps").set_value(2).run()
    clicked(app, "Compute both curves")
    assert len(app.get("plotly_chart")) == 2  # both models' curves, then per class
    per_class = app.dataframe[-1].value
    assert per_class["class"].tolist() == tiny_run.classes
    assert {"A clean", "B at 4/255"} <= set(per_class.columns)

    app.session_state["compare-view"] = "Transfer"
    app.run()
    by_label(app.slider, "Validation images").set_value(6).run()
    by_label(app.number_input, "PGD steps").set_value(2).run()
    clicked(app, "Attack both and swap")
    table = app.dataframe[-1].value
    assert table["images made on"].tolist() == ["A (standard)", "B (robust 4/255)"]
    assert any("On its own model the attack flipped" in caption.value for caption in app.caption)

    app.session_state["compare-view"] = "Ideal images"
    app.run()
    by_label(app.select_slider, "Steps").set_value(50).run()
    clicked(app, "Render both")
    captions = [image.proto.imgs[0].caption.replace("\\", "") for image in app.get("image")]
    assert len(captions) == 2 * len(tiny_run.classes)
    assert captions[0].startswith("A: p = ") and " B says " in captions[0]
    assert captions[1].startswith("B: p = ") and " A says " in captions[1]
    assert any("The other model calls" in caption.value for caption in app.caption)

    app.session_state["compare-view"] = "Where they look"
    app.run()
    assert not app.exception, [error.value for error in app.exception]
    assert sum("Evidence for" in caption.value for caption in app.caption) == 2


def test_the_lab_refuses_runs_of_other_data(tiny_run, tmp_path, make_image_folder):
    other = make_image_folder(tmp_path / "other", per_class=4)
    train_config = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="end-to-end",
                                      epochs=1, image_size=32, batch_size=8, seed=0)
    other_run = train.train_classifier(train_config, data.from_folder(other))
    app = open_page(LAB)
    by_label(app.selectbox, "Model A").set_value(tiny_run).run()
    by_label(app.selectbox, "Model B").set_value(other_run).run()
    assert not app.exception, [error.value for error in app.exception]
    assert any("different data or splits" in error.value for error in app.error)
    assert not app.tabs  # nothing to compare
