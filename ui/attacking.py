"""The Attack page's views: choose an image and an attack, show the result, the batch
success rate, the robustness curve and whether a second model is fooled too."""
from __future__ import annotations

import numpy as np
import streamlit as st

from tlcore import attack, config, data, evaluate, images, models, references
from ui import cache, charts, state, widgets, work
from ui.model_choice import PickedModel

CURVE_EPSILONS = (0, 1, 2, 4, 8, 16)
CURVE_METHODS = ("fgsm", "pgd")
DISTANCES = ("L-inf is the largest change of any one pixel (what epsilon bounds); L2 is the "
             "total size of the change over all pixels (the square root of the sum of "
             "squares). A small L2 can hide a large change of a few pixels.")


def pick_image(picked: PickedModel) -> tuple[np.ndarray, int | None] | None:
    """An image at the model's size and its true class (None when unknown): from the run's
    test split, an upload, or a sample of the demo set."""
    sources = {"upload": "Upload", "sample": "A sample (demo set)"}
    if picked.run is not None:
        sources = {"test": "From the run's test split", **sources}
    source = st.radio("Image", list(sources), horizontal=True, format_func=sources.get,
                      key="attack-image-source")
    if source == "upload":
        image = widgets.uploaded_image(picked.size)
        return None if image is None else (image, None)
    if source == "sample":
        dataset = cache.dataset("demo")
        index = st.slider("Sample", 0, len(dataset.paths) - 1, 0, key="attack-sample")
        st.caption(f"A demo-set {dataset.class_names[dataset.labels[index]]} (the model's own "
                   "classes may differ: the attack then moves away from its own answer).")
        return images.load_image(dataset.paths[index], picked.size).astype(np.float32), None
    chosen = widgets.run_test_image(picked.run, picked.size, "attack-test-image")
    if chosen is not None:
        st.caption(f"True class: {widgets.plain(picked.classes[chosen[1]])}")
    return chosen


def settings_form(picked: PickedModel) -> config.AttackConfig | None:
    """The attack's settings (the form follows `config.ATTACK_METHODS`); returned when the
    user presses Attack."""
    names = list(config.ATTACK_METHODS)
    method = st.radio("Method", names, index=names.index(config.AttackConfig.method),
                      format_func=lambda name: config.ATTACK_METHODS[name].label,
                      horizontal=True, key="attack-method")
    facts = config.ATTACK_METHODS[method]
    budgeted = " and ".join(name.upper() for name in config.BOUNDED_ATTACKS)
    with st.form("attack"):
        columns = st.columns(3)
        epsilon = columns[0].slider("Epsilon (k/255)", 1, 32, 4, disabled=not facts.bounded,
                                    help="The largest change of any pixel, in levels of "
                                         f"0..255 ({budgeted}; the others have no budget).")
        most = config.limits().attack_steps or 500
        steps = columns[1].number_input("Steps", 1, most, min(most, facts.default_steps),
                                        disabled="steps" not in facts.settings,
                                        key=f"attack-steps-{method}")
        step_size = columns[2].number_input(
            "Step size (0: automatic)", 0.0, 1e6, facts.default_step_size or 0.0,
            disabled="step_size" not in facts.settings, key=f"attack-step-{method}",
            help="PGD: pixels per step (automatic: 2.5 x epsilon / steps). The lesson's "
                 "descent: pixels per unit of the gradient with respect to the model's own "
                 "input (the lesson uses 1, on VGG16, whose input is pixels minus a mean).")
        scale = models.input_scale(picked.model)
        if method == "lesson" and abs(scale - 1) > 1e-3:
            st.caption(f"This model rescales its pixels (its input moves {1 / scale:.4g} times "
                       "less per pixel than VGG16's), so each descent step is "
                       f"{1 / scale:.4g} times longer in pixels: as far, per unit of the "
                       "model's input, as the lesson's steps on VGG16.")
        chosen = attack.make_attack(config.AttackConfig(method=method, steps=int(steps)))
        st.caption(expected_time(chosen.estimated_seconds(picked.model, 1),
                                 f"1 image x {steps_words(chosen)}", chosen))
        targets = [None, *range(len(picked.classes))]
        target = None
        if facts.targetable:
            target = st.selectbox("Target class (type to search)", targets,
                                  format_func=lambda t: "none: any wrong class" if t is None
                                  else picked.classes[t])
        if not st.form_submit_button("Attack", type="primary", icon=":material/bolt:"):
            return None
    return config.AttackConfig(method=method, epsilon=float(epsilon), steps=int(steps),
                               step_size=float(step_size) or None, target=target)


def run_attack(picked: PickedModel, attack_config: config.AttackConfig, pixels: np.ndarray,
               labels: np.ndarray | None) -> attack.AttackResult | None:
    """Attack a batch in its turn, with progress and Cancel; None (and the reason shown)
    when it was stopped or refused."""
    chosen = attack.make_attack(attack_config)
    try:
        with work.heavy(f"Attacking {widgets.count(len(pixels), 'image')}") as job, \
                picked.lock:
            return chosen(
                picked.model, pixels.astype(np.float32), labels, target=attack_config.target,
                should_stop=job.should_stop, on_step=job.on_step)
    except attack.AttackStopped:
        st.warning(f"The attack stopped: {job.stopped_because}.", icon=":material/timer_off:")
    except config.LimitError as error:
        widgets.error(error, icon=":material/block:")
    return None


def show_result(picked: PickedModel, attack_config: config.AttackConfig,
                result: attack.AttackResult) -> None:
    """Original, magnified perturbation and adversarial image; numbers; bars before/after."""
    clean = models.softmax(result.clean_logits)[0]
    adversarial = models.softmax(result.adversarial_logits)[0]
    largest = max(float(np.abs(result.perturbation[0]).max()), 1.0)
    factor = 127.5 / largest
    columns = st.columns(3)
    with columns[0]:
        widgets.show_image(result.clean[0], f"Original: {picked.classes[clean.argmax()]} "
                                            f"{clean.max():.2f}")
    with columns[1]:
        widgets.show_image(127.5 + result.perturbation[0] * factor,
                           f"Perturbation x{factor:.0f} (grey = unchanged)")
    with columns[2]:
        widgets.show_image(result.adversarial[0], f"Adversarial: "
                                                  f"{picked.classes[adversarial.argmax()]} "
                                                  f"{adversarial.max():.2f}")
        st.download_button("Download adversarial PNG", images.png_bytes(result.adversarial[0]),
                           file_name="adversarial.png", mime="image/png",
                           icon=":material/download:")
    if result.target is None and clean.argmax() != result.labels[0]:
        st.warning("The model already gets this image wrong, so any result counts as a "
                   "success: pick an image it classifies correctly.", icon=":material/info:")
    metrics = st.columns(3)
    metrics[0].metric("Success", "yes" if result.success[0] else "no")
    facts = config.ATTACK_METHODS[attack_config.method]
    budget = f" / {attack_config.epsilon:.0f}" if facts.bounded else " (no budget)"
    metrics[1].metric("L-inf (px)", f"{result.linf[0]:.0f}{budget}", help=DISTANCES)
    metrics[2].metric("L2 (px)", f"{result.l2[0]:.1f}", help=DISTANCES)
    st.caption("The saved PNG is what was scored: pixels rounded to whole levels" +
               (", still within epsilon." if facts.bounded else f". {facts.note}"))
    highlight = [int(clean.argmax())] + ([] if result.target is None else [result.target])
    bars = st.columns(2)
    bars[0].plotly_chart(charts.probability_bars(clean, picked.classes, "Before",
                                                 highlight=highlight), width="stretch")
    bars[1].plotly_chart(charts.probability_bars(adversarial, picked.classes, "After",
                                                 highlight=highlight), width="stretch")


def second_opinion(picked: PickedModel, result: attack.AttackResult) -> None:
    """Score the adversarial image with another run: attacks made for one model often fail
    on another."""
    others = [run for run in cache.all_runs() if run.run_id != picked.key]
    if not others:
        return
    other = st.selectbox("Second model", [None, *others], key="attack-second",
                         format_func=lambda r: "none" if r is None else r.label())
    if other is None:
        return
    shared = cache.shared_model(other)
    with shared.lock:
        scored = attack.transfer(result, shared.model)
    before = models.softmax(scored["clean_logits"])[0]
    after = models.softmax(scored["adversarial_logits"])[0]
    verdict = "fooled too" if scored["fooled"][0] else "not fooled"
    st.info(f"**{other.run_id}**: {widgets.plain(shared.classes[before.argmax()])} "
            f"{before.max():.2f} on the original, {widgets.plain(shared.classes[after.argmax()])} "
            f"{after.max():.2f} on the adversarial "
            f"image: {verdict}. A perturbation follows one model's gradients, so it transfers "
            "poorly to a model with other features (the lesson's dog fooled VGG16, while "
            "ResNet50 saw a 'nematode' at 0.13).", icon=":material/compare:")


def batch_view(picked: PickedModel, attack_config: config.AttackConfig | None) -> None:
    """The current attack over test images drawn from every class: success rate, both
    distances and a few examples."""
    if picked.run is None:
        st.info("The batch view attacks a run's test images: pick a trained run.",
                icon=":material/info:")
        return
    if attack_config is None:
        st.caption("Set up an attack in the first tab (press Attack once); it is then "
                   "repeated here over many images.")
        return
    try:
        dataset = cache.run_dataset(picked.run)
    except ValueError as error:
        widgets.error(error)
        return
    count = image_count(dataset, "test", "Test images", "batch-count")
    if not count:
        return
    chosen = evaluate.sample_split(dataset, "test", count)
    st.caption(sample_words(dataset, "test", chosen))
    method = attack.make_attack(attack_config)
    expected = st.empty()  # redrawn after the attack, which times this model's steps

    def show_expected() -> None:
        expected.caption(expected_time(method.estimated_seconds(picked.model, len(chosen)),
                                       f"{len(chosen)} images x {steps_words(method)}", method))

    show_expected()
    label = config.ATTACK_METHODS[attack_config.method].label
    if not st.button(f"Attack {len(chosen)} images with {label}",
                     icon=":material/bolt:"):
        return
    pixels, labels = evaluate.sample_pixels(dataset, chosen, picked.size)
    result = run_attack(picked, attack_config, pixels, labels)
    show_expected()
    if result is None:
        return
    right = result.clean_logits.argmax(-1) == labels
    columns = st.columns(5)
    columns[0].metric("Clean accuracy", f"{right.mean():.3f}")
    columns[1].metric("Accuracy under attack",
                      f"{(result.adversarial_logits.argmax(-1) == labels).mean():.3f}")
    flipped = right & (result.adversarial_logits.argmax(-1) != labels)
    columns[2].metric("Success rate", f"{flipped.sum() / max(right.sum(), 1):.3f}",
                      help="The share of the images the model had right that the attack "
                           "made wrong (as on the robustness curve).")
    columns[3].metric("Mean L-inf (px)", f"{result.linf.mean():.1f}", help=DISTANCES)
    columns[4].metric("Mean L2 (px)", f"{result.l2.mean():.1f}", help=DISTANCES)
    shown = np.flatnonzero(flipped)[:8]
    if len(shown):
        st.image(images.image_grid(result.adversarial[shown], columns=8), width="stretch",
                 caption=widgets.plain("Flipped by the attack: " + ", ".join(
                     f"{picked.classes[labels[i]]}->"
                     f"{picked.classes[result.adversarial_logits[i].argmax()]}" for i in shown)))


def robustness_view(picked: PickedModel) -> None:
    """Accuracy against epsilon for FGSM and PGD over validation images from every class."""
    if picked.run is None:
        st.info("Robustness curves are computed on a run's validation images: pick a trained "
                "run.", icon=":material/info:")
        return
    try:
        dataset = cache.run_dataset(picked.run)
    except ValueError as error:
        widgets.error(error)
        return
    count = image_count(dataset, "validation", "Validation images", "curve-count")
    if not count:
        return
    steps = int(st.number_input("PGD steps", 1, min(50, config.limits().attack_steps or 50),
                                10, key="curve-steps"))
    chosen = evaluate.sample_split(dataset, "validation", count)
    st.caption(sample_words(dataset, "validation", chosen))
    expected = st.empty()  # redrawn after the curves, which time this model's steps

    def show_expected() -> None:
        expected.caption(expected_time(
            attack.curve_estimated_seconds(picked.model, CURVE_EPSILONS, CURVE_METHODS, steps,
                                           len(chosen)),
            f"{len(CURVE_EPSILONS) - 1} budgets x {len(chosen)} images x (1 FGSM step + "
            f"{steps} PGD steps)"))

    show_expected()
    if st.button("Compute the curves", icon=":material/show_chart:"):
        curves = _compute_curves(picked, dataset, chosen, steps)
        show_expected()
        if curves is not None:
            state.set_robustness(picked.key, curves)
    curves = state.robustness(picked.key)
    if curves is None:
        return
    st.plotly_chart(charts.robustness(curves), width="stretch")
    used = next(iter(curves.values()))[0].get("images")
    st.caption(f"Accuracy on the same {used or ''} validation images as the budget grows "
               "(k/255 of the pixel range). PGD's curve usually lies under FGSM's: more steps "
               f"find worse images. Reference: {references.STANDARD_IMAGENET.sentence()}")
    st.dataframe([{"attack": method.upper(), "epsilon (k/255)": f"{row['epsilon']:g}",
                   "accuracy": round(row["accuracy"], 3),
                   "success rate": round(row["success_rate"], 3),
                   "mean L-inf (px)": round(row["mean_linf"], 1),
                   "mean L2 (px)": round(row["mean_l2"], 1)}
                  for method, rows in curves.items() for row in rows if row["epsilon"]],
                 hide_index=True)
    st.caption(DISTANCES)


def _compute_curves(picked: PickedModel, dataset: data.Dataset, chosen: np.ndarray,
                    steps: int) -> dict[str, list[dict]] | None:
    """Both curves in one turn, with one progress bar over all their steps; None (and the
    reason shown) when stopped or refused."""
    try:
        pixels, labels = evaluate.sample_pixels(dataset, chosen, picked.size)
        with work.heavy(f"Robustness curves on {len(chosen)} images") as job, picked.lock:
            return attack.robustness_curves(
                picked.model, pixels.astype(np.float32), labels,
                CURVE_EPSILONS, methods=CURVE_METHODS, steps=steps, on_step=job.on_step,
                should_stop=job.should_stop)
    except attack.AttackStopped:
        st.warning(f"Stopped: {job.stopped_because}.", icon=":material/timer_off:")
    except config.LimitError as error:
        widgets.error(error, icon=":material/block:")
    except ValueError as error:
        widgets.error(error)
    return None


def image_count(dataset: data.Dataset, split: str, label: str, key: str) -> int:
    """How many of a split's images to attack (a slider, up to the attack limit); 0, with
    the reason shown, when the split is empty."""
    available = len(dataset.splits[split])
    if not available:
        st.info(f"This run's data set has no {split} images.", icon=":material/info:")
        return 0
    most = min(config.limits().attack_images or 256, 256, available)
    if most == 1:
        return 1
    return int(st.slider(label, 1, most, min(32, most), key=key))


def sample_words(dataset: data.Dataset, split: str, chosen: np.ndarray) -> str:
    """Say how many images of each class a stratified sample holds, in plain words."""
    per_class = np.bincount(dataset.labels[chosen], minlength=dataset.num_classes)
    available = np.bincount(dataset.labels[dataset.splits[split]],
                            minlength=dataset.num_classes)
    low, high = int(per_class.min()), int(per_class.max())
    spread = f"{low}" if low == high else f"{low} to {high}"
    covered = int((per_class > 0).sum())
    words = (f"{len(chosen)} of the {int(available.sum())} {split} images, from "
             f"{covered} of {dataset.num_classes} classes: {spread} per class, drawn at "
             "random within each class with a fixed seed (the same number gives the same "
             "images).")
    short = [f"{dataset.class_names[c]} has only {int(available[c])}"
             for c in range(dataset.num_classes) if per_class[c] == available[c] < high]
    return widgets.plain(words + (f" ({'; '.join(short)})" if short else ""))


def steps_words(method: attack.Attack) -> str:
    """How many steps each image gets, in words."""
    if method.max_steps == 1:
        return "1 step"
    return f"{method.step_limit_words()} steps"


def expected_time(seconds: float | None, amount: str, method: attack.Attack | None = None
                  ) -> str:
    """The expected time of some attack work, shown before it starts."""
    if seconds is None:
        return (f"Work: {amount}. No expected time yet: this model has not run this kind of "
                "attack here (the progress bar will show the time left).")
    if seconds < 1:
        length = "under 1 s"
    elif seconds < 90:
        length = f"about {seconds:.0f} s"
    else:
        length = f"about {seconds / 60:.0f} min"
    early = (" DeepFool stops as soon as the labels flip, usually after 2-5 steps."
             if isinstance(method, attack.DeepFool) else "")
    return (f"Work: {amount}. Expected: {length} (timed on this model's last attack here)."
            f"{early}")
