"""Ideal image: what does the network think a class looks like?"""
from __future__ import annotations

import streamlit as st

from tlcore import config, images, visualize
from ui import cache, charts, state, widgets

st.title("Ideal image")
st.markdown(
    "Start from noise and change the *pixels* (not the weights) to raise one class's score. "
    "Alone, that finds high-frequency noise the network happens to like. A **total-variation** "
    "(TV) penalty charges for differences between neighbouring pixels, so the optimiser can "
    "only raise the score with smooth, larger structures: turn it up and watch the noise "
    "turn into shapes.")

run = widgets.run_picker(cache.all_runs(), key="ideal_run")
if run is None:
    st.stop()
shared = cache.shared_model(run)
with st.form("render"):
    target = widgets.class_picker(shared.classes, "Class", key="ideal_target")
    tv_weight = st.select_slider("Total-variation weight (log scale)", widgets.TV_WEIGHTS,
                                 value=0.3, format_func=lambda v: f"{v:g}")
    columns = st.columns(3)
    steps = columns[0].number_input("Steps", 10, 2000, 150, step=10)
    learning_rate = columns[1].number_input("Step size (pixels)", 0.1, 20.0, 2.0)
    seed = columns[2].number_input("Seed", 0, 10_000, 0)
    submitted = st.form_submit_button("Render", type="primary", icon=":material/brush:")

if submitted:
    render_config = config.RenderConfig(steps=int(steps), learning_rate=float(learning_rate),
                                        tv_weight=float(tv_weight), seed=int(seed))
    progress = st.progress(0.0, text="Climbing the class score...")

    def on_step(step: int, total: int, metrics: dict) -> None:
        progress.progress(step / total, text=f"step {step}/{total}: p = "
                                             f"{metrics['probability']:.3f}")

    with shared.lock:
        result = visualize.render(shared.model, target, render_config, on_step=on_step)
    progress.empty()
    state.set_render_result((run.run_id, result))

stored = state.render_result()
if stored is not None and stored[0] == run.run_id:
    result = stored[1]
    left, right = st.columns(2)
    with left:
        widgets.show_image(result.image, f"Ideal '{shared.classes[result.target]}'", width=288)
        st.download_button("Download PNG", images.png_bytes(result.image),
                           file_name=f"ideal_{shared.classes[result.target]}.png",
                           mime="image/png", icon=":material/download:")
    with right:
        columns = st.columns(2)
        columns[0].metric("Class probability", f"{result.probability:.3f}")
        columns[1].metric("Total variation (px)", f"{result.total_variation:.1f}")
        st.plotly_chart(charts.probability_bars(result.probabilities, shared.classes,
                                                "Top-5 predictions", highlight=[result.target]),
                        width="stretch")
    st.plotly_chart(charts.trace(result.logit_trace, "Class logit per step", "logit"),
                    width="stretch")
    st.caption(f"Rendered in {result.seconds:.1f} s. Lower total variation = smoother image; "
               f"compare weight 0 with {max(widgets.TV_WEIGHTS):g}.")
