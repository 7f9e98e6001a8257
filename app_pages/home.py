"""Home: what the tool does, and where to start."""
from __future__ import annotations

import streamlit as st

from tlcore import references

st.title("Transfer learning on images")
st.markdown(
    "A network trained on millions of photos has learned edges, textures and parts that are "
    "useful for almost any picture. **Transfer learning** reuses that network (the *backbone*) "
    "and trains only a small new *head* for your classes, so a few hundred images are enough "
    "where training from scratch would need many thousands.")

steps = [
    ("Data", "app_pages/data.py", "Pick the built-in demo set, Oxford-IIIT Pets, Cats vs Dogs "
     "or your own folder or zip; see class counts, samples and skipped files."),
    ("Train", "app_pages/train.py", "Choose a backbone and weights, then train a head on frozen "
     "features (fast), fine-tune, or train end to end, with live curves."),
    ("Runs", "app_pages/runs.py", "Compare every training: accuracy, time, size."),
    ("Evaluate", "app_pages/evaluate.py", "Where a run is right and wrong: a clickable "
     "confusion matrix, per-class scores, calibration, and Grad-CAM for why."),
    ("Ideal image", "app_pages/ideal_image.py", "Start from noise and climb a class score until "
     "the network sees its class; sweep the TV weight; look at feature maps."),
    ("Attack", "app_pages/attack.py", "Change an image by a few invisible pixel levels until the "
     "classifier is wrong (FGSM, PGD, DeepFool), and measure how robust it is."),
    ("Robustness lab", "app_pages/robustness_lab.py", "Put a standard and a robustly trained "
     "run side by side: attacks, transfer, and ideal images that start to look like the "
     "class."),
]
PER_ROW = 4
for start in range(0, len(steps), PER_ROW):
    for column, (title, path, text) in zip(st.columns(PER_ROW), steps[start:start + PER_ROW]):
        with column.container(border=True):
            st.page_link(path, label=title, icon=":material/arrow_forward:")
            st.caption(text)

st.subheader("Reference results")
standard = references.STANDARD_IMAGENET
robust = references.ROBUST_IMAGENET
st.markdown(
    "| Setting | Result |\n|---|---|\n"
    "| VGG16 frozen + dense head, Cats vs Dogs, 1 epoch (the lesson) | 0.967 val. accuracy |\n"
    "| ResNet50 linear probe / fine-tuned / from scratch, Oxford-IIIT Pets (37 breeds) "
    "| 91.5 / 92.1 / 81.5 % |\n"
    "| fastai ResNet34 fine-tuned, Oxford-IIIT Pets | 94.6 % |\n"
    + "".join(f"| {reference.setting} under {reference.attack} ({reference.source}) "
              f"| {reference.clean:g} % -> {reference.attacked:g} % |\n"
              for reference in (standard, robust)))
st.caption("Sources: the AI-for-Beginners transfer-learning lesson, Kornblith et al. (as "
           f"quoted by SimCLR/BYOL), fastai, {standard.source}. No network here? The VGG16 "
           "*edge-detection* body works offline; ImageNet weights download once when online.")
