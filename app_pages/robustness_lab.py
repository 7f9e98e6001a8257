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
# Only the open tab runs: each one attacks or renders both models.
curves, transfer, ideal, explain = st.tabs(
    ["Robustness", "Transfer", "Ideal images", "Where they look"], key="compare-view",
    on_change="rerun")
if curves.open:
    with curves:
        compare.robustness_view(pair)
if transfer.open:
    with transfer:
        compare.transfer_view(pair)
if ideal.open:
    with ideal:
        compare.ideal_view(pair)
if explain.open:
    with explain:
        compare.explain_view(pair)
