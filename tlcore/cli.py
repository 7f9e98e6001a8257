"""`python -m tlcore ...`: the dashboard's jobs, headless, for scripts and benchmarks.

Every command takes `--json` and then prints one JSON object as the last line of stdout.
Errors exit non-zero with one line on stderr. Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

# None of these loads TensorFlow: the parser reads its defaults and names from them and
# --help stays instant; every command imports what it needs after parsing.
from tlcore import config, data, visualize

MODEL_HELP = ("a run folder; imagenet:BACKBONE (the backbone's own ImageNet classifier, e.g. "
              "imagenet:vgg16); or a .keras/.h5 model made elsewhere (then give --labels and "
              "--preprocess)")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run one command, print its result; return the exit status."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    from tlcore import archives, backbones, images  # after parsing: --help stays instant

    # DownloadError is a ValueError: a failed download is one line too.
    expected = (ValueError, backbones.WeightsUnavailableError, images.ImageError,
                archives.ArchiveError, OSError)
    try:
        result = arguments.handler(arguments)
    except expected as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    if arguments.json:
        print(json.dumps(result, default=_json_default))
    else:
        print(_human(result))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tlcore", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--json", action="store_true", help="print one JSON object last")
        sub.set_defaults(handler=handler)
        return sub

    command("backbones", _backbones, "list backbones and whether their weights are here")

    _train_arguments(command("train", _train, "train a classifier and save it as a run"))

    evaluate = command("evaluate", _evaluate, "score a run on one split of its data")
    evaluate.add_argument("run_dir", type=Path)
    evaluate.add_argument("--split", default="test", choices=[*data.SPLIT_NAMES, "val"])

    weights = command("weights", _weights, "fetch a backbone's ImageNet weights once (needs a "
                                           "network; prints where they are)")
    weights.add_argument("backbone")
    weights.add_argument("--with-head", action="store_true",
                         help="the whole ImageNet classifier, for the Evaluate page's 'what "
                              "the backbone sees', instead of the body alone")
    weights.add_argument("--image-size", type=int, help="body only (MobileNetV2 has one per size)")

    exporter = command("export", _export, "convert a run's model to TensorFlow Lite")
    exporter.add_argument("run_dir", type=Path)
    exporter.add_argument("--out", type=Path, help="default: model.tflite in the run folder")

    _predict_arguments(command("predict", _predict, "a run's top classes for many images "
                                                    "(image files, zips of them, folders)"))

    _ideal_arguments(command("ideal", _ideal, "render the image a model finds most like a class"))

    _attack_arguments(command("attack", _attack, "make an adversarial version of an image"))

    bench = command("bench", _bench, "run the benchmark suite (from the repository root)")
    bench.add_argument("--quick", action="store_true", help="fewer models and repeats")
    bench.add_argument("--only", nargs="+", help="benchmark names, e.g. embedding attack_latency")

    _robustness_arguments(command("robustness", _robustness,
                                  "accuracy of a run under attack as epsilon grows"))

    _sweep_arguments(command("robustness-sweep", _robustness_sweep,
                             "train one run per adversarial budget and measure each: clean "
                             "accuracy, accuracy under PGD, training time"))

    _lr_find_arguments(command("lr-find", _lr_find,
                               "find a learning rate: train a copy of the model one batch per "
                               "rate, the rate growing exponentially, until the loss blows up"))

    _bakeoff_arguments(command("bakeoff", _bakeoff,
                               "train every backbone whose weights are here in fast mode on the "
                               "same data and compare validation accuracy, embedding time per "
                               "image and model size (Pareto fronts marked)"))
    return parser


def _train_arguments(train: argparse.ArgumentParser) -> None:
    """The `train` command's options; defaults are `config.TrainConfig`'s."""
    _training_options(train)
    train.add_argument("--adversarial-epsilon", type=float,
                       default=config.TrainConfig().adversarial_epsilon,
                       help="train robustly: each batch's adversarial versions within this "
                            "budget in pixels of 0..255 (4 = 4/255); not in fast mode "
                            "(default %(default)s: off)")
    _adversarial_options(train)
    train.add_argument("--distribute", default="none",
                       choices=["none", "mirrored", "multi-worker"],
                       help="mirrored: split each batch over this machine's GPUs (or the "
                            "logical CPUs of --cpu-replicas); multi-worker: fast mode across "
                            "the machines in TF_CONFIG, each embedding its share of the "
                            "images into a shared TLCORE_HOME, worker 0 training the head")
    train.add_argument("--cpu-replicas", type=int, metavar="N",
                       help="split the CPU into N logical devices (to try --distribute "
                            "mirrored without GPUs)")
    train.add_argument("--resume", type=Path, metavar="CHECKPOINT_DIR",
                       help="continue an interrupted training (a folder under "
                            "RUNS/.checkpoints/); the other training options are ignored")


def _training_options(train: argparse.ArgumentParser) -> None:
    """The settings of one training but the adversarial ones (`train` takes one budget,
    `robustness-sweep` a list), and where runs go; defaults are `config.TrainConfig`'s."""
    defaults = config.TrainConfig()  # each option's default is the setting's own
    train.add_argument("--data", default="demo", help=f"{data.sources_in_words()} (default "
                                                      "%(default)s)")
    train.add_argument("--backbone", default=defaults.backbone, help="default %(default)s")
    train.add_argument("--weights", default=defaults.weights,
                       help="imagenet | edges | none | PATH (default %(default)s)")
    train.add_argument("--mode", default=defaults.mode, choices=config.TRAINING_MODES,
                       help="default %(default)s")
    train.add_argument("--epochs", type=int, default=defaults.epochs, help="default %(default)s")
    train.add_argument("--image-size", type=int, default=defaults.image_size,
                       help="default: the data set's or the backbone's")
    train.add_argument("--batch-size", type=int, default=defaults.batch_size,
                       help="default %(default)s")
    train.add_argument("--learning-rate", type=float, default=defaults.learning_rate,
                       help=_learning_rate_help())
    train.add_argument("--trainable-blocks", type=int, default=defaults.trainable_blocks,
                       help=f"top blocks of the body that train (-1 all; default: "
                            f"{config.FINE_TUNE_BLOCKS} when fine-tuning, all end to end)")
    train.add_argument("--head-epochs", type=int, default=defaults.head_epochs,
                       help="fine-tune: epochs of the head alone before the body unfreezes "
                            "(default %(default)s)")
    train.add_argument("--no-augment", dest="augment", action="store_false",
                       default=defaults.augment, help="fine-tune without augmentation")
    _augmentation_options(train)
    train.add_argument("--patience", type=int, default=defaults.patience,
                       help="early stopping: epochs without a better validation accuracy "
                            "(default %(default)s)")
    train.add_argument("--no-class-weights", dest="class_weights", action="store_false",
                       default=defaults.class_weights,
                       help="do not weight the loss by inverse class frequency")
    train.add_argument("--seed", type=int, default=defaults.seed, help="default %(default)s")
    train.add_argument("--runs-dir", type=Path)


def _augmentation_options(train: argparse.ArgumentParser) -> None:
    """Fine-tuning's random changes of the training images: an option per kind of
    `config.AUGMENTATIONS`, named after it; defaults are `config.Augmentation`'s."""
    defaults = config.Augmentation()
    for name, kind in config.AUGMENTATIONS.items():
        default = getattr(defaults, name)
        if kind.choices:
            help_text = f"fine-tune: {kind.note} (default {default})"
        else:
            help_text = (f"fine-tune: {kind.note} (0: off, to {kind.maximum:g} = "
                         f"{kind.shown(kind.maximum)}; default {default:g} = "
                         f"{kind.shown(default)})")
        train.add_argument(f"--{name}", type=None if kind.choices else float, default=default,
                           choices=kind.choices or None, metavar=None if kind.choices else "X",
                           help=help_text.replace("%", "%%"))  # argparse formats help


def _predict_arguments(predictor: argparse.ArgumentParser) -> None:
    """The `predict` command's options."""
    predictor.add_argument("run_dir", type=Path)
    predictor.add_argument("files", type=Path, nargs="+", metavar="FILE",
                           help="images, zips of images or folders of them")
    predictor.add_argument("--top-k", type=int, metavar="K",
                           help="classes per image, most probable first (default 3)")


def _lr_find_arguments(parser: argparse.ArgumentParser) -> None:
    """The `lr-find` command's options: the training's (fine-tune by default: the rate found
    is the body stage's), then the sweep's; the sweep's defaults are `tlcore.lr_find`'s
    (fastai's), read after parsing so that --help loads no TensorFlow."""
    _training_options(parser)
    parser.set_defaults(mode="fine-tune")  # a feature extractor's head needs no search
    parser.add_argument("--start", type=float, help="the first rate (default: 1e-7, fastai's)")
    parser.add_argument("--end", type=float, help="the last rate (default: 10)")
    parser.add_argument("--steps", type=int,
                        help="rates tried, one batch each (default: 100)")
    parser.add_argument("--diverge", type=float,
                        help="stop once the smoothed loss passes this multiple of its lowest "
                             "(default: 4)")


def _bakeoff_arguments(bakeoff: argparse.ArgumentParser) -> None:
    """The `bakeoff` command's options: which bodies, and the settings every row shares
    (fast mode; defaults are `config.TrainConfig`'s)."""
    defaults = config.TrainConfig()
    bakeoff.add_argument("--data", default="demo", help=f"{data.sources_in_words()} (default "
                                                        "%(default)s)")
    bakeoff.add_argument("--include-random", action="store_true",
                         help="also train every architecture with random weights: what "
                              "transfer adds")
    bakeoff.add_argument("--only", nargs="+", metavar="BACKBONE:WEIGHTS",
                         help="train only these of the bodies found, e.g. vgg16:edges "
                              "resnet50:none (random ones need --include-random)")
    bakeoff.add_argument("--epochs", type=int, default=defaults.epochs,
                         help="epochs of each head (default %(default)s)")
    bakeoff.add_argument("--image-size", type=int, default=defaults.image_size,
                         help="the same for every body; default: the data set's or 224")
    bakeoff.add_argument("--batch-size", type=int, default=defaults.batch_size,
                         help="default %(default)s")
    bakeoff.add_argument("--seed", type=int, default=defaults.seed, help="default %(default)s")
    bakeoff.add_argument("--runs-dir", type=Path)


def _adversarial_options(train: argparse.ArgumentParser) -> None:
    """How adversarial training perturbs each batch (`config.ADVERSARIAL_METHODS`)."""
    defaults = config.TrainConfig()
    train.add_argument("--adversarial-method", default=defaults.adversarial_method,
                       choices=list(config.ADVERSARIAL_METHODS), help="; ".join(
                           f"{name}: {method.note}"
                           for name, method in config.ADVERSARIAL_METHODS.items()))
    train.add_argument("--adversarial-steps", type=int, default=defaults.adversarial_steps,
                       help="pgd's steps per batch (default %(default)s)")


def _ideal_arguments(ideal: argparse.ArgumentParser) -> None:
    """The `ideal` command's options; defaults are the preset's (`visualize.PRESETS`)."""
    _model_arguments(ideal)
    ideal.add_argument("--target", required=True, help="class name or index")
    custom = visualize.preset("custom", 224)
    ideal.add_argument("--preset", default="custom", choices=list(visualize.PRESETS),
                       help="; ".join(f"{name}: {preset.label}"
                                      for name, preset in visualize.PRESETS.items())
                       + " (default %(default)s; the options below override the preset's)")
    ideal.add_argument("--tv-weight", type=float,
                       help=f"default: the preset's ({custom.tv_weight:g} for custom)")
    ideal.add_argument("--l2-weight", type=float, help="penalty on the RMS distance from grey")
    ideal.add_argument("--l1-weight", type=float, help="penalty on the mean distance from grey")
    ideal.add_argument("--blur-weight", type=float,
                       help="penalty on the distance from a blurred copy")
    ideal.add_argument("--steps", type=int, help=f"default: the preset's ({custom.steps} for "
                                                  "custom)")
    ideal.add_argument("--learning-rate", type=float,
                       help=f"default: the preset's ({custom.learning_rate:g} for custom)")
    ideal.add_argument("--seed", type=int, default=config.RenderConfig().seed,
                       help="default %(default)s")
    ideal.add_argument("--out", type=Path, required=True, help="where to write the PNG")


def _attack_arguments(attack: argparse.ArgumentParser) -> None:
    """The `attack` command's options, from the attack table (`config.ATTACK_METHODS`)."""
    _model_arguments(attack)
    attack.add_argument("--image", type=Path, required=True, help="the image to attack")
    attack_defaults = config.AttackConfig()
    attack.add_argument("--method", default=attack_defaults.method,
                        choices=list(config.ATTACK_METHODS), help="; ".join(
                            f"{name}: {method.label}"
                            for name, method in config.ATTACK_METHODS.items()))
    attack.add_argument("--epsilon", type=float, default=attack_defaults.epsilon,
                        help="pixels of 0..255 (4 = 4/255), for "
                             f"{', '.join(config.BOUNDED_ATTACKS)}; default %(default)s")
    attack.add_argument("--steps", type=int, help="default: the method's (" + ", ".join(
        f"{name} {method.default_steps}" for name, method in config.ATTACK_METHODS.items()
        if "steps" in method.settings) + ")")
    attack.add_argument("--step-size", type=float,
                        help="pixels per step; default: 2.5 x epsilon / steps for pgd, 1 for "
                             "lesson (per unit of the model's input)")
    attack.add_argument("--target", help="class name or index (targeted attack)")
    attack.add_argument("--seed", type=int, default=attack_defaults.seed,
                        help="default %(default)s")
    attack.add_argument("--out", type=Path, required=True, help="where to write the PNG")


def _robustness_arguments(robustness: argparse.ArgumentParser) -> None:
    """The `robustness` command's options."""
    robustness.add_argument("run_dir", type=Path)
    robustness.add_argument("--epsilons", type=float, nargs="+", default=[0, 1, 2, 4, 8],
                            help="budgets in pixels (k for k/255)")
    robustness.add_argument("--method", default=config.AttackConfig().method,
                            choices=list(config.BOUNDED_ATTACKS))
    robustness.add_argument("--split", default="validation",
                            choices=[*data.SPLIT_NAMES, "val"])
    _measure_arguments(robustness)


def _sweep_arguments(sweep: argparse.ArgumentParser) -> None:
    """The `robustness-sweep` command's options: the training's, with a list of adversarial
    budgets in place of one, then how each run is measured."""
    _training_options(sweep)
    sweep.set_defaults(mode="end-to-end")  # fast mode cannot train adversarially
    sweep.add_argument("--epsilons", type=float, nargs="+", default=[0, 2, 4],
                       help="adversarial training budgets in pixels of 0..255, one run each "
                            "(0, the standard run, is always trained; default %(default)s)")
    _adversarial_options(sweep)
    sweep.add_argument("--attack-epsilons", type=float, nargs="+", default=[2, 4, 8],
                       help="the PGD budgets every run is measured at, on the same validation "
                            "images (default %(default)s)")
    _measure_arguments(sweep)


def _measure_arguments(parser: argparse.ArgumentParser) -> None:
    """How a run is measured under attack: PGD's steps and the sample of images."""
    parser.add_argument("--steps", type=int, default=config.ATTACK_METHODS["pgd"].default_steps,
                        help="PGD's steps; default %(default)s")
    parser.add_argument("--limit", type=int, default=200,
                        help="at most this many images of the split, drawn from every class "
                             "(seeded)")


def _learning_rate_help() -> str:
    rate = config.default_learning_rate
    return (f"Adam's step size (default: {rate('fast', 'edges'):g} fast, "
            f"{rate('fine-tune', 'imagenet'):g} when a pretrained body trains, "
            f"{rate('end-to-end', None):g} end to end from random weights)")


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help=MODEL_HELP)
    parser.add_argument("--labels", type=Path, help="class names, one a line (external models)")
    parser.add_argument("--preprocess", help="input convention of an external model, e.g. "
                                             "caffe, tf, mobilenet_v2, none")


class _ProgressPrinter:
    """Print progress to stderr: every epoch's metrics, and each tenth of other phases."""

    def __init__(self) -> None:
        self.last: tuple[str, int] = ("", -1)

    def __call__(self, step: int, total: int, metrics: dict) -> None:
        phase = metrics.get("phase", "")
        label = f"{metrics['run']}: {phase}" if "run" in metrics else phase  # a sweep's run
        if metrics.get("epoch_end"):
            print(f"[{label}] epoch {metrics['epoch']}/{metrics['epochs']} loss "
                  f"{metrics.get('loss', 0):.3f} val_accuracy {metrics.get('val_accuracy', 0):.3f}",
                  file=sys.stderr, flush=True)
            return
        tenth = int(10 * step / max(total, 1))
        if phase != "training" and (label, tenth) != self.last:
            self.last = (label, tenth)
            print(f"[{label}] {step}/{total}", file=sys.stderr, flush=True)


def _backbones(arguments: argparse.Namespace) -> dict[str, Any]:
    from tlcore import backbones

    rows = []
    for name in backbones.names():
        spec = backbones.get_spec(name)
        body = backbones.build_backbone(name, weights=None)
        rows.append({"name": name, "display_name": spec.display_name,
                     "default_input_size": spec.default_input_size,
                     "parameters": int(body.count_params()),
                     "imagenet_weights_local": backbones.has_local_imagenet_weights(name),
                     "imagenet_weights_file": str(backbones.imagenet_weights_path(name) or ""),
                     "weights_choices": backbones.weights_choices(name)})
    return {"backbones": rows}


def _weights(arguments: argparse.Namespace) -> dict[str, Any]:
    from tlcore import backbones

    spec = backbones.get_spec(arguments.backbone)
    if arguments.with_head:
        path = backbones.fetch_imagenet_top_weights(spec.name)
    else:
        path = backbones.resolve_weights(spec.name, "imagenet",
                                         arguments.image_size or spec.default_input_size)
    return {"backbone": spec.name, "with_head": arguments.with_head, "path": path}


def _train(arguments: argparse.Namespace) -> dict[str, Any]:
    import tensorflow as tf

    from tlcore import checkpoints, distribute, train

    if arguments.cpu_replicas:
        distribute.split_cpu(arguments.cpu_replicas)
    if arguments.resume:
        run = train.resume_training(checkpoints.load(arguments.resume),
                                    on_step=_ProgressPrinter())
        return _train_result(run)
    train_config = _train_config(arguments)
    strategy = distribute.mirrored() if arguments.distribute == "mirrored" else None
    runs_dir = arguments.runs_dir
    if arguments.distribute == "multi-worker":
        if train_config.mode == "fine-tune":
            raise ValueError("--distribute multi-worker trains fast mode (the embedding work is "
                             "shared) and end-to-end; fine-tuning runs on Keras fit, which fails "
                             "under MultiWorkerMirroredStrategy (keras-team/keras#20585): use "
                             "--distribute mirrored on one machine's GPUs")
        index, count = distribute.worker()
        if train_config.mode == "end-to-end":
            # Created first: the strategy must exist before TensorFlow runs anything.
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
            if index != 0:  # every worker trains the same weights; the chief saves them
                runs_dir = Path(tempfile.mkdtemp(prefix="tlcore-worker-"))
    dataset = data.load_dataset(arguments.data, seed=arguments.seed)
    if arguments.distribute == "multi-worker" and train_config.mode == "fast":
        started = time.perf_counter()
        train.embed_on_workers(train_config, dataset, index, count, on_step=_ProgressPrinter())
        if index != 0:  # the chief trains the head on the joined embeddings
            return {"worker": index, "workers": count,
                    "seconds": round(time.perf_counter() - started, 2)}
    try:
        run = train.train_classifier(train_config, dataset, runs_dir=runs_dir,
                                     on_step=_ProgressPrinter(), strategy=strategy)
    finally:
        if runs_dir is not arguments.runs_dir:  # a worker's copy of the chief's run
            shutil.rmtree(runs_dir, ignore_errors=True)
    if runs_dir is not arguments.runs_dir:
        return {"worker": index, "workers": count, "seconds": run.info["metrics"]["seconds"],
                "val_accuracy": run.info["metrics"].get("val_accuracy")}
    return _train_result(run)


def _settings(config_class: type, arguments: argparse.Namespace) -> dict[str, Any]:
    """The options that set a field of `config_class` (each is named after its field), left
    out when not given, so the field keeps its default."""
    return {field.name: getattr(arguments, field.name)
            for field in dataclasses.fields(config_class)
            if getattr(arguments, field.name, None) is not None}


def _train_config(arguments: argparse.Namespace) -> config.TrainConfig:
    """The training settings of the options; weights "none" or "random" mean None."""
    given = _settings(config.TrainConfig, arguments)
    if given.get("weights") in ("none", "random"):
        given["weights"] = None
    given["augmentation"] = _settings(config.Augmentation, arguments)
    return config.TrainConfig(**given)


def _train_result(run) -> dict[str, Any]:
    """The `train` command's JSON: the saved run's numbers and the files the data set left
    out, each named inside the data set with the reason (as `run.json` records them)."""
    metrics = run.info["metrics"]
    skipped = run.info["data"].get("skipped_files", [])
    return {"run_dir": str(run.run_dir), "classes": run.classes,
            "val_accuracy": metrics.get("val_accuracy"),
            "test_accuracy": metrics.get("test_accuracy"), "seconds": metrics["seconds"],
            "embedding_cache": run.info.get("embedding_cache"),
            "best_epoch": run.info.get("best_epoch"), "head_epochs": run.info.get("head_epochs"),
            "epochs_run": len(run.info["history"].get("loss", [])), "image_size": run.image_size,
            "weights": run.info["weights_label"],
            "skipped_count": len(skipped), "skipped_files": skipped,
            "resumed_from_epoch": run.info.get("resumed_from_epoch"),
            "distribute": run.info.get("distribute")}


def _evaluate(arguments: argparse.Namespace) -> dict[str, Any]:
    from tlcore import evaluate, runs

    split = "validation" if arguments.split == "val" else arguments.split
    return evaluate.evaluate_run(runs.load_run(arguments.run_dir), split)


def _export(arguments: argparse.Namespace) -> dict[str, Any]:
    from tlcore import export, runs

    path = export.export_tflite(runs.load_run(arguments.run_dir), arguments.out)
    return {"tflite": str(path), "bytes": path.stat().st_size}


def _predict(arguments: argparse.Namespace) -> dict[str, Any]:
    from tlcore import predict, runs

    k = predict.TOP_K if arguments.top_k is None else arguments.top_k
    return predict.predict_run(runs.load_run(arguments.run_dir), arguments.files, k=k,
                               on_step=_ProgressPrinter())


def _predictions_table(result: dict[str, Any]) -> str:
    """One line per file: its classes with their probabilities, or why it was not read."""
    lines = [f"{result['run']}: {result['images']} images predicted, "
             f"{result['unreadable']} could not be read"]
    for row in result["predictions"]:
        answer = row["error"] or ", ".join(
            f"{name} {probability:.1%}"
            for name, probability in zip(row["classes"], row["probabilities"]))
        lines.append(f"{row['file']}: {answer}")
    return "\n".join(lines)


def _lr_find(arguments: argparse.Namespace) -> dict[str, Any]:
    from tlcore import lr_find

    sweep = {name: getattr(arguments, name) for name in ("start", "end", "steps", "diverge")
             if getattr(arguments, name) is not None}
    result = lr_find.range_test(_train_config(arguments),
                                data.load_dataset(arguments.data, seed=arguments.seed),
                                on_step=_ProgressPrinter(), **sweep)
    return {"lr_find": result.to_dict()}


def _bakeoff(arguments: argparse.Namespace) -> dict[str, Any]:
    from tlcore import bakeoff, estimate

    dataset = data.load_dataset(arguments.data, seed=arguments.seed)
    base = config.TrainConfig(mode="fast", epochs=arguments.epochs,
                              image_size=arguments.image_size,
                              batch_size=arguments.batch_size, seed=arguments.seed)
    found = bakeoff.candidates(estimate.resolve_image_size(base, dataset),
                               arguments.include_random)
    chosen = bakeoff.select(found, arguments.only)
    return {"bakeoff": bakeoff.run(chosen, dataset, base=base, runs_dir=arguments.runs_dir,
                                   on_step=_ProgressPrinter())}


def _load_model(arguments: argparse.Namespace):
    """Return (classifier taking pixels, class names) for --model/--labels/--preprocess."""
    from tlcore import models, runs

    if arguments.model.startswith("imagenet:"):
        from tlcore import imagenet

        return (imagenet.imagenet_classifier(arguments.model.split(":", 1)[1]),
                list(imagenet.class_names()))
    path = Path(arguments.model)
    if path.is_dir():
        run = runs.load_run(path)
        return run.load_model(), run.classes
    if not arguments.labels or not arguments.preprocess:
        raise ValueError("a model file needs --labels FILE (one class name a line) and "
                         "--preprocess NAME (e.g. caffe, tf, none)")
    classes = [line.strip() for line in arguments.labels.read_text().splitlines() if line.strip()]
    model = models.wrap_external_model(models.load_model(path), arguments.preprocess)
    if model.output_shape[-1] != len(classes):
        raise ValueError(f"{arguments.labels} names {len(classes)} classes; the model has "
                         f"{model.output_shape[-1]} outputs")
    return model, classes


def class_index(value: str, classes: list[str]) -> int:
    """Resolve a class given by name or index.

    Raises:
        ValueError: neither a known name nor an index in range.
    """
    if value in classes:
        return classes.index(value)
    if value.lstrip("-").isdigit() and 0 <= int(value) < len(classes):
        return int(value)
    raise ValueError(f"class {value!r} is neither a class name nor an index below "
                     f"{len(classes)}; classes: {classes[:10]}")


def _ideal(arguments: argparse.Namespace) -> dict[str, Any]:
    from tlcore import images, models

    model, classes = _load_model(arguments)
    target = class_index(arguments.target, classes)
    scale = models.input_scale(model)
    render_config = visualize.preset(arguments.preset, models.input_size(model),
                                     input_scale=scale,
                                     **_settings(config.RenderConfig, arguments))
    result = visualize.render(model, target, render_config)
    saved = images.to_uint8(result.image)
    images.save_png(saved, arguments.out)
    notes = [visualize.lesson_note(scale) if arguments.preset == "lesson" else "",
             models.scores_note(model)]
    return {"target": classes[target], "target_index": target,
            "probability": result.probability, "total_variation": images.total_variation(saved),
            "pixel_std": round(float(saved.std()), 2),
            "steps": render_config.steps, "tv_weight": render_config.tv_weight,
            "objective_weight": round(render_config.objective_weight, 4),
            "preset": arguments.preset, "steps_per_second": round(result.steps_per_second, 2),
            "seconds": round(result.seconds, 3), "out": str(arguments.out),
            "notes": [note for note in notes if note]}


def _attack(arguments: argparse.Namespace) -> dict[str, Any]:
    from tlcore import attack, config, images, models

    started = time.perf_counter()
    model, classes = _load_model(arguments)
    target = None if arguments.target is None else class_index(arguments.target, classes)
    steps = arguments.steps or config.ATTACK_METHODS[arguments.method].default_steps
    attack_config = config.AttackConfig(method=arguments.method, epsilon=arguments.epsilon,
                                        steps=steps, step_size=arguments.step_size,
                                        target=target, seed=arguments.seed)
    image = images.load_image(arguments.image, models.input_size(model)).astype("float32")
    result = attack.make_attack(attack_config)(model, image[None], target=target)
    images.save_png(result.adversarial[0], arguments.out)
    clean = models.softmax(result.clean_logits)[0]
    adversarial = models.softmax(result.adversarial_logits)[0]
    return {"method": arguments.method,
            "epsilon": arguments.epsilon if arguments.method in config.BOUNDED_ATTACKS else None,
            "clean_class": classes[int(clean.argmax())], "clean_probability": float(clean.max()),
            "adversarial_class": classes[int(adversarial.argmax())],
            "adversarial_probability": float(adversarial.max()),
            "target": None if target is None else classes[target],
            "linf": float(result.linf[0]), "l2": float(result.l2[0]),
            "success": bool(result.success[0]), "seconds": round(time.perf_counter() - started, 3),
            "out": str(arguments.out)}


def _bench(arguments: argparse.Namespace) -> dict[str, Any]:
    try:
        from bench import suite
    except ImportError as error:
        raise ValueError("the benchmarks live in bench/ of the repository: run this from "
                         "the repository root") from error
    return suite.run(quick=arguments.quick, only=arguments.only)


def _robustness(arguments: argparse.Namespace) -> dict[str, Any]:
    from tlcore import attack, evaluate, runs

    run = runs.load_run(arguments.run_dir)
    split = "validation" if arguments.split == "val" else arguments.split
    images, labels = evaluate.sample_arrays(evaluate.dataset_of(run), split, run.image_size,
                                            arguments.limit)
    images = images.astype("float32")
    if not len(labels):
        raise ValueError(f"the {split} split of {run.run_id} has no images")
    curve = attack.robustness_curve(run.load_model(), images, labels, arguments.epsilons,
                                    method=arguments.method, steps=arguments.steps,
                                    num_classes=len(run.classes), on_step=_ProgressPrinter())
    return {"run": run.run_id, "split": split, "images": int(len(labels)),
            "method": arguments.method, "classes": run.classes, "curve": curve}


def _robustness_sweep(arguments: argparse.Namespace) -> dict[str, Any]:
    from tlcore import references, tradeoff

    train_config = _train_config(arguments)
    dataset = data.load_dataset(arguments.data, seed=arguments.seed)
    rows = tradeoff.sweep(train_config, dataset, arguments.epsilons, arguments.attack_epsilons,
                          steps=arguments.steps, limit=arguments.limit,
                          runs_dir=arguments.runs_dir, on_step=_ProgressPrinter())
    curve = rows[0]["curve"]
    return {"data": dataset.name, "method": train_config.adversarial_method,
            "split": tradeoff.SPLIT, "images": curve[0]["images"], "steps": arguments.steps,
            "attack_epsilons": [row["epsilon"] for row in curve[1:]], "sweep": rows,
            "references": [reference.to_dict() for reference in references.ROBUSTNESS]}


def _per_class_table(classes: list[str], curve: list[dict]) -> str:
    """Classes down, epsilons across: each class's accuracy under the attack ("-": none of
    its images in the sample)."""
    names = [f"{name} ({count})" for name, count in zip(classes, curve[0]["per_class_images"])]
    width = max(len(name) for name in ["class", *names])
    lines = [f"{'class':<{width}}" + "".join(f"{row['epsilon']:>9g}/255" for row in curve)]
    for index, name in enumerate(names):
        cells = [row["per_class"][index] for row in curve]
        lines.append(f"{name:<{width}}" + "".join(
            f"{'-' if cell is None else f'{cell:.3f}':>13}" for cell in cells))
    return "\n".join(lines)


def _sweep_table(result: dict[str, Any]) -> str:
    """The sweep's table (a row per training budget), then the published references."""
    header = (f"{'budget':>9} {'clean':>6}"
              + "".join(f" {f'PGD {epsilon:g}/255':>10}" for epsilon in result["attack_epsilons"])
              + f" {'seconds':>8} {'x time':>6}")
    rows = [f"{row['budget']:>5g}/255 {row['clean_accuracy']:>6.3f}"
            + "".join(f" {accuracy:>10.3f}" for accuracy in row["pgd_accuracy"])
            + f" {row['seconds']:>8.1f} {row['time_ratio']:>6.2f}" for row in result["sweep"]]
    published = [f"- {reference['sentence']} {reference['url']}"
                 for reference in result["references"]]
    return (f"{result['data']}: trained with {result['method']} at each budget, measured on "
            f"{result['images']} {result['split']} images (PGD, {result['steps']} steps)\n"
            + "\n".join([header, *rows])
            + "\n\nPublished results, for scale:\n" + "\n".join(published))


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _human(result: dict[str, Any]) -> str:
    if "backbones" in result:
        return "\n".join(f"{row['name']:<20} {row['default_input_size']:>4}px "
                         f"{row['parameters']:>11,} params  imagenet weights here: "
                         f"{'yes' if row['imagenet_weights_local'] else 'no'}"
                         for row in result["backbones"])
    if "table" in result:
        return f"{result['table']}\n\nwritten to {result['written']}"
    if "curve" in result:
        rows = [f"{'epsilon':>8} {'accuracy':>9} {'flipped':>8} {'mean L2':>8}"]
        rows += [f"{row['epsilon']:>6g}/255 {row['accuracy']:>9.3f} "
                 f"{row['success_rate']:>8.3f} {row['mean_l2']:>8.1f}" for row in result["curve"]]
        return (f"{result['run']}: {result['method']} on {result['images']} "
                f"{result['split']} images\n" + "\n".join(rows)
                + "\n\naccuracy per class (its images in the sample)\n"
                + _per_class_table(result["classes"], result["curve"]))
    if "sweep" in result:
        return _sweep_table(result)
    if "predictions" in result:
        return _predictions_table(result)
    if "lr_find" in result:
        from tlcore import lr_curve

        return lr_curve.describe(result["lr_find"])
    if "bakeoff" in result:
        from tlcore import bakeoff

        return bakeoff.table(result["bakeoff"])
    return "\n".join(f"{key}: {value}" for key, value in result.items()
                     if key not in ("confusion_matrix", "per_class", "reliability",
                                    "most_confused"))
