"""The Train page's robust training: the section teaches and offers a budget where the body
trains, says why not in fast mode, and a robust run says so on the Train and Runs pages."""
from __future__ import annotations

import pytest

from tests.test_app import by_label, open_page
from tlcore import runs
from ui import jobs, robust_training, state

BUDGET = "Budget: how far an attack may move each pixel (0 = off)"
METHOD = "Attack used in training"


def _expander(app, title: str):
    return next(expander for expander in app.expander if expander.label == title)


def test_fast_mode_explains_why_it_cannot_be_robust(tiny_folder):
    app = open_page("app_pages/train.py", data_source=str(tiny_folder.resolve()))
    assert by_label(app.radio, "Mode").value == "fast"
    section = _expander(app, robust_training.TITLE)
    assert [text.value for text in section.markdown] == [robust_training.FAST_MODE]
    assert not section.slider


@pytest.mark.slow
def test_a_robust_training_from_the_page_records_its_budget(tmp_path, make_image_folder):
    folder = make_image_folder(tmp_path / "robust", per_class=4)
    app = open_page("app_pages/train.py", data_source=str(folder.resolve()))
    by_label(app.selectbox, "Backbone").set_value("scratch_cnn").run()
    section = _expander(app, robust_training.TITLE)
    assert robust_training.LESSON in section.markdown[0].value
    budget = by_label(section.slider, BUDGET)
    assert budget.value == 0 and by_label(section.radio, METHOD).disabled  # off by default
    assert not section.number_input  # PGD's steps only for PGD
    budget.set_value(4).run()
    by_label(app.radio, METHOD).set_value("pgd").run()
    assert by_label(app.number_input, "Attack steps per batch").value == 7
    by_label(app.radio, METHOD).set_value("fgsm-rs").run()
    by_label(app.number_input, "Epochs").set_value(1)
    by_label(app.number_input, "Image size (px)").set_value(32).run()
    assert any("robust at 4/255 FGSM-RS" in caption.value for caption in app.caption)
    app.button(key="train-submit").click().run()
    assert not app.exception, [error.value for error in app.exception]
    snapshot = jobs.wait(app.session_state[state.JOB_ID])
    assert snapshot.state == "done", snapshot.error
    run = runs.load_run(snapshot.run_dir)
    assert run.info["config"]["adversarial_epsilon"] == 4.0
    assert run.info["config"]["adversarial_method"] == "fgsm-rs"
    app.run()
    assert any("Trained robustly at 4/255 FGSM-RS" in caption.value
               for caption in app.caption)
    runs_page = open_page("app_pages/runs.py")
    table = runs_page.dataframe[0].value
    assert table.loc[table["run"] == run.run_id, "robust"].tolist() == ["4/255 FGSM-RS"]


def test_a_runs_budget_reads_the_same_everywhere():
    assert robust_training.label({"adversarial_epsilon": 0.0}) == ""
    assert robust_training.label({}) == ""  # a run from before adversarial training
    assert robust_training.label({"adversarial_epsilon": 2.5, "adversarial_method": "pgd",
                                  "adversarial_steps": 7}) == "2.5/255 PGD, 7 steps"
    assert robust_training.clause({"adversarial_epsilon": 4.0, "adversarial_method": "fgsm-rs",
                                   "adversarial_steps": 7}) == ", robust at 4/255 FGSM-RS"
