"""The Ideal image page's views: pick a model, render, sweep TV weights, look at feature maps."""
from __future__ import annotations

import base64
import dataclasses
import time
from typing import Any, Sequence

import keras
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from tlcore import config, features, images, models, turns, visualize
from ui import charts, state, widgets, work
from ui.model_choice import PickedModel

PREVIEW_EVERY = 10
RECIPE_POSITION = 4  # the recipe's own weight among a sweep's (`_sweep_weights`)
PROGRESS_SECONDS = 0.5  # a sweep's bar moves at most this often
PREVIEW_SECONDS = 2.0  # and its images at most this often
SCRUB_SIDE = 256  # the scrubbed images are enlarged (nearest pixel) to about this side


def settings_form(picked: PickedModel, key: str, sweep: bool = False
                  ) -> tuple[int, config.RenderConfig, np.ndarray | None] | None:
    """The render settings; returns (target, settings, start image) when submitted."""
    # The recipe sits outside the form: choosing one resets the fields below to its values.
    name = st.radio("Recipe", list(visualize.PRESETS),
                    format_func=lambda chosen: visualize.PRESETS[chosen].label, key=f"{key}-preset")
    scale = models.input_scale(picked.model)
    base = visualize.preset(name, picked.size, input_scale=scale)
    if name == "lesson" and (note := visualize.lesson_note(scale)):
        st.caption(note)
    with st.form(key):
        target = widgets.class_picker(picked.classes, "Class (type to search)", f"{key}-target")
        tv_weight = base.tv_weight
        if not sweep:
            options = sorted({*widgets.TV_WEIGHTS, round(base.tv_weight, 2)})
            tv_weight = st.select_slider(
                "Total-variation weight (log scale)", options, value=round(base.tv_weight, 2),
                key=f"{key}-tv-{name}", format_func=lambda v: f"{v:g}" + (
                    " (the recipe's)" if v == round(base.tv_weight, 2) else ""))
        columns = st.columns(4)
        most = config.limits().render_steps or 2000
        steps = columns[0].number_input(
            "Steps", 5, most, min(base.steps, 150, most), step=5, key=f"{key}-steps-{name}",
            help=f"The recipe uses {base.steps}; 150 is a quicker first look."
                 + (f" This server allows up to {most}." if most < base.steps else ""))
        rate = columns[1].number_input(
            "Step size", 0.001, 20.0, base.learning_rate, format="%.3f",
            key=f"{key}-rate-{name}", help="Pixels per step for a pixel image; a Fourier "
                                           "image moves far more per unit, so use about 0.05.")
        transforms = columns[2].checkbox("Random transforms", base.transforms,
                                         key=f"{key}-transforms-{name}")
        fourier = columns[3].checkbox("Fourier image", base.parameterization == "fourier",
                                      key=f"{key}-fourier-{name}")
        st.caption(expected_time(picked.model, int(steps),
                                 len(_sweep_weights(base.tv_weight)) if sweep else 1))
        start = st.file_uploader("Start from an image instead of noise (optional)",
                                 type=["png", "jpg", "jpeg", "webp"], key=f"{key}-start")
        if not st.form_submit_button("Render the sweep" if sweep else "Render", type="primary",
                                     icon=":material/brush:"):
            return None
    render_config = dataclasses.replace(
        base, steps=int(steps), learning_rate=float(rate), tv_weight=float(tv_weight),
        transforms=transforms, parameterization="fourier" if fourier else "pixels")
    start_image = None
    if start is not None:
        start_image = widgets.decode_upload(start, picked.size)
        if start_image is None:
            return None
    return target, render_config, start_image


def render_live(picked: PickedModel, target: int, render_config: config.RenderConfig,
                start_image: np.ndarray | None) -> visualize.RenderResult:
    """Render in its turn, with a preview of the image and its class probability every
    few steps; a render stopped early (time budget, visitor gone) keeps what it has."""
    preview = st.empty()
    with work.heavy("Rendering") as job, picked.lock:
        def on_step(step: int, total: int, metrics: dict) -> None:
            job.on_step(step, total, {"phase": "climbing the class score",
                                      "detail": f"p = {metrics['probability']:.3f}"})
            with preview.container():
                widgets.show_image(metrics["image"], f"step {step}", width=192)

        result = visualize.render(picked.model, target, render_config, start_image=start_image,
                                  on_step=on_step, should_stop=job.should_stop,
                                  report_every=PREVIEW_EVERY)
    preview.empty()
    _say_if_stopped(job, len(result.objective_trace), render_config.steps)
    return result


def _say_if_stopped(job: work.Progress, done: int, steps: int) -> None:
    if job.stopped_because:
        st.warning(f"Stopped after {done} of {steps} steps: {job.stopped_because}. The "
                   "image so far is shown.", icon=":material/timer_off:")


def show_result(picked: PickedModel, result: visualize.RenderResult) -> None:
    """The image, its numbers, top-5 and the class logit's climb."""
    name = picked.classes[result.target]
    left, right = st.columns(2)
    with left:
        widgets.show_image(result.image, f"Ideal '{name}'", width=288)
        st.download_button("Download PNG", images.png_bytes(result.image),
                           file_name=f"ideal_{name}.png", mime="image/png",
                           icon=":material/download:")
    with right:
        columns = st.columns(3)
        columns[0].metric("Class probability", f"{result.probability:.3f}")
        columns[1].metric("Total variation (px)", f"{result.total_variation:.1f}")
        columns[2].metric("Steps per second", f"{result.steps_per_second:.1f}")
        st.plotly_chart(charts.probability_bars(result.probabilities, picked.classes,
                                                "Top-5 predictions", highlight=[result.target]),
                        width="stretch")
    st.plotly_chart(charts.trace(result.logit_trace, "Class logit per step", "logit"),
                    width="stretch")


def sweep_view(picked: PickedModel) -> None:
    """Render one image per TV weight in one batch; a slider then scrubs through them."""
    st.markdown("One batch renders the same start with every TV weight at once; then move "
                "the slider under the picture to compare them instantly.")
    submitted = settings_form(picked, "sweep-form", sweep=True)
    if submitted is not None:
        target, render_config, start_image = submitted
        weights = _sweep_weights(render_config.tv_weight)
        state.set_sweep_results(picked.key, sweep_live(picked, target, render_config, weights,
                                                       start_image))
    results = state.sweep_results(picked.key)
    if not results:
        return
    left, right = st.columns([2, 3])
    # Every image goes to the browser once, in one figure: its slider redraws there, with
    # no script run (a rerun per step took 1.2-1.8 s at 224 px).
    left.plotly_chart(scrub_figure(results, picked.classes), width="stretch",
                      config={"displayModeBar": False}, key=f"sweep-scrub-{picked.key}")
    right.plotly_chart(charts.sweep(results), width="stretch")
    st.caption(f"{len(results)} images in {results[0].seconds:.1f} s. The TV term charges for "
               "every jump between neighbouring pixels, so as its weight rises the optimiser "
               "can only raise the class score with smooth, larger shapes; too high and it "
               "cannot raise it at all.")


def sweep_live(picked: PickedModel, target: int, render_config: config.RenderConfig,
               weights: list[float], start_image: np.ndarray | None
               ) -> list[visualize.RenderResult]:
    """Render the sweep in its turn, with the phase, steps done, time left, Cancel and the
    images so far; a sweep stopped early (time budget, visitor gone) keeps what it has."""
    preview = st.empty()
    with work.heavy(f"Rendering {len(weights)} images together") as job, picked.lock:
        pacer = _Pacer(job, preview, "climbing the class score", f"TV weight {weights[0]:g}")
        results = visualize.render_sweep(
            picked.model, target, render_config, weights, start_image=start_image,
            on_step=pacer.on_step, should_stop=job.should_stop, report_every=1)
    preview.empty()
    _say_if_stopped(job, len(results[0].objective_trace), render_config.steps)
    return results


class _Pacer:
    """Turns a render's per-step reports into progress a few times a second.

    Before the first report the phase says the first step builds the computation (it can
    take many seconds on a large model); the images so far show every PREVIEW_SECONDS.
    """

    def __init__(self, job: work.Progress, preview: Any, phase: str, first_image: str
                 ) -> None:
        self.job, self.preview, self.phase, self.first_image = job, preview, phase, first_image
        self.last_shown = self.last_preview = 0.0
        job.on_step(0, 0, {"phase": "preparing (the first step builds the computation)"})

    def on_step(self, step: int, total: int, metrics: dict) -> None:
        """A tlcore StepCallback: the bar at most every PROGRESS_SECONDS, and at the end."""
        now = time.monotonic()
        if self.last_shown and now - self.last_shown < PROGRESS_SECONDS and step < total:
            return
        detail = ("" if metrics.get("probability") is None
                  else f"p = {metrics['probability']:.3f} at {self.first_image}")
        # The first report starts the phase's clock (shown as zero steps done), so the time
        # left leaves out the first step, which built the computation; it reads a little
        # low for the first few reports (the work page's estimate divides by all steps).
        self.job.on_step(step if self.last_shown else 0, total,
                         {"phase": self.phase, "detail": detail})
        if now - self.last_preview >= PREVIEW_SECONDS or step >= total:
            self.preview.image(images.image_grid(_enlarge(metrics["images"], 96), columns=8),
                               caption=f"The images after {step} of {total} steps",
                               width="content")
            self.last_preview = now
        self.last_shown = now


def scrub_figure(results: Sequence[visualize.RenderResult], classes: Sequence[str]
                 ) -> go.Figure:
    """The sweep's images in one figure with a slider (one step per TV weight) that shows
    each image and its numbers in the browser, without a script run."""
    figure = go.Figure()
    chosen = _recipe_index(results)
    for index, result in enumerate(results):
        figure.add_trace(go.Image(source=_data_uri(result.image), visible=index == chosen,
                                  hoverinfo="skip", name=f"TV weight {result.tv_weight:g}"))
    steps = [{"method": "update", "label": f"{result.tv_weight:g}",
              "args": [{"visible": [index == shown for index in range(len(results))]},
                       {"title.text": _scrub_title(result, classes)}]}
             for shown, result in enumerate(results)]
    figure.update_layout(
        title={"text": _scrub_title(results[chosen], classes), "font": {"size": 14}},
        sliders=[{"active": chosen, "steps": steps, "pad": {"t": 10, "b": 0},
                  "currentvalue": {"prefix": "TV weight ", "font": {"size": 13}}}],
        height=480, margin={"l": 10, "r": 10, "t": 70, "b": 10})
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, scaleanchor="x")
    return figure


def _recipe_index(results: Sequence[visualize.RenderResult]) -> int:
    """Where the slider starts: the recipe's own weight (the middle of the sweep)."""
    return min(len(results) - 1, RECIPE_POSITION)


def _scrub_title(result: visualize.RenderResult, classes: Sequence[str]) -> str:
    name = charts.escaped(classes[result.target]) if result.target is not None else ""
    probability = "" if result.probability is None else f"p({name}) = {result.probability:.3f}, "
    return (f"<b>TV weight {result.tv_weight:g}</b><br>{probability}"
            f"total variation {result.total_variation:.1f} px")


def _data_uri(image: np.ndarray) -> str:
    """A PNG data URI of the image, small ones enlarged without smoothing."""
    pixels = _enlarge(images.to_uint8(image)[None], SCRUB_SIDE)[0]
    return "data:image/png;base64," + base64.b64encode(images.png_bytes(pixels)).decode()


def expected_time(model: keras.Model, steps: int, count: int) -> str:
    """How long a render (count 1) or sweep of `steps` steps should take, in words: from
    this model's measured pace, or the amount of work before it has one."""
    images_text = f" of {count} images" if count > 1 else ""
    seconds = visualize.expected_seconds(model, steps, count)
    if seconds is None:
        return (f"{steps:,} steps{images_text}, each a forward and backward pass of the "
                "model: seconds for a small model, minutes for a large one at 224 px. The "
                "first render measures this model's pace; the bar then shows the time left.")
    first = visualize.expected_seconds(model, 1, count)
    per_step = visualize.expected_seconds(model, 2, count) - first
    return (f"Expected time for {steps:,} steps{images_text}: about {_duration(seconds)}: "
            f"{per_step:.2g} s a step after a first step of {first:.2g} s (it builds the "
            "computation), the pace this model's latest render had on this server. Waiting "
            "for a turn comes on top.")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} minutes"


def _sweep_weights(recipe_weight: float) -> list[float]:
    """Seven weights on a log scale around the recipe's (or 0.001-1 for a TV-free recipe)."""
    centre = recipe_weight if recipe_weight > 0 else 0.03
    return [0.0, *(round(centre * factor, 6) for factor in (0.03, 0.1, 0.3, 1, 3, 10))]


def feature_maps_view(picked: PickedModel) -> None:
    """A spatial layer's channels for one image, the strongest first."""
    st.markdown("Each channel of a convolutional layer is one learned detector, applied at "
                "every position: bright where it fires. Early layers find edges and colours; "
                "deeper ones respond to textures and parts, at coarser resolution.")
    spatial = features.spatial_layers(picked.model)
    if not spatial:
        st.info("This model has no spatial layers to show.", icon=":material/info:")
        return
    names = [name for name, _ in spatial]
    layer = st.selectbox("Layer", names, index=len(names) // 2,
                         format_func=lambda n: f"{n} {dict(spatial)[n]}")
    image = _feature_image(picked)
    if image is None:
        return
    count = st.slider("Channels shown", 4, 64, 16, step=4)
    with turns.WORK.turn(), picked.lock:  # quick, but it takes its turn like the rest
        _, activations = features.activation_model(picked.model, [layer])(image[None],
                                                                        training=False)
    activations = keras.ops.convert_to_numpy(activations)[0]
    strongest = features.strongest_channels(activations, count)
    left, right = st.columns([1, 3])
    with left:
        widgets.show_image(image, "the image", width=192)
    maps = np.stack([images.colorize(images.normalize_for_display(activations[..., c]) / 255.0)
                     for c in strongest])
    right.image(images.image_grid(_enlarge(maps, 96), columns=8), width="stretch",
                caption=f"{layer}: channels {', '.join(map(str, strongest[:8]))}... "
                        "(strongest mean activation first; each scaled to its own range)")


def _feature_image(picked: PickedModel) -> np.ndarray | None:
    """The image to look through: one of the run's test images, the last ideal image, or an
    upload."""
    sources = {"upload": "Upload"}
    if picked.run is not None:
        sources = {"test": "A test image of the run", **sources}
    if state.render_result(picked.key) is not None:
        sources = {"ideal": "The last ideal image", **sources}
    source = st.radio("Image", list(sources), format_func=sources.get, horizontal=True,
                      key="feature-source")
    if source == "ideal":
        return state.render_result(picked.key).image
    if source == "test":
        chosen = widgets.run_test_image(picked.run, picked.size, "feature-test-image")
        return None if chosen is None else chosen[0]
    return widgets.uploaded_image(picked.size, key="feature-image")


def _enlarge(maps: np.ndarray, side: int) -> np.ndarray:
    """Repeat pixels so that small maps show as blocks, not blur."""
    repeat = max(1, side // maps.shape[1])
    return np.repeat(np.repeat(maps, repeat, axis=1), repeat, axis=2)

