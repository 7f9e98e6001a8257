"""`python -m tlcore`: every command's JSON contract and its one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from tlcore import cli, config, data, images, visualize

ROOT = Path(__file__).resolve().parents[1]


def run_cli(capsys, *arguments: str) -> tuple[int, dict | None, str]:
    status = cli.main([*arguments, "--json"])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return status, (json.loads(lines[-1]) if status == 0 else None), captured.err


@pytest.mark.slow
def test_train_evaluate_ideal_attack_round_trip(capsys, tiny_folder, tmp_path):
    status, trained, _ = run_cli(capsys, "train", "--data", str(tiny_folder), "--backbone",
                                 "scratch_cnn", "--weights", "none", "--mode", "end-to-end",
                                 "--epochs", "3", "--image-size", "32", "--runs-dir",
                                 str(tmp_path / "runs"))
    assert status == 0
    assert {"run_dir", "classes", "val_accuracy", "seconds"} <= set(trained)
    run_dir = trained["run_dir"]

    status, report, _ = run_cli(capsys, "evaluate", run_dir, "--split", "val")
    assert status == 0 and {"accuracy", "confusion_matrix", "per_class", "top_k_accuracy",
                            "most_confused", "ece", "balanced_accuracy"} <= set(report)
    assert {"class", "accuracy", "precision", "recall", "f1", "support"} <= set(
        report["per_class"][0])

    status, ideal, _ = run_cli(capsys, "ideal", "--model", run_dir, "--target", "red",
                               "--tv-weight", "0.1", "--steps", "5", "--out", str(tmp_path / "i.png"))
    assert status == 0 and ideal["target"] == "red"
    saved = images.load_image(tmp_path / "i.png")
    assert ideal["total_variation"] == pytest.approx(images.total_variation(saved))
    assert 0 <= ideal["probability"] <= 1
    status, lesson, _ = run_cli(capsys, "ideal", "--model", run_dir, "--target", "1",
                                "--preset", "lesson", "--steps", "4", "--out",
                                str(tmp_path / "l.png"))
    assert status == 0 and lesson["preset"] == "lesson" and lesson["steps"] == 4
    assert lesson["tv_weight"] == pytest.approx(0.005 * 3 * 2 * 31 * 32)  # at 32 px

    source = next(Path(tiny_folder, "blue").glob("*.png"))
    status, attacked, _ = run_cli(capsys, "attack", "--model", run_dir, "--image", str(source),
                                  "--method", "pgd", "--epsilon", "3.5", "--target", "green",
                                  "--out", str(tmp_path / "a.png"))
    assert status == 0
    assert {"clean_class", "clean_probability", "adversarial_class", "adversarial_probability",
            "linf", "success", "seconds"} <= set(attacked)
    adversarial = images.load_image(tmp_path / "a.png").astype(np.float32)
    clean = images.load_image(source, 32).astype(np.float32)
    assert np.abs(adversarial - clean).max() == attacked["linf"] <= 3.5

    status, fooled, _ = run_cli(capsys, "attack", "--model", run_dir, "--image", str(source),
                                "--method", "deepfool", "--out", str(tmp_path / "d.png"))
    assert status == 0 and fooled["epsilon"] is None and fooled["l2"] > 0

    status, curve, _ = run_cli(capsys, "robustness", run_dir, "--epsilons", "0", "4", "16",
                               "--method", "fgsm", "--limit", "6")
    assert status == 0 and [row["epsilon"] for row in curve["curve"]] == [0, 4, 16]
    assert curve["curve"][0]["accuracy"] >= curve["curve"][-1]["accuracy"]


def test_external_model_needs_labels_and_preprocess(capsys, tmp_path, tiny_folder):
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inputs))
    keras.Model(inputs, outputs).save(tmp_path / "model.keras")
    (tmp_path / "labels.txt").write_text("blue\ngreen\nred\n")
    image = str(next(Path(tiny_folder, "red").glob("*.png")))
    status, _, error = run_cli(capsys, "attack", "--model", str(tmp_path / "model.keras"),
                               "--image", image, "--method", "fgsm", "--epsilon", "4",
                               "--out", str(tmp_path / "a.png"))
    assert status == 2 and "--labels" in error and len(error.strip().splitlines()) == 1
    status, attacked, _ = run_cli(capsys, "attack", "--model", str(tmp_path / "model.keras"),
                                  "--labels", str(tmp_path / "labels.txt"), "--preprocess", "unit",
                                  "--image", image, "--method", "fgsm", "--epsilon", "4",
                                  "--out", str(tmp_path / "a.png"))
    assert status == 0 and attacked["clean_class"] in ("blue", "green", "red")


def test_missing_imagenet_weights_exit_nonzero_naming_the_folder(capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")
    monkeypatch.setattr(keras.utils, "get_file", offline)
    status, _, error = run_cli(capsys, "train", "--data", "demo", "--backbone", "mobilenet_v2",
                               "--weights", "imagenet")
    assert status == 2
    assert error.startswith("error: ") and "models" in error and len(error.splitlines()) == 1


def test_weights_command_offline_names_the_file_with_the_head(capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")
    monkeypatch.setattr(keras.utils, "get_file", offline)
    status, _, error = run_cli(capsys, "weights", "resnet50", "--with-head")
    assert status == 2 and "resnet50_weights_tf_dim_ordering_tf_kernels.h5" in error
    status, _, error = run_cli(capsys, "weights", "resnet50")
    assert status == 2 and "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in error


def test_imagenet_models_by_name(capsys, tmp_path, monkeypatch):
    from tlcore import imagenet

    monkeypatch.setattr(imagenet, "imagenet_classifier", lambda name: keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(1000)]))
    status, ideal, _ = run_cli(capsys, "ideal", "--model", "imagenet:vgg16", "--target",
                               "Siamese cat", "--steps", "2", "--out", str(tmp_path / "c.png"))
    assert status == 0 and ideal["target_index"] == 284


def test_unknown_class_is_a_clear_error(capsys, tiny_run, tmp_path):
    status, _, error = run_cli(capsys, "ideal", "--model", str(tiny_run.run_dir), "--target",
                               "purple", "--out", str(tmp_path / "x.png"))
    assert status == 2 and "purple" in error


@pytest.mark.slow
def test_backbones_lists_all_and_weights_presence(capsys):
    status, listing, _ = run_cli(capsys, "backbones")
    assert status == 0
    rows = {row["name"]: row for row in listing["backbones"]}
    assert len(rows) == 8 and rows["vgg16"]["parameters"] == 14_714_688
    assert rows["vgg16"]["imagenet_weights_local"] is False
    assert "edges" in rows["vgg16"]["weights_choices"]


def test_options_default_to_the_settings_own_defaults_and_the_tables():
    parser = cli._parser()
    assert cli._train_config(parser.parse_args(["train"])) == config.TrainConfig()
    chosen = cli._train_config(parser.parse_args(
        ["train", "--weights", "none", "--no-augment", "--epochs", "2"]))
    assert (chosen.weights, chosen.augment, chosen.epochs, chosen.class_weights) == (
        None, False, 2, True)
    ideal = parser.parse_args(["ideal", "--model", "m", "--target", "0", "--out", "x.png"])
    assert cli._settings(config.RenderConfig, ideal) == {"seed": config.RenderConfig().seed}


def test_help_lists_the_data_sources_and_the_recipes(capsys):
    for command, names in (("train", data.SOURCES), ("ideal", visualize.PRESETS)):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        shown = capsys.readouterr().out
        assert all(name in shown for name in names), (command, shown)


def test_a_custom_render_uses_the_preset_the_page_shows(capsys, tiny_run, tmp_path):
    status, ideal, _ = run_cli(capsys, "ideal", "--model", str(tiny_run.run_dir), "--target",
                               "red", "--steps", "2", "--out", str(tmp_path / "c.png"))
    assert status == 0 and ideal["preset"] == "custom"
    assert ideal["tv_weight"] == visualize.preset("custom", 32).tv_weight


def test_the_parser_loads_no_tensorflow():
    code = "import sys; from tlcore import cli; cli._parser(); print('tensorflow' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                           text=True, timeout=300, check=True).stdout.split()
    assert shown == ["False"]


def test_module_entry_point_prints_help():
    result = subprocess.run([sys.executable, "-m", "tlcore", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "train" in result.stdout


@pytest.mark.slow
def test_fine_tune_mode_from_the_command_line(capsys, tiny_folder, tmp_path):
    from tlcore import backbones
    weights = tmp_path / "body.weights.h5"
    backbones.build_backbone("scratch_cnn", weights=None, input_size=32).save_weights(str(weights))
    status, trained, _ = run_cli(capsys, "train", "--data", str(tiny_folder), "--backbone",
                                 "scratch_cnn", "--weights", str(weights), "--mode", "fine-tune",
                                 "--epochs", "2", "--head-epochs", "2", "--image-size", "32",
                                 "--trainable-blocks", "1", "--runs-dir", str(tmp_path / "runs"))
    assert status == 0
    assert trained["head_epochs"] == 2 and 3 <= trained["epochs_run"] <= 4
    assert {"run_dir", "classes", "val_accuracy", "seconds"} <= set(trained)


@pytest.mark.slow
def test_resume_from_the_command_line(capsys, tiny_folder, tmp_path, interrupted_training):
    interrupted = interrupted_training(tiny_folder, tmp_path)
    status, resumed, _ = run_cli(capsys, "train", "--resume", str(interrupted.folder))
    assert status == 0 and resumed["resumed_from_epoch"] == 1 and resumed["epochs_run"] == 3
    assert Path(resumed["run_dir"]).parent == tmp_path


@pytest.mark.parametrize("public_demo", ["", "1"])
@pytest.mark.slow
def test_train_lists_each_skipped_file_inside_the_data_set_with_its_reason(
        capsys, tmp_path, monkeypatch, public_demo, make_image_folder):
    monkeypatch.setenv("TLCORE_PUBLIC_DEMO", public_demo)
    folder = make_image_folder(tmp_path / "colours", per_class=6)
    (folder / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 20)
    (folder / "green" / "notes.txt").write_text("not a picture")
    status, trained, _ = run_cli(capsys, "train", "--data", str(folder), "--backbone",
                                 "scratch_cnn", "--weights", "none", "--mode", "end-to-end",
                                 "--epochs", "1", "--image-size", "32", "--runs-dir",
                                 str(tmp_path / "runs"))
    assert status == 0
    skipped = {item["file"]: item["reason"] for item in trained["skipped_files"]}
    assert set(skipped) == {"red/broken.png", "green/notes.txt"}
    assert trained["skipped_count"] == 2
    assert "not an image file type (.txt)" == skipped["green/notes.txt"]
    assert skipped["red/broken.png"]  # Pillow's words, without the path
    recorded = json.loads((Path(trained["run_dir"]) / "run.json").read_text())["data"]
    assert recorded["skipped_files"] == trained["skipped_files"]
    assert str(tmp_path) not in json.dumps(trained["skipped_files"])


def test_robustness_reports_each_class_accuracy_at_each_epsilon(capsys, tiny_run):
    assert cli.main(["robustness", str(tiny_run.run_dir), "--epsilons", "0", "4",
                     "--method", "fgsm", "--limit", "6"]) == 0
    shown = capsys.readouterr().out
    table = shown[shown.index("accuracy per class"):].splitlines()
    assert table[1].split() == ["class", "0/255", "4/255"]
    assert [line.split()[:2] for line in table[2:]] == [["blue", "(2)"], ["green", "(2)"],
                                                        ["red", "(2)"]]
    status, report, _ = run_cli(capsys, "robustness", str(tiny_run.run_dir), "--epsilons", "0",
                                "4", "--method", "fgsm", "--limit", "6")
    assert status == 0 and report["classes"] == tiny_run.classes
    assert all(len(row["per_class"]) == 3 for row in report["curve"])
    assert [line.split()[2] for line in table[2:]] == [
        f"{accuracy:.3f}" for accuracy in report["curve"][0]["per_class"]]


def test_robustness_sweep_trains_each_budget_with_the_train_options(capsys, tiny_folder,
                                                                   tmp_path):
    defaults = cli._train_config(cli._parser().parse_args(["robustness-sweep"]))
    assert defaults == config.TrainConfig(mode="end-to-end")  # fast mode cannot train robustly
    status, swept, progress = run_cli(
        capsys, "robustness-sweep", "--data", str(tiny_folder), "--backbone", "scratch_cnn",
        "--weights", "none", "--epochs", "1", "--image-size", "32", "--epsilons", "0", "4",
        "--attack-epsilons", "2", "4", "--steps", "1", "--limit", "6",
        "--adversarial-method", "pgd", "--adversarial-steps", "1",
        "--runs-dir", str(tmp_path / "runs"))
    assert status == 0, progress
    assert [row["budget"] for row in swept["sweep"]] == [0, 4]
    assert swept["attack_epsilons"] == [2, 4] and swept["images"] == 6
    assert swept["method"] == "pgd" and swept["sweep"][0]["time_ratio"] == 1
    assert all(len(row["pgd_accuracy"]) == 2 for row in swept["sweep"])
    settings = json.loads((Path(swept["sweep"][1]["run_dir"]) / "run.json").read_text())["config"]
    assert (settings["mode"], settings["adversarial_epsilon"], settings["adversarial_steps"]) == (
        "end-to-end", 4, 1)
    assert "[budget 4/255, run 2 of 2: training] epoch 1/1" in progress
    assert all(reference["url"] for reference in swept["references"])
    assert "PGD 4/255" in cli._human(swept) and "Published results" in cli._human(swept)


@pytest.mark.slow
def test_predict_gives_each_files_top_classes(tiny_run, tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (40, 40), (220, 40, 40)).save(tmp_path / "red.png")
    (tmp_path / "notes.jpg").write_bytes(b"not an image")
    assert cli.main(["predict", str(tiny_run.run_dir), str(tmp_path / "red.png"),
                     str(tmp_path / "notes.jpg"), "--top-k", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (result["images"], result["unreadable"], result["top_k"]) == (1, 1, 2)
    assert len(result["predictions"][0]["classes"]) == 2
    assert "not a readable image" in result["predictions"][1]["error"]
    assert cli.main(["predict", str(tiny_run.run_dir), str(tmp_path / "red.png"),
                     "--top-k", "0"]) == 2


def test_augmentation_options_reach_the_training_settings():
    arguments = cli._parser().parse_args(["train", "--rotation", "0.1", "--flip", "both"])
    augmentation = cli._train_config(arguments).augmentation
    assert (augmentation.flip, augmentation.rotation) == ("both", 0.1)
    assert augmentation.zoom == config.Augmentation().zoom


@pytest.mark.slow
def test_lr_find_suggests_a_rate_in_its_range(capsys, tiny_folder):
    status, found, _ = run_cli(capsys, "lr-find", "--data", str(tiny_folder), "--backbone",
                               "scratch_cnn", "--weights", "none", "--mode", "end-to-end",
                               "--image-size", "32", "--steps", "40")
    assert status == 0
    rates = found["lr_find"]["learning_rates"]
    assert rates[0] == pytest.approx(1e-7)
    assert rates[0] <= found["lr_find"]["suggested_learning_rate"] <= rates[-1]
    status, _, error = run_cli(capsys, "lr-find", "--data", str(tiny_folder), "--mode", "fast")
    assert status != 0 and "feature extractor" in error


@pytest.mark.slow
def test_bakeoff_trains_the_chosen_bodies_as_runs(capsys, tiny_folder, tmp_path):
    status, result, _ = run_cli(capsys, "bakeoff", "--data", str(tiny_folder),
                                "--include-random", "--only", "mobilenet_v3_small:none",
                                "--epochs", "1", "--image-size", "32",
                                "--runs-dir", str(tmp_path))
    assert status == 0
    [row] = result["bakeoff"]["rows"]
    assert (tmp_path / row["run_id"] / "run.json").is_file()
