"""Attack: small changes to an image that make the classifier wrong."""
from __future__ import annotations

import numpy as np
import streamlit as st

from ui import attacking, model_choice, state

st.title("Attack")
st.markdown(
    "An adversarial example is an image changed just enough to flip the classifier's answer, "
    "often so little that people see no difference: the model relies on patterns people do "
    "not see. **FGSM** and **PGD** have a budget, **epsilon**: no pixel changes by more than "
    "epsilon levels (out of 255). FGSM takes one step in the direction that most raises the "
    "classifier's loss; PGD takes several small ones and is much stronger. The lesson's "
    "descent has no budget at all. **DeepFool** has none either: it looks for the smallest "
    "change in L2 (total size over all pixels), not per pixel, so a few pixels may change a "
    "lot. Attacks follow one model's gradients, so they often fail on another model.")

picked = model_choice.pick_model("attack")
if picked is None:
    st.stop()
one_tab, batch_tab, curve_tab = st.tabs(["One image", "Many images", "Robustness curve"])
with one_tab:
    chosen = attacking.pick_image(picked)
    attack_config = attacking.settings_form(picked) if chosen is not None else None
    if attack_config is not None:
        image, label = chosen
        result = attacking.run_attack(picked, attack_config, image[None],
                                      None if label is None else np.array([label]))
        if result is not None:
            state.set_attack_result(picked.key, attack_config, result)
    stored = state.attack_result(picked.key)
    if stored is not None:
        attacking.show_result(picked, *stored)
        attacking.second_opinion(picked, stored[1])
with batch_tab:
    attacking.batch_view(picked, stored[0] if stored is not None else None)
with curve_tab:
    attacking.robustness_view(picked)
