"""A robust model against a standard one on the demo shapes: accuracy under PGD, training
time, and how far each model's ideal images look like their class to a third model.

Two pairs, each trained twice with the same seed, epochs and recipe: once on the images as
they are (standard) and once on FGSM-with-random-start images at 4/255 (robust):
- the small CNN from scratch at 48 px, end to end, 12 epochs;
- the VGG16 body with the HED edge filters at 64 px, fine-tuned: 5 head epochs, then 2
  epochs of its top 2 blocks.
Measured on the same stratified sample of the test split (the validation split picked each
run's best epoch): clean accuracy and PGD accuracy at 2, 4 and 8/255. Training time: the
median epoch of each run (wall time, run after run), and standard and robust passes over
the same training images timed in turns, in CPU time: other work on a shared machine
changes wall times several-fold within a minute, the CPU time a pass costs much less.
Perceptual alignment: the ideal image of every class for both models with the same recipe
and seeds, and the share a judge classifies as the intended class. Each pair's judge is the
other pair's standard model: another architecture, trained independently.

About 13 min on 2 cores (28 min while other work loaded them heavily).
Run alone: `python -m bench.robust [--quick]` (quick: 20 images per class at 32 px, a few
steps, about a minute); prints a table and writes bench/results/<device>-robust-<full|quick>
.json (and .md) and the ideal images, standard row above robust row for each seed, to
<device>-robust-<full|quick>-ideals-<pair>-<recipe>.png.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from bench.suite import RESULTS, Row, device, row, write_results

if TYPE_CHECKING:
    import keras

    from tlcore import config, folders

EPSILON = 4.0  # the robust runs' budget, 4/255
EPSILONS = (2.0, 4.0, 8.0)  # PGD's budgets when the runs are tested
TIMED_IMAGES = 96  # training images per timed pass
SHOWN_SIDE = 144  # ideal images are enlarged to about this side in the saved grids


@dataclasses.dataclass(frozen=True)
class Plan:
    """One pair: its standard training (the robust one adds EPSILON) and how it is tested.

    Attributes:
        name: short, for file names and facts.
        label: for people.
        train: the standard run's settings.
        test_images: test images attacked (a stratified sample).
        attack_steps: PGD's steps.
        recipes: ideal-image presets rendered for both models.
        seeds: starts per class and recipe (each a judged image).
        render_steps: overrides the presets' steps (quick), or None.
        rounds: timed training passes of each model, in turns.
    """

    name: str
    label: str
    train: config.TrainConfig
    test_images: int
    attack_steps: int
    recipes: tuple[str, ...]
    seeds: int
    render_steps: int | None
    rounds: int


def plans(quick: bool) -> list[Plan]:
    """The scratch CNN's pair and the VGG16 edges body's, at full or quick size."""
    from tlcore import config

    if quick:
        scratch = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="end-to-end",
                                     epochs=2, image_size=32, patience=0)
        edges = config.TrainConfig(backbone="vgg16", weights="edges", mode="fine-tune",
                                   epochs=1, head_epochs=1, image_size=32, patience=0)
        return [Plan("scratch", "small CNN from scratch, 32 px", scratch, 18, 3,
                     ("custom", "clean"), 1, 10, 1),
                Plan("vgg16_edges", "VGG16 HED edges body fine-tuned, 32 px", edges, 18, 3,
                     ("custom",), 1, 10, 1)]
    scratch = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="end-to-end",
                                 epochs=12, image_size=48, patience=0)
    edges = config.TrainConfig(backbone="vgg16", weights="edges", mode="fine-tune", epochs=2,
                               image_size=64, patience=0)
    return [Plan("scratch", "small CNN from scratch, 48 px, end to end, 12 epochs", scratch,
                 132, 20, ("custom", "clean"), 3, None, 5),
            Plan("vgg16_edges", "VGG16 HED edges body, 64 px, fine-tuned 5 + 2 epochs", edges,
                 48, 10, ("custom",), 1, None, 3)]


def demo_data(quick: bool) -> folders.Dataset:
    """The demo set, or for a quick run a small one (20 images per class)."""
    from tlcore import config, data, demo

    if not quick:
        return data.demo_dataset()
    folder = demo.ensure_demo_images(config.cache_dir() / "demo-small", images_per_class=20)
    return data.from_folder(folder, native_size=demo.IMAGE_SIZE, synthetic=True)


class EpochClock:
    """An `on_step` that times the epochs of the last phase (fine-tuning's second stage),
    reading `timer` (seconds)."""

    def __init__(self, timer: Callable[[], float] = time.perf_counter) -> None:
        self.timer, self.phase, self.started, self.seconds = timer, "", None, []

    def __call__(self, step: int, total: int, metrics: dict) -> None:
        """Start the clock when an epoch begins; read it when the epoch ends."""
        if metrics.get("epoch_begin"):
            if metrics["phase"] != self.phase:
                self.phase, self.seconds = metrics["phase"], []
            self.started = self.timer()
        elif metrics.get("epoch_end") and self.started is not None:
            self.seconds.append(self.timer() - self.started)
            self.started = None

    def median(self) -> float:
        """The median epoch after the first (which builds the graphs)."""
        return statistics.median(self.seconds[1:] or self.seconds)


def train_pair(plan: Plan, dataset: folders.Dataset, runs_dir: Path) -> list[dict]:
    """Train the standard run, then the robust one; each as {"run", "model", "epoch"}."""
    from tlcore import train

    trained = []
    for epsilon in (0.0, EPSILON):
        clock = EpochClock()
        settings = dataclasses.replace(plan.train, adversarial_epsilon=epsilon)
        run = train.train_classifier(settings, dataset, runs_dir=runs_dir, on_step=clock)
        trained.append({"run": run, "model": run.load_model(), "epoch": clock.median()})
    return trained


def timed_trainer(settings: config.TrainConfig, num_classes: int) -> keras.Model:
    """A fresh classifier set up as its run trains it (blocks, BatchNorm), in what Keras
    fits: itself, or its adversarial training."""
    import keras

    from tlcore import adversarial, backbones, models

    size = settings.image_size
    body = backbones.build_backbone(settings.backbone, input_size=size, weights=(
        backbones.resolve_weights(settings.backbone, settings.weights, size)))
    pretrained = settings.weights not in backbones.RANDOM_WEIGHTS
    backbones.set_trainable_blocks(body, settings.backbone,
                                   settings.effective_trainable_blocks if pretrained else -1)
    classifier = models.build_classifier(settings.backbone, body, num_classes,
                                         freeze_batch_norm=pretrained)
    trainer = adversarial.trainer(classifier, settings)
    trainer.compile(optimizer=keras.optimizers.Adam(settings.effective_learning_rate),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return trainer


def pass_seconds(plan: Plan, dataset: folders.Dataset) -> dict[str, tuple[float, float]]:
    """Seconds of one training pass over the same TIMED_IMAGES images, standard and robust
    timed in turns, after an untimed first pass: medians of the process's CPU time (what
    the pass costs; other work on the machine changes wall times several-fold within a
    minute) and of the wall time.

    Returns:
        {"cpu": (standard, robust), "wall": (standard, robust)}.
    """
    from tlcore import evaluate

    images, labels = evaluate.sample_arrays(dataset, "train", plan.train.image_size,
                                            TIMED_IMAGES)
    trainers = [timed_trainer(dataclasses.replace(plan.train, adversarial_epsilon=epsilon),
                              dataset.num_classes) for epsilon in (0.0, EPSILON)]
    clocks = {"cpu": time.process_time, "wall": time.perf_counter}
    times = {name: ([], []) for name in clocks}
    for turn in range(plan.rounds + 1):
        for number, trainer in enumerate(trainers):
            started = {name: clock() for name, clock in clocks.items()}
            trainer.fit(images, labels, batch_size=plan.train.batch_size, epochs=1,
                        shuffle=False, verbose=0)
            for name, clock in clocks.items():
                if turn:
                    times[name][number].append(clock() - started[name])
    return {name: (statistics.median(standard), statistics.median(robust))
            for name, (standard, robust) in times.items()}


def curves(plan: Plan, pair: list[keras.Model], dataset: folders.Dataset) -> tuple[list[dict], int]:
    """PGD accuracy rows (epsilon 0 is clean) of each model on one test sample; its size."""
    from tlcore import compare, evaluate

    chosen = evaluate.sample_split(dataset, "test", plan.test_images)
    images, labels = evaluate.sample_pixels(dataset, chosen, plan.train.image_size)
    both = compare.robustness_pair(pair, [images, images], labels, (0.0, *EPSILONS),
                                   methods=("pgd",), steps=plan.attack_steps)
    return [curve["pgd"] for curve in both], len(labels)


def ideals(plan: Plan, pair: list[keras.Model], judge: keras.Model, recipe: str, tag: str) -> dict:
    """Both models' ideal images of every class (plan.seeds starts each), judged; the grid
    (a standard row above a robust row, per seed) saved as a PNG.

    Returns:
        {"standard", "robust": compare.alignment's result over all their images (predicted
        as a list), "png": the grid's path, "seconds"}.
    """
    from tlcore import compare, images

    classes = list(range(pair[0].output_shape[-1]))
    rows: list[np.ndarray] = []
    started = time.perf_counter()
    for seed in range(plan.seeds):
        overrides = {"seed": seed, **({"steps": plan.render_steps} if plan.render_steps
                                      else {})}
        rendered = compare.ideal_pair(pair, classes, recipe, overrides=overrides)
        rows += [np.stack([result.image for result in results]) for results in rendered]
    seconds = time.perf_counter() - started
    verdicts = {name: compare.alignment(judge, np.concatenate(rows[first::2]),
                                        classes * plan.seeds)
                for name, first in (("standard", 0), ("robust", 1))}
    shown = np.concatenate(rows)
    factor = max(1, SHOWN_SIDE // shown.shape[1])
    grid = images.image_grid(shown.repeat(factor, axis=1).repeat(factor, axis=2),
                             columns=len(classes))
    png = images.save_png(grid, RESULTS / f"{tag}-ideals-{plan.name}-{recipe}.png")
    return {**verdicts, "png": str(png.relative_to(RESULTS.parents[1])), "seconds": seconds}


def pair_rows(plan: Plan, trained: list[dict], curve: list[list[dict]], count: int,
              passes: dict[str, tuple[float, float]], alignments: dict, judge_label: str
              ) -> list[Row]:
    """The pair's rows: robust (ours) against standard (baseline)."""
    standard, robust = curve
    bench = f"robust {plan.name}"
    accuracy = [row(bench, f"{plan.label}: clean accuracy, {count} test images",
                    robust[0]["accuracy"], standard[0]["accuracy"], "fraction",
                    note="whole test split: robust "
                         f"{trained[1]['run'].info['metrics']['test_accuracy']:.3f}, standard "
                         f"{trained[0]['run'].info['metrics']['test_accuracy']:.3f}")]
    accuracy += [row(bench, f"PGD-{plan.attack_steps} accuracy at {epsilon:g}/255",
                     attacked["accuracy"], plain["accuracy"], "fraction")
                 for epsilon, attacked, plain in zip(EPSILONS, robust[1:], standard[1:])]
    seconds = [{"run": item["run"].info["metrics"]["seconds"], "epoch": item["epoch"]}
               for item in trained]
    cpu, wall = passes["cpu"], passes["wall"]
    timing = [row(bench, f"training pass over {TIMED_IMAGES} images, CPU time, in turns",
                  cpu[1], cpu[0], "CPU s", 0.5, higher_is_better=False,
                  note=f"ratio standard/robust; target: robust under 2x; wall time robust "
                       f"{wall[1]:.2f} s, standard {wall[0]:.2f} s"),
              row(bench, "median epoch of each run (run after run)", seconds[1]["epoch"],
                  seconds[0]["epoch"], "s", higher_is_better=False,
                  note=f"whole runs: robust {seconds[1]['run']:.0f} s, standard "
                       f"{seconds[0]['run']:.0f} s (with loading, scoring, and when "
                       "fine-tuning the head's embeddings, cached for the robust run)")]
    alignment = []
    for recipe, verdicts in alignments.items():
        images = len(verdicts["robust"]["predicted"])
        alignment += [
            row(bench, f"alignment, '{recipe}' ideal images: share the judge names the class",
                verdicts["robust"]["share"], verdicts["standard"]["share"], "fraction",
                note=f"{images} images per model; judge: {judge_label}"),
            row(bench, f"alignment, '{recipe}': judge's mean probability of the class",
                verdicts["robust"]["mean_probability"],
                verdicts["standard"]["mean_probability"], "probability")]
    return accuracy + timing + alignment


def run(quick: bool = False, tag: str = "robust") -> tuple[list[Row], dict]:
    """Train, attack, time and render both pairs; return the rows and the facts."""
    from tlcore import config

    with tempfile.TemporaryDirectory() as folder:
        os.environ["TLCORE_HOME"] = str(Path(folder) / "home")
        dataset = demo_data(quick)
        chosen = plans(quick)
        trained = [train_pair(plan, dataset, config.runs_dir()) for plan in chosen]
        rows, facts = [], {}
        for number, plan in enumerate(chosen):
            pair = [item["model"] for item in trained[number]]
            judge = trained[1 - number][0]
            judge_label = (f"the standard {chosen[1 - number].label} (test accuracy "
                           f"{judge['run'].info['metrics']['test_accuracy']:.3f})")
            curve, count = curves(plan, pair, dataset)
            passes = pass_seconds(plan, dataset)
            alignments = {recipe: ideals(plan, pair, judge["model"], recipe, tag)
                          for recipe in plan.recipes}
            rows += pair_rows(plan, trained[number], curve, count, passes, alignments,
                              judge_label)
            facts[plan.name] = {
                "settings": plan.train.to_dict(), "epsilon": EPSILON, "judge": judge_label,
                "curves": {"standard": curve[0], "robust": curve[1]}, "passes": passes,
                "histories": [item["run"].info["history"] for item in trained[number]],
                "alignment": alignments, "classes": list(dataset.class_names)}
    return rows, facts


def main() -> None:
    """Parse the arguments, run, print the table and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="20 images per class at 32 px, a few steps: a smoke run")
    arguments = parser.parse_args()
    tag = f"{device()}-robust-{'quick' if arguments.quick else 'full'}"
    started = time.perf_counter()
    rows, facts = run(arguments.quick, tag)
    written = write_results(tag, rows, seconds=round(time.perf_counter() - started), **facts)
    print(written["table"])
    print(f"written: {written['written']}", file=sys.stderr)


if __name__ == "__main__":
    main()
