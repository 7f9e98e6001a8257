"""Data: choose the data set, and look at it before training on it."""
from __future__ import annotations

import streamlit as st

from tlcore import archives, config, data, petimages, pets, visitors
from ui import cache, charts, jobs, state, widgets, work

SOURCES = {"demo": "Built-in demo set (synthetic, offline)", **pets.SOURCES,
           "petimages": "Cats vs Dogs (Microsoft PetImages, the lesson's 787 MB archive)",
           "zip": "Upload a zip of class folders", "folder": "A folder on this server"}

st.title("Data")
st.markdown("A classifier learns from labelled examples: here, one folder of images per class. "
            "Look at the classes, their sizes and a few samples before training: most "
            "surprises in a model come from the data.")

DOWNLOAD_BYTES = {"pets": pets.DOWNLOAD_BYTES, "pets-species": pets.DOWNLOAD_BYTES,
                  "petimages": petimages.SIZE}


def prepare(source: str) -> None:
    """Stop the page with a download panel unless `source` is on this server and checked."""
    job = jobs.preparing(source)
    if job is not None and job.is_running():
        st.caption("Runs in the background: you may change page and come back.")
        widgets.job_progress(job)
        st.stop()
    if not data.needs_download(source):
        return
    if job is not None:
        snapshot = job.snapshot()
        widgets.error(snapshot.error or f"Download {snapshot.state}.", icon=":material/cloud_off:")
    if st.button(f"Download ({DOWNLOAD_BYTES[source] / 1e6:,.0f} MB, once)",
                 icon=":material/download:", type="primary"):
        jobs.prepare_data(state.visitor_id(), source)
        st.rerun()
    st.stop()


# A public demo offers no server folders, and only the downloaded sets its host prepared.
choices = [key for key in SOURCES if not config.public_demo()
           or (key != "folder" and not data.needs_download(key))]
current = state.data_source()
default = current if current in SOURCES else ("folder" if "folder" in choices else "zip")
kind = st.radio("Source", choices, index=choices.index(default), format_func=SOURCES.get,
                horizontal=True)

try:
    if kind in ("demo", "petimages", *pets.SOURCES):
        if kind in pets.SOURCES:
            st.caption("Downloaded once through TensorFlow Datasets (about 800 MB), then read "
                       "from disk. TFDS's own test split is kept, so results compare with "
                       "published ones.")
        elif kind == "petimages":
            st.caption("Downloaded once (resumable, checksum-checked), then read from disk; "
                       "its unreadable files are skipped and listed below.")
        state.set_data_source(kind)
        if kind in data.DOWNLOADED_SOURCES:
            prepare(kind)
    elif kind == "zip":
        owner = state.owner()
        earlier = data.extracted_zips(visitors.uploads_folder(owner)) if owner else {}
        if earlier:
            picked = st.selectbox("Your uploads", [None, *earlier], format_func=lambda source:
                                  "a new upload" if source is None else earlier[source])
            if picked is not None:
                state.set_data_source(picked)
        upload = st.file_uploader("Zip of class folders (e.g. cats/…, dogs/…)", type=["zip"],
                                  max_upload_size=config.limits().upload_mb)
        if upload is not None and state.uploaded_source(upload.file_id) is None:
            if owner is not None:  # a demo: into the visitor's own folder, within the quota
                visitors.check_disk(owner, archives.expanded_size(upload.getvalue()))
            with work.heavy("Checking the upload") as job:  # decoding takes turns too
                extracted = data.from_zip(
                    upload.getvalue(), name=upload.name, on_step=job.on_step,
                    into=None if owner is None else visitors.uploads_folder(owner))
            state.set_uploaded_source(upload.file_id, extracted.source)
        if upload is not None:
            state.set_data_source(state.uploaded_source(upload.file_id))
    else:
        folder = st.text_input("Folder of class folders",
                               value="" if current in SOURCES else current)
        if folder:
            state.set_data_source(cache.dataset(folder).source)
    dataset = cache.dataset(state.data_source())
except (ValueError, archives.ArchiveError) as error:
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
