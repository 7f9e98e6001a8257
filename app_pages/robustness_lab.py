"""Robustness lab: a standard and a robust run (or any two runs) side by side."""
from __future__ import annotations

import streamlit as st

from ui import compare

st.title("Robustness lab")
st.markdown(
    "A model trained on adversarial examples (*Robust training* on the Train page) learns "
    "from images changed within a budget to fool it, so small attacks stop working. It "
    "pays in clean accuracy and training time, and gains something unexpected: its "
    "gradients follow what people see, so the gradient ascent that draws noise for a "
    "standard model draws the class's shapes for a robust one. Pick two runs of the same "
    "data set and compare them on the same images.")

pair = compare.pick_pair()
if pair is None:
    st.stop()
compare.summary(pair)
VIEWS = {"Robustness": compare.robustness_view, "Transfer": compare.transfer_view,
         "Ideal images": compare.ideal_view, "Where they look": compare.explain_view}
# Only the open tab runs: each one attacks or renders both models.
for tab, view in zip(st.tabs(list(VIEWS), key="compare-view", on_change="rerun"),
                     VIEWS.values()):
    if tab.open:
        with tab:
            view(pair)
