"""Every page renders without an exception, and each does its one real job."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tlcore import backbones, config, data, downloads, evaluate, petimages, runs, train
from ui import jobs, state

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGES = ["app_pages/home.py", "app_pages/data.py", "app_pages/train.py", "app_pages/runs.py",
         "app_pages/evaluate.py",
         "app_pages/ideal_image.py", "app_pages/attack.py", "app_pages/robustness_lab.py"]


def open_page(page: str, run_id: str | None = None, data_source: str | None = None) -> AppTest:
    """The app opened on `page`, with a selected run or a chosen data source to start from."""
    app = AppTest.from_file(APP, default_timeout=180)
    for key, value in ((state.RUN_ID, run_id), (state.DATA_SOURCE, data_source)):
        if value is not None:
            app.session_state[key] = value
    app.run()
    app.switch_page(page).run()
    assert not app.exception, [error.value for error in app.exception]
    return app


def by_label(elements, label: str):
    return next(element for element in elements if element.label == label)


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.slow
def test_page_renders_without_exception(page, tiny_run):
    app = open_page(page, run_id=tiny_run.run_id)
    assert app.title[0].value


def test_sidebar_names_the_device(tiny_run):
    app = AppTest.from_file(APP, default_timeout=180).run()
    device = next(caption.value for caption in app.caption if caption.value.startswith("Device"))
    assert "CPU" in device or "GPU" in device


def test_data_page_reads_a_server_folder_and_lists_skipped_files(tmp_path, make_image_folder):
    folder = make_image_folder(tmp_path / "pets", per_class=4)
    (folder / "red" / "notes.txt").write_text("not an image")
    app = open_page("app_pages/data.py")
    by_label(app.radio, "Source").set_value("folder").run()
    by_label(app.text_input, "Folder of class folders").input(str(folder)).run()
    assert not app.exception
    assert by_label(app.metric, "Classes").value == "3"
    assert app.session_state[state.DATA_SOURCE] == str(folder.resolve())
    assert any(header.value == "Skipped files (1)" for header in app.subheader)


def test_data_page_explains_a_folder_with_one_class(tmp_path, make_image_folder):
    folder = make_image_folder(tmp_path / "one", per_class=2, colours={"only": (1, 2, 3)})
    app = open_page("app_pages/data.py")
    by_label(app.radio, "Source").set_value("folder").run()
    by_label(app.text_input, "Folder of class folders").input(str(folder)).run()
    assert not app.exception and "at least two" in app.error[0].value


def test_data_page_downloads_petimages_in_the_background(served_petimages):
    app = open_page("app_pages/data.py")
    by_label(app.radio, "Source").set_value("petimages").run()
    download = next(button for button in app.button if button.label.startswith("Download"))
    download.click().run()
    assert not app.exception, [error.value for error in app.exception]
    snapshot = jobs.wait(jobs.preparing("petimages").job_id)
    assert snapshot.state == "done", snapshot.error
    app.run()
    assert not app.exception
    assert by_label(app.metric, "Classes").value == "2"
    assert any(header.value == "Skipped files (4)" for header in app.subheader)


def test_data_page_offline_download_says_where_to_put_the_archive(monkeypatch, tmp_path):
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(petimages, "URL", "http://127.0.0.1:9/kagglecatsanddogs_5340.zip")
    app = open_page("app_pages/data.py")
    by_label(app.radio, "Source").set_value("petimages").run()
    next(button for button in app.button if button.label.startswith("Download")).click().run()
    jobs.wait(jobs.preparing("petimages").job_id)
    app.run()
    assert not app.exception
    message = re.sub(r"\\(.)", r"\1", app.error[0].value)  # shown as plain text: escaped
    assert "kagglecatsanddogs_5340.zip" in message and str(tmp_path / "home") in message
    train_page = app.switch_page("app_pages/train.py").run()
    assert not train_page.exception and "Data page" in train_page.error[0].value


def one_epoch_run(folder: Path) -> runs.Run:
    """A scratch CNN trained for one epoch on `folder`, saved in the default runs folder."""
    return train.train_classifier(config.TrainConfig(backbone="scratch_cnn", weights=None,
                                                     mode="end-to-end", epochs=1, image_size=32),
                                  data.from_folder(folder))


@pytest.mark.slow
def test_attack_page_without_test_images_asks_for_an_upload(tmp_path, make_image_folder):
    run = one_epoch_run(make_image_folder(tmp_path / "two", per_class=2))
    app = open_page("app_pages/attack.py", run_id=run.run_id)
    assert "no test images" in app.info[0].value


@pytest.mark.slow
def test_train_page_trains_in_the_background_and_shows_the_run(tiny_folder):
    app = open_page("app_pages/train.py", data_source=str(tiny_folder.resolve()))
    by_label(app.selectbox, "Backbone").set_value("scratch_cnn").run()
    by_label(app.number_input, "Epochs").set_value(3)
    by_label(app.number_input, "Image size (px)").set_value(32)
    app.button[0].click().run()  # the form's Train button
    assert not app.exception, [error.value for error in app.exception]
    snapshot = jobs.wait(app.session_state[state.JOB_ID])
    assert snapshot.state == "done", snapshot.error
    assert len(snapshot.epochs) == 3
    app.run()
    assert not app.exception
    assert float(by_label(app.metric, "Validation accuracy").value) > 0
    assert app.session_state[state.RUN_ID] == Path(snapshot.run_dir).name


def test_train_page_says_imagenet_weights_are_missing_before_the_click(monkeypatch,
                                                                      tiny_folder):
    """Offline, a backbone whose ImageNet weights are not here does not default to them;
    choosing them explains, in the app's words, what to choose instead and where the file
    goes (its whole address), and Train is off; a stale result never shows under it."""
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")
    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setattr(downloads, "reachable", lambda url, timeout=2.0: False)
    app = open_page("app_pages/train.py", data_source=str(tiny_folder.resolve()))
    by_label(app.selectbox, "Backbone").set_value("mobilenet_v2").run()
    weights = by_label(app.radio, "Weights")
    assert weights.value == "none"
    assert "not on this server" in weights.options[0]
    weights.set_value("imagenet").run()
    assert not app.exception
    message = app.warning[0].value
    assert "Random weights" in message and "--weights" not in message
    missing = backbones.missing_imagenet_weights("mobilenet_v2", 32)  # the data's side
    assert f"({missing.url})" in message and str(missing.folder) in message
    assert app.button(key="train-submit").disabled


def test_train_page_asks_for_the_imagenet_file_of_the_chosen_image_size(monkeypatch, tmp_path,
                                                                        tiny_folder):
    """MobileNetV2 has one ImageNet file per input size: with only the 224 px file here (it
    serves the data's 32 px too), choosing 96 px says that size's file is missing and turns
    Train off, instead of failing after the click."""
    from ui import training

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(downloads, "reachable", lambda url, timeout=2.0: False)
    training._imagenet_state.clear()
    present = backbones.imagenet_weights_path("mobilenet_v2", 224)
    present.parent.mkdir(parents=True)
    present.write_bytes(b"only its presence is asked about before the click")
    app = open_page("app_pages/train.py", data_source=str(tiny_folder.resolve()))
    by_label(app.selectbox, "Backbone").set_value("mobilenet_v2").run()
    assert by_label(app.radio, "Weights").value == "imagenet"
    assert not app.button(key="train-submit").disabled
    by_label(app.number_input, "Image size (px)").set_value(96).run()
    assert not app.exception
    missing = backbones.missing_imagenet_weights("mobilenet_v2", 96)
    assert any(missing.file in warning.value for warning in app.warning)
    assert app.button(key="train-submit").disabled
    training._imagenet_state.clear()


def test_evaluate_page_shows_every_view_of_a_run(tiny_run):
    app = open_page("app_pages/evaluate.py", run_id=tiny_run.run_id)
    report = evaluate.evaluate_run(tiny_run, "test")
    assert float(by_label(app.metric, "Accuracy").value) == pytest.approx(report["accuracy"],
                                                                          abs=1e-3)
    assert {"Balanced accuracy", "Calibration error (ECE)"} <= {m.label for m in app.metric}
    assert len(app.tabs) == 6
    assert len(app.get("plotly_chart")) == 1  # only the open tab runs: the confusion matrix
    app.toggle[0].set_value(True).run()
    assert not app.exception, [error.value for error in app.exception]
    # The default cell is the most confused pair (or the first class): its gallery, with
    # Grad-CAM images for the first of them.
    captions = [caption.value for caption in app.caption]
    assert any("predicted as" in caption for caption in captions)
    assert any("Evidence for" in caption for caption in captions)
    for view, element in (("Per class", "plotly_chart"), ("Calibration", "plotly_chart"),
                          ("Mistakes", "selectbox"), ("Explain an image", "radio")):
        app.session_state["evaluate-view"] = view
        app.run()
        assert not app.exception, (view, [error.value for error in app.exception])
        assert app.get(element), view


@pytest.mark.slow
def test_evaluate_page_picks_a_cell_and_compares_two_runs(tiny_run, tmp_path, make_image_folder):
    other = one_epoch_run(make_image_folder(tmp_path / "other", per_class=4))
    app = open_page("app_pages/evaluate.py", run_id=tiny_run.run_id)
    by_label(app.selectbox, "True class").set_value(1).run()
    by_label(app.selectbox, "Predicted as").set_value(1).run()
    assert not app.exception, [error.value for error in app.exception]
    assert app.session_state[state.CELL][2] == (1, 1)
    assert any(caption.value.startswith("**") and "green image(s) predicted as green" in
               caption.value for caption in app.caption)
    by_label(app.selectbox, "Compare with").set_value(other).run()
    assert not app.exception, [error.value for error in app.exception]
    assert by_label(app.metric, "Accuracy").delta is not None


@pytest.mark.slow
def test_ideal_image_page_renders_an_image_and_its_feature_maps(tiny_run):
    app = open_page("app_pages/ideal_image.py", run_id=tiny_run.run_id)
    app.number_input[0].set_value(20)  # the render form's steps
    app.radio(key="render-form-preset").set_value("clean")
    app.button[0].click().run()
    assert not app.exception, [error.value for error in app.exception]
    assert 0 <= float(by_label(app.metric, "Class probability").value) <= 1
    assert app.get("image")
    captions = [image.proto.imgs[0].caption for image in app.get("image")]
    assert any("strongest mean activation first" in caption for caption in captions)


def test_ideal_image_sweep_scrubs_without_rendering_again(tiny_run, monkeypatch):
    """A finished sweep is one figure with every image and a slider: scrubbing happens in
    the browser, and a rerun renders nothing again."""
    from tlcore import visualize
    app = open_page("app_pages/ideal_image.py", run_id=tiny_run.run_id)
    [field for field in app.number_input if field.label == "Steps"][1].set_value(10)
    next(b for b in app.button if b.label == "Render the sweep").click().run()
    assert not app.exception, [error.value for error in app.exception]
    results = app.session_state[state.SWEEP][1]
    assert [r.tv_weight for r in results][0] == 0.0 and len(results) == 7
    [scrubber] = [json.loads(c.proto.spec) for c in app.get("plotly_chart")
                  if '"sliders"' in c.proto.spec]
    assert [t["type"] for t in scrubber["data"]] == ["image"] * 7
    assert [s["label"] for s in scrubber["layout"]["sliders"][0]["steps"]] == [
        f"{r.tv_weight:g}" for r in results]
    renders = []
    monkeypatch.setattr(visualize, "render_sweep", lambda *a, **k: renders.append(1))
    app.run()
    assert not app.exception and renders == []


def test_ideal_image_page_without_imagenet_weights_says_how_to_add_them(tiny_run):
    """In the app's words (no command line flag): the file's whole address and folder."""
    app = open_page("app_pages/ideal_image.py", run_id=tiny_run.run_id)
    by_label(app.radio, "Model").set_value("imagenet").run()
    message = app.info[0].value
    missing = backbones.missing_imagenet_weights("mobilenet_v2", with_head=True)
    assert not app.exception and "--" not in message
    assert f"({missing.url})" in message and str(missing.folder) in message


@pytest.mark.slow
def test_attack_page_attacks_a_test_image_and_asks_a_second_model(tiny_run, tmp_path,
                                                                  make_image_folder):
    other = one_epoch_run(make_image_folder(tmp_path / "second", per_class=4))
    app = open_page("app_pages/attack.py", run_id=tiny_run.run_id)
    by_label(app.radio, "Method").set_value("fgsm").run()
    app.button[0].click().run()
    assert not app.exception, [error.value for error in app.exception]
    assert by_label(app.metric, "Success").value in ("yes", "no")
    assert by_label(app.metric, "L-inf (px)").value.endswith("/ 4")
    by_label(app.selectbox, "Second model").set_value(other).run()
    assert not app.exception
    assert any("fooled" in info.value for info in app.info)
    # The same attack over many images.
    next(b for b in app.button if b.label.startswith("Attack ") and "images" in b.label
         ).click().run()
    assert not app.exception, [error.value for error in app.exception]
    assert 0 <= float(by_label(app.metric, "Success rate").value) <= 1


def test_attack_page_deepfool_has_no_budget_and_curves_fall(tiny_run):
    app = open_page("app_pages/attack.py", run_id=tiny_run.run_id)
    by_label(app.radio, "Method").set_value("deepfool").run()
    app.button[0].click().run()
    assert not app.exception, [error.value for error in app.exception]
    assert by_label(app.metric, "L-inf (px)").value.endswith("(no budget)")
    by_label(app.slider, "Validation images").set_value(8)
    by_label(app.number_input, "PGD steps").set_value(3)
    next(b for b in app.button if b.label == "Compute the curves").click().run()
    assert not app.exception, [error.value for error in app.exception]
    assert any("Robustness" in str(chart.proto.spec) for chart in app.get("plotly_chart"))


@pytest.mark.slow
def test_runs_page_renames_and_deletes(tmp_path, make_image_folder):
    run = one_epoch_run(make_image_folder(tmp_path / "r", per_class=4))
    app = open_page("app_pages/runs.py", run_id=run.run_id)
    assert len(app.get("plotly_chart")) == 1
    by_label(app.button, "Export for phones (TensorFlow Lite)").click().run()
    assert not app.exception and (run.run_dir / "model.tflite").is_file()
    by_label(app.text_input, "Name").input("colours, one epoch")
    by_label(app.button, "Rename").click().run()
    assert not app.exception
    assert runs.load_run(run.run_dir).name == "colours, one epoch"
    app.checkbox[0].check().run()
    by_label(app.button, "Delete").click().run()
    assert not app.exception and not run.run_dir.exists()


@pytest.mark.slow
def test_train_page_resumes_an_interrupted_training(tiny_folder, interrupted_training):
    from tlcore import checkpoints

    interrupted = interrupted_training(tiny_folder)
    app = open_page("app_pages/train.py", data_source=str(tiny_folder.resolve()))
    by_label(app.button, "Resume").click().run()
    assert not app.exception, [error.value for error in app.exception]
    snapshot = jobs.wait(app.session_state[state.JOB_ID])
    assert snapshot.state == "done", snapshot.error
    assert Path(snapshot.run_dir).name == interrupted.run_id
    assert checkpoints.list_interrupted() == []


def test_an_uploaded_model_is_loaded_safely_and_wrapped(tmp_path):
    from ui import cache

    inner = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, name="conv"),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax")])
    inner.save(tmp_path / "m.keras")
    content = (tmp_path / "m.keras").read_bytes()
    loaded = cache.uploaded_model(hashlib.sha256(content).hexdigest(), content, ".keras", "tf")
    model = loaded.model
    assert model.output_shape == (None, 3) and model.input_shape == (None, 16, 16, 3)
    with loaded.lock:
        assert model(np.full((1, 16, 16, 3), 200.0)).shape == (1, 3)
    refused = cache.uploaded_model("not-a-model", b"not a model", ".keras", "tf")
    assert refused.model is None and "safe mode" in refused.error
    assert "/" not in refused.error  # the temporary file's folder is not named
    # A refusal is remembered: the same file is not loaded again at every rerun.
    assert cache.uploaded_model("not-a-model", b"", ".keras", "tf") is refused
