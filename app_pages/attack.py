"""Attack: the smallest change that makes the classifier wrong."""
from __future__ import annotations

import numpy as np
import streamlit as st

from tlcore import attack, config, evaluate, images
from ui import cache, charts, state, widgets

METHODS = {"fgsm": "FGSM (one step)", "pgd": "PGD (iterated, projected)"}

st.title("Attack")
st.markdown(
    "An adversarial example changes every pixel by at most **epsilon** levels (out of 255), "
    "in the direction that most raises the classifier's loss. The change is almost "
    "invisible, yet the prediction flips: the model relies on patterns people do not see. "
    "FGSM takes one step; PGD takes several small ones and is much stronger.")

run = widgets.run_picker(cache.all_runs(), key="attack_run")
if run is None:
    st.stop()
shared = cache.shared_model(run)

source = st.radio("Image", ["test", "upload"], horizontal=True,
                  format_func={"test": "From the run's test split", "upload": "Upload"}.get)
label = None  # unknown for uploads: the attack then moves away from the model's own answer
if source == "upload":
    upload = st.file_uploader("An image", type=["png", "jpg", "jpeg", "bmp", "webp"])
    if upload is None:
        st.stop()
    try:
        image = images.load_image(upload.getvalue(), shared.image_size).astype(np.float32)
    except images.ImageError as error:
        st.error(str(error), icon=":material/broken_image:")
        st.stop()
else:
    try:
        dataset = evaluate.dataset_of(run)
    except ValueError as error:
        st.error(f"{error} Upload an image instead.", icon=":material/error:")
        st.stop()
    test = dataset.splits["test"]
    if len(test) == 0:
        st.info("This run's data set has no test images: upload one.", icon=":material/info:")
        st.stop()
    index = st.slider("Test image", 0, len(test) - 1, 0) if len(test) > 1 else 0
    image = images.load_image(dataset.paths[test[index]], shared.image_size).astype(np.float32)
    label = int(dataset.labels[test[index]])
    st.caption(f"True class: {shared.classes[label]}")

with st.form("attack"):
    columns = st.columns(3)
    method = columns[0].radio("Method", list(METHODS), index=1, format_func=METHODS.get)
    epsilon = columns[1].slider("Epsilon (k/255)", 1, 32, 4,
                                help="The largest change of any pixel, in levels of 0..255.")
    steps = columns[2].number_input("PGD steps", 1, 200, 10)
    targets = [None, *range(len(shared.classes))]
    target = st.selectbox("Target class", targets,
                          format_func=lambda t: "none: any wrong class" if t is None
                          else shared.classes[t])
    submitted = st.form_submit_button("Attack", type="primary", icon=":material/bolt:")

if submitted:
    attack_config = config.AttackConfig(method=method, epsilon=float(epsilon), steps=int(steps),
                                        target=target)
    with st.spinner("Attacking..."), shared.lock:
        result = attack.make_attack(attack_config)(
            shared.model, image[None], None if label is None else np.array([label]),
            target=target)
    state.set_attack_result((run.run_id, attack_config, result))

stored = state.attack_result()
if stored is not None and stored[0] == run.run_id:
    _, attack_config, result = stored
    clean = evaluate.softmax(result.clean_logits)[0]
    adversarial = evaluate.softmax(result.adversarial_logits)[0]
    factor = 127.5 / attack_config.epsilon
    columns = st.columns(3)
    with columns[0]:
        widgets.show_image(result.clean[0], f"Original: {shared.classes[clean.argmax()]} "
                                            f"{clean.max():.2f}")
    with columns[1]:
        widgets.show_image(127.5 + result.perturbation[0] * factor,
                           f"Perturbation x{factor:.0f} (grey = unchanged)")
    with columns[2]:
        widgets.show_image(result.adversarial[0], f"Adversarial: "
                                                  f"{shared.classes[adversarial.argmax()]} "
                                                  f"{adversarial.max():.2f}")
        st.download_button("Download adversarial PNG", images.png_bytes(result.adversarial[0]),
                           file_name="adversarial.png", mime="image/png",
                           icon=":material/download:")
    if result.target is None and clean.argmax() != result.labels[0]:
        st.warning("The model already gets this image wrong, so any result counts as a "
                   "success: pick an image it classifies correctly.", icon=":material/info:")
    metrics = st.columns(3)
    metrics[0].metric("Success", "yes" if result.success[0] else "no")
    metrics[1].metric("L-inf (px)", f"{result.linf[0]:.0f} / {attack_config.epsilon:.0f}")
    metrics[2].metric("L2 (px)", f"{result.l2[0]:.1f}")
    highlight = [int(clean.argmax())] + ([] if result.target is None else [result.target])
    bars = st.columns(2)
    bars[0].plotly_chart(charts.probability_bars(clean, shared.classes, "Before", highlight=highlight),
                         width="stretch")
    bars[1].plotly_chart(charts.probability_bars(adversarial, shared.classes, "After",
                                                 highlight=highlight), width="stretch")
    st.caption("The saved PNG is what was scored: pixels rounded to whole levels, still "
               "within epsilon. Reference: a standard ImageNet ResNet50 falls from 76.5% to "
               "0.0% accuracy at 4/255 (RobustBench, AutoAttack).")
