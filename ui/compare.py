"""The Robustness lab's parts: two runs picked side by side, and each comparison of them
(robustness curves, per class under attack, transfer, ideal images, explanations).

Every heavy comparison runs both models in one turn with one progress bar
(`ui.work.heavy`), holding both models' locks, and is kept in the session
(`state.comparison`) until another pair is picked.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Iterator

import numpy as np
import streamlit as st

from tlcore import (attack, backbones, compare, config, data, evaluate, images, references,
                    runs, visualize)
from ui import attacking, cache, charts, evaluation, robust_training, state, widgets, work

TRANSFER_EPSILONS = (1, 2, 4, 8, 16)
IDEAL_STEPS = (50, 100, 150, 300)


@dataclasses.dataclass(frozen=True)
class Pair:
    """Two runs of the same data set, their shared models and that data set."""

    runs: tuple[runs.Run, runs.Run]
    shared: tuple[cache.SharedModel, cache.SharedModel]
    dataset: data.Dataset

    @property
    def models(self) -> list:
        """The two classifiers (use them only inside `locked`)."""
        return [shared.model for shared in self.shared]

    @property
    def names(self) -> list[str]:
        """'A' and 'B' with how each was trained, short, for legends and tables."""
        return [f"{letter} ({robust_words(run, short=True)})"
                for letter, run in zip(compare.PAIR, self.runs)]

    @property
    def key(self) -> str:
        """Names the pair in session state."""
        return "|".join(f"{run.run_id}@{run.info.get('created')}" for run in self.runs)

    @property
    def classes(self) -> list[str]:
        """The shared class names."""
        return self.runs[0].classes

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold both models' locks (always in the same order, so two pairs never wait on
        each other)."""
        ordered = sorted(zip(self.runs, self.shared), key=lambda item: item[0].run_id)
        with ordered[0][1].lock, ordered[1][1].lock:
            yield

    def pixels(self, chosen: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """The images at `chosen` loaded at each model's side, and their labels."""
        loaded = [evaluate.sample_pixels(self.dataset, chosen, run.image_size)
                  for run in self.runs]
        return [pixels.astype(np.float32) for pixels, _ in loaded], loaded[0][1]


def robust_words(run: runs.Run, short: bool = False) -> str:
    """How a run was trained against attacks, in words: "standard", or "robust" and its
    budget (and, unless `short`, the attack: `robust_training.label`)."""
    settings = run.info.get("config", {})
    label = robust_training.label(settings)
    if not label:
        return "standard"
    return f"robust {settings['adversarial_epsilon']:g}/255" if short else f"robust, {label}"


def pick_pair() -> Pair | None:
    """Two runs to compare (default: the newest standard run and the newest robust run of
    the same data); None, with the reason shown, until two comparable runs are picked."""
    all_runs = cache.all_runs()
    if len(all_runs) < 2:
        st.info("The lab compares two runs of the same data set: train a standard one and a "
                "robust one (Train page, *Robust training*) first.", icon=":material/info:")
        st.page_link("app_pages/train.py", label="Open the Train page",
                     icon=":material/model_training:")
        return None
    first, second = _default_pair(all_runs)
    left, right = st.columns(2)
    chosen = [column.selectbox(f"Model {letter}", all_runs, index=all_runs.index(default),
                               key=f"compare-{letter}", format_func=_run_label)
              for column, letter, default in zip((left, right), compare.PAIR, (first, second))]
    try:
        compare.check_pair(*chosen)
        dataset = cache.run_dataset(chosen[0])
    except ValueError as error:
        widgets.error(error)
        return None
    pair = Pair(tuple(chosen), tuple(cache.shared_model(run) for run in chosen), dataset)
    state.keep_comparisons(pair.key)
    return pair


def _run_label(run: runs.Run) -> str:
    return f"{run.label()} ({robust_words(run)})"


def _default_pair(all_runs: list[runs.Run]) -> tuple[runs.Run, runs.Run]:
    """The newest standard run and the newest robust run of the same data and classes;
    else the two newest runs of the same data; else the two newest."""
    def fits(run: runs.Run, other: runs.Run) -> bool:
        return run is not other and run.classes == other.classes and (
            run.info.get("data", {}).get("fingerprint")
            == other.info.get("data", {}).get("fingerprint"))

    robust = [run for run in all_runs if robust_words(run) != "standard"]
    for run in robust:
        standard = [other for other in all_runs
                    if fits(other, run) and robust_words(other) == "standard"]
        if standard:
            return standard[0], run
    for run in all_runs:
        others = [other for other in all_runs if fits(other, run)]
        if others:
            return run, others[0]
    return all_runs[0], all_runs[1]


def summary(pair: Pair) -> None:
    """What each run is: body, mode, side, robustness, accuracy and training time."""
    rows = []
    for letter, run in zip(compare.PAIR, pair.runs):
        settings, metrics = run.info.get("config", {}), run.info.get("metrics", {})
        spec = backbones.get_spec(settings.get("backbone", "scratch_cnn"))
        rows.append({"model": letter, "run": run.name,
                     "network": f"{spec.display_name}, {settings.get('mode')}, "
                                f"{run.image_size} px",
                     "training": robust_words(run),
                     "validation accuracy": metrics.get("val_accuracy"),
                     "test accuracy": metrics.get("test_accuracy"),
                     "training time (s)": metrics.get("seconds")})
    st.dataframe(rows, hide_index=True, width="stretch", column_config={
        key: st.column_config.NumberColumn(format="%.3f")
        for key in ("validation accuracy", "test accuracy")} | {
        "training time (s)": st.column_config.NumberColumn(format="%.0f")})


def _sample(pair: Pair, key: str, label: str = "Validation images") -> np.ndarray | None:
    """A stratified sample of the validation split (a slider), said in words."""
    count = attacking.image_count(pair.dataset, "validation", label, key)
    if not count:
        return None
    chosen = evaluate.sample_split(pair.dataset, "validation", count)
    st.caption(attacking.sample_words(pair.dataset, "validation", chosen))
    return chosen


def _run_both(pair: Pair, what: str, title: str,
              compute: Callable[[work.Progress], Any]) -> None:
    """Run `compute(progress)` in one turn holding both models, and keep what it returns as
    the pair's `what`; a stop (None returned, or an attack stopped) or a limit is said."""
    with work.heavy(title) as job:
        try:
            with pair.locked():
                result = compute(job)
        except attack.AttackStopped:
            result = None
        except config.LimitError as error:
            widgets.error(error, icon=":material/block:")
            return
        if result is None:
            st.warning(f"Stopped: {job.stopped_because or 'cancelled'}; nothing from it was "
                       "kept.", icon=":material/timer_off:")
        else:
            state.set_comparison(pair.key, what, result)


def robustness_view(pair: Pair) -> None:
    """Both models' FGSM and PGD curves on one chart, then accuracy per class under PGD."""
    chosen = _sample(pair, "compare-curve-count")
    if chosen is None:
        return
    steps = int(st.number_input("PGD steps", 1, min(50, config.limits().attack_steps or 50),
                                10, key="compare-curve-steps"))
    seconds = [attack.curve_estimated_seconds(model, attacking.CURVE_EPSILONS,
                                              attacking.CURVE_METHODS, steps, len(chosen))
               for model in pair.models]
    st.caption(attacking.expected_time(
        None if None in seconds else sum(seconds),
        f"2 models x {len(attacking.CURVE_EPSILONS) - 1} budgets x {len(chosen)} images x "
        f"(1 FGSM step + {steps} PGD steps)"))
    if st.button("Compute both curves", icon=":material/show_chart:"):
        pixels, labels = pair.pixels(chosen)
        _run_both(pair, "curves", f"Robustness curves of 2 models on {len(chosen)} images",
                  lambda job: compare.robustness_pair(
                      pair.models, pixels, labels, attacking.CURVE_EPSILONS,
                      methods=attacking.CURVE_METHODS, steps=steps, on_step=job.on_step,
                      should_stop=job.should_stop))
    curves = state.comparison(pair.key, "curves")
    if curves is None:
        return
    st.plotly_chart(charts.robustness_pair(curves, pair.names), width="stretch")
    st.caption("Accuracy of each model on the same images (each at its own image size) as "
               "the attack's budget grows. A robust model's curves fall more slowly; its "
               "accuracy at 0 (clean images) is usually a little lower: robustness costs "
               "clean accuracy.")
    with st.expander("Published results, for scale", icon=":material/menu_book:"):
        st.dataframe([{"model": reference.setting, "attack": reference.attack,
                       "clean %": reference.clean, "under attack %": reference.attacked,
                       "source": f"{reference.source} ({reference.year})"}
                      for reference in references.ROBUSTNESS], hide_index=True, width="stretch")
        st.caption("Other data (ImageNet, CIFAR-10), far bigger models and stronger attacks "
                   "than here: the pattern to compare is the drop from clean to attacked, "
                   "and how much of it robust training keeps.")
    _per_class_under_attack(pair, curves)


def _per_class_under_attack(pair: Pair, curves: list[dict[str, list[dict]]]) -> None:
    """Accuracy per class under PGD at one budget, both models side by side."""
    budgets = [row["epsilon"] for row in curves[0]["pgd"] if row["epsilon"]]
    epsilon = st.select_slider("Budget for the per-class view (k/255)", budgets,
                               value=budgets[min(2, len(budgets) - 1)],
                               format_func=lambda value: f"{value:g}/255",
                               key="compare-class-epsilon")
    rows = [next(row for row in curve["pgd"] if row["epsilon"] == epsilon) for curve in curves]
    clean = [curve["pgd"][0] for curve in curves]
    st.plotly_chart(charts.per_class_pair(pair.classes, [row["per_class"] for row in rows],
                                          pair.names, f"Accuracy per class under PGD at "
                                                      f"{epsilon:g}/255"), width="stretch")
    table = [{"class": name,
              **{f"{letter} clean": clean[number]["per_class"][index]
                 for number, letter in enumerate(compare.PAIR)},
              **{f"{letter} at {epsilon:g}/255": rows[number]["per_class"][index]
                 for number, letter in enumerate(compare.PAIR)},
              "images": rows[0]["per_class_images"][index]}
             for index, name in enumerate(pair.classes)]
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        column: st.column_config.NumberColumn(format="%.2f")
        for column in table[0] if column not in ("class", "images")})
    st.caption("Classes with few images in the sample move in big steps: one image is "
               "1/n of its class.")


def transfer_view(pair: Pair) -> None:
    """Adversarial images made on each model, scored by both: a 2 x 2 table."""
    st.markdown("An attack follows the gradients of the model it is made on. Scored by a "
                "second model, the same images usually fool it far less: each network relies "
                "on its own fragile patterns. Images made on a robust model change what "
                "people would call the object, and those tend to transfer better.")
    chosen = _sample(pair, "compare-transfer-count")
    if chosen is None:
        return
    left, right = st.columns(2)
    epsilon = left.select_slider("Budget (k/255)", TRANSFER_EPSILONS, value=4,
                                 format_func=lambda value: f"{value:g}/255",
                                 key="compare-transfer-epsilon")
    steps = int(right.number_input("PGD steps", 1, min(50, config.limits().attack_steps or 50),
                                   10, key="compare-transfer-steps"))
    attack_config = config.AttackConfig(method="pgd", epsilon=float(epsilon), steps=steps)
    chosen_attack = attack.make_attack(attack_config)
    seconds = [chosen_attack.estimated_seconds(model, len(chosen)) for model in pair.models]
    st.caption(attacking.expected_time(None if None in seconds else sum(seconds),
                                       f"2 models x {len(chosen)} images x {steps} PGD steps"))
    if st.button("Attack both and swap", icon=":material/swap_horiz:"):
        pixels, labels = pair.pixels(chosen)
        _run_both(pair, "transfer", f"PGD on 2 models, {len(chosen)} images",
                  lambda job: (epsilon, compare.transfer_table(
                      pair.models, pixels, labels, attack_config, on_step=job.on_step,
                      should_stop=job.should_stop)))
    stored = state.comparison(pair.key, "transfer")
    if stored is None:
        return
    epsilon, table = stored
    st.dataframe([{"images made on": pair.names[made],
                   **{f"accuracy of {pair.names[scored]}":
                      f"{cell['accuracy']:.2f} (clean {cell['clean_accuracy']:.2f})"
                      for scored, cell in enumerate(row)}}
                  for made, row in enumerate(table)], hide_index=True, width="stretch")
    own = [table[number][number]["fooled"] for number in range(2)]
    swapped = [table[number][1 - number]["fooled"] for number in range(2)]
    st.caption(f"PGD at {epsilon:g}/255 on {table[0][0]['images']} images. On its own model "
               f"the attack flipped {own[0]:.0%} (A) and {own[1]:.0%} (B) of the images that "
               f"model had right; moved to the other model, {swapped[0]:.0%} (A's images on B) "
               f"and {swapped[1]:.0%} (B's on A). Images are resized when the models' sizes "
               "differ, which blurs the perturbation a little.")


def ideal_view(pair: Pair) -> None:
    """The ideal image of every class for both models, with what the other model says."""
    st.markdown("The same recipe climbs each model's score for each class from the same "
                "noise. A standard model's answer is mostly texture: any pattern that raises "
                "the score, however it looks. A robust model cannot be moved by small changes, "
                "so the climb has to change what the image shows, and shapes and colours of "
                "the class appear (Santurkar et al. 2019). Each image is also shown to the "
                "other model: does it see the class too?")
    names = list(visualize.PRESETS)
    left, middle = st.columns(2)
    preset = left.selectbox("Recipe", names, format_func=lambda name: visualize.PRESETS[name]
                            .label, index=names.index("custom"), key="compare-ideal-recipe")
    steps = middle.select_slider("Steps", IDEAL_STEPS, value=100, key="compare-ideal-steps")
    classes = st.multiselect("Classes", range(len(pair.classes)),
                             default=list(range(min(len(pair.classes), 12))),
                             format_func=lambda index: pair.classes[index],
                             key="compare-ideal-classes")
    if not classes:
        st.info("Pick at least one class.", icon=":material/info:")
        return
    batches = visualize.class_render_steps(len(classes), 1)
    seconds = [visualize.expected_seconds(model, steps, -(-len(classes) // batches))
               for model in pair.models]
    expected = ("" if None in seconds else
                f" Expected: about {sum(seconds) * batches:.0f} s (timed on these models' "
                "last renders here).")
    st.caption(f"Work: 2 models x {len(classes)} classes x {steps} steps.{expected}")
    def render(job: work.Progress) -> tuple[list, list[np.ndarray]] | None:
        rendered = compare.ideal_pair(pair.models, classes, preset,
                                      overrides={"steps": int(steps)}, on_step=job.on_step,
                                      should_stop=job.should_stop)
        if len(rendered) < 2 or len(rendered[1]) < len(classes):
            return None  # stopped part-way
        return rendered, [compare.verdicts(pair.models[1 - number],
                                           np.stack([result.image for result in results]))
                          for number, results in enumerate(rendered)]

    if st.button("Render both", icon=":material/palette:"):
        _run_both(pair, "ideal", f"Ideal images of {len(classes)} classes, 2 models", render)
    stored = state.comparison(pair.key, "ideal")
    if stored is not None:
        _ideal_grid(pair, *stored)


def _ideal_grid(pair: Pair, rendered: list, said: list[np.ndarray]) -> None:
    """Per class: A's image over B's, each with its own probability and the other's verdict."""
    per_row = 4
    shares = [float(np.mean([verdict.argmax() == result.target
                             for verdict, result in zip(said[number], rendered[number])]))
              for number in range(2)]
    st.caption(f"The other model calls {shares[0]:.0%} of A's images and {shares[1]:.0%} of "
               "B's by their intended class (chance: "
               f"{1 / len(pair.classes):.0%}).")
    for start in range(0, len(rendered[0]), per_row):
        for column, index in zip(st.columns(per_row), range(start, start + per_row)):
            if index >= len(rendered[0]):
                break
            with column:
                target = rendered[0][index].target
                st.markdown(f"**{widgets.plain(pair.classes[target])}**")
                for number in range(2):
                    result, verdict = rendered[number][index], said[number][index]
                    other = compare.PAIR[1 - number]
                    widgets.show_image(
                        result.image, f"{compare.PAIR[number]}: p = {result.probability:.2f}; "
                        f"{other} says {pair.classes[int(verdict.argmax())]} "
                        f"({verdict.max():.2f})", 160)


def explain_view(pair: Pair) -> None:
    """Grad-CAM and saliency of both models on the same image."""
    st.markdown("Where does each model look? On photos, a robust model's saliency (the "
                "pixels whose change moves its score most) follows the object's outline "
                "while a standard model's looks like scattered noise (Tsipras et al. 2019); "
                "on small models and simple shapes the difference can be slight.")
    source = st.radio("Image", ["split", "upload"], horizontal=True, key="compare-image-source",
                      format_func={"split": "From the validation split",
                                   "upload": "Upload"}.get)
    label = None
    if source == "upload":
        upload = st.file_uploader("An image", type=["png", "jpg", "jpeg", "bmp", "webp"],
                                  key="compare-upload")
        if upload is None:
            return
        origin = upload.getvalue()
    else:
        members = pair.dataset.splits["validation"]
        if not len(members):
            st.info("This data set has no validation images: upload one.",
                    icon=":material/info:")
            return
        number = int(st.number_input("Image number", 0, len(members) - 1, 0,
                                     key="compare-image-index"))
        origin = pair.dataset.paths[members[number]]
        label = int(pair.dataset.labels[members[number]])
    for letter, run in zip(compare.PAIR, pair.runs):
        st.markdown(f"**{letter}: {widgets.plain(run.name)}** ({robust_words(run)}, "
                    f"{run.image_size} px)")
        try:
            image = images.load_image(origin, run.image_size).astype(np.float32)
        except ValueError as error:
            widgets.error(error)
            return
        evaluation.explain_panel(run, image, label, key=f"compare-{letter}")
