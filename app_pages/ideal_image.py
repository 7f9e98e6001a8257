"""Ideal image: what does the network think a class looks like?"""
from __future__ import annotations

import streamlit as st

from ui import ideal, model_choice, state

st.title("Ideal image")
st.markdown(
    "Start from noise and change the *pixels* (not the weights) to raise one class's score. "
    "Alone, that finds high-frequency noise the network happens to like. A **total-variation** "
    "(TV) penalty charges for differences between neighbouring pixels, so the optimiser can "
    "only raise the score with smooth, larger structures: turn it up and watch the noise "
    "turn into shapes. The *clean* recipe goes further, as feature-visualisation research "
    "does: it stores the image as a smooth spectrum and moves it randomly every step, so only "
    "features that survive small shifts and turns grow.")

picked = model_choice.pick_model("ideal")
if picked is None:
    st.stop()

render_tab, sweep_tab, maps_tab = st.tabs(["Render", "TV sweep", "Feature maps"])
with render_tab:
    submitted = ideal.settings_form(picked, "render-form")
    if submitted is not None:
        target, render_config, start_image = submitted
        state.set_render_result(picked.key, ideal.render_live(picked, target, render_config,
                                                              start_image))
    result = state.render_result(picked.key)
    if result is not None:
        ideal.show_result(picked, result)
    st.caption("Reference: the lesson's recipe on ImageNet VGG16 (224 px, 1000 plain steps) "
               "reaches p = 0.645 for 'Siamese cat' with cross-entropy alone and 0.920 after "
               "1000 more steps with TV; ResNet50's zebra with TV, 500 steps: 0.888. "
               "tf-keras-vis uses a TV weight of 1.0 on the mean (as here) for VGG16.")
with sweep_tab:
    ideal.sweep_view(picked)
with maps_tab:
    ideal.feature_maps_view(picked)
