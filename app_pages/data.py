"""Data: choose the data set, and look at it before training on it."""
from __future__ import annotations

import streamlit as st

from tlcore import archives, config, data
from ui import builder, cache, charts, state, widgets
from ui.data_choice import MISSING, SOURCES, built_in, folder_source, kind_of, zip_source

st.title("Data")
st.markdown("A classifier learns from labelled examples: here, one folder of images per class. "
            "Look at the classes, their sizes and a few samples before training: most "
            "surprises in a model come from the data.")

# A public demo offers no server folders, and only the downloaded sets its host prepared.
choices = [key for key in SOURCES if not config.public_demo()
           or (key != "folder" and not data.needs_download(key))]
# Keyed, with no index: the radio is the same widget on every run, so each click takes.
kind = st.radio("Source", choices, format_func=SOURCES.get, horizontal=True,
                key=state.data_kind_key(choices, kind_of(state.chosen_data_source(), choices)))
fresh = state.set_data_kind(kind)

try:
    if kind in data.SOURCES:
        built_in(kind)
    else:
        source = {"zip": zip_source, "folder": folder_source, "built": builder.editor}[kind](fresh)
        if source is None:  # nothing below the field until a data set is chosen
            state.clear_data_source(MISSING[kind])
            st.stop()
        state.set_data_source(source)
    dataset = cache.dataset(state.data_source())
except (ValueError, archives.ArchiveError) as error:
    state.clear_data_source(str(error))  # the Train page must not use an older choice
    widgets.error(error)
    st.stop()

st.subheader(widgets.plain(dataset.name))
if dataset.synthetic:
    st.info("Synthetic shapes and textures drawn by code: good for learning the tool "
            "offline, not a measure of accuracy on photographs.", icon=":material/science:")
sizes = dataset.split_sizes()
columns = st.columns(4)
columns[0].metric("Classes", dataset.num_classes)
for column, (split, count) in zip(columns[1:], sizes.items()):
    column.metric(f"{split.title()} images", count)
st.plotly_chart(charts.class_counts(dataset.class_counts()), width="stretch")

st.subheader("Samples")
for class_name, grid in cache.sample_grids(dataset.source, 0,
                                           data.source_stamp(dataset.source)).items():
    st.caption(widgets.plain(class_name))
    st.image(grid)

st.subheader(f"Skipped files ({len(dataset.skipped)})")
if dataset.skipped:
    st.dataframe([{"file": data.relative_name(item.path, dataset),
                   "reason": widgets.redact(item.reason) if config.public_demo() else item.reason}
                  for item in dataset.skipped], width="stretch")
else:
    st.caption("Every file was a readable image.")
