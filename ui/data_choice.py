"""The Data page's choices: which sources exist, downloading a built-in set, and the
zip and folder fields that give a data set (or none yet)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from tlcore import archives, builder, config, data, visitors
from ui import cache, jobs, state, widgets, work

# The named sets of `data.SOURCES` (the data set is the choice itself), then three editors.
SOURCES = {**{name: source.label for name, source in data.SOURCES.items()},
           "zip": "Upload a zip of class folders", "built": "Build your own (upload or camera)",
           "folder": "A folder on this server"}
# What the Train page says while the chosen kind of source has no data set yet.
MISSING = {"zip": "No zip is uploaded yet: upload a zip of class folders on the Data page, or "
                  "pick one of your uploads there.",
           "built": "The data set you are building is not saved yet: save it on the Data page "
                    "(Build your own).",
           "folder": "No folder is chosen yet: type the path of a folder of class folders on "
                     "the Data page."}


def kind_of(source: str | None, choices: list[str]) -> str:
    """The kind of source (a choice of the Data page) that shows `source`: what a
    session's first visit to the page starts on."""
    if source in choices:
        return source
    if source is not None and builder.of_source(source, state.owner()) is not None:
        return "built"
    return ("zip" if "folder" not in choices or source in data.extracted_zips(uploads_folder())
            else "folder")


def built_in(source: str) -> None:
    """Choose a named set of `data.SOURCES`: say what it is, and stop the page with a
    download panel unless it is on this server and checked."""
    if data.SOURCES[source].note:
        st.caption(data.SOURCES[source].note)
    state.set_data_source(source)
    prepare(source)


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
    if st.button(f"Download ({data.SOURCES[source].download_bytes / 1e6:,.0f} MB, once)",
                 icon=":material/download:", type="primary"):
        jobs.prepare_data(state.visitor_id(), source)
        st.rerun()
    st.stop()


def uploads_folder() -> Path:
    """Where uploaded zips are extracted: a demo visitor's own folder, else the server's."""
    owner = state.owner()
    return data.uploads_folder() if owner is None else visitors.uploads_folder(owner)


def zip_source(fresh: bool) -> str | None:
    """Draw the uploader and the uploads to pick from; return the zip's data set, or None
    until one is uploaded or picked (`fresh`: the kind was just chosen, nothing is)."""
    folder = uploads_folder()
    upload = st.file_uploader("Zip of class folders (e.g. cats/…, dogs/…)", type=["zip"],
                              max_upload_size=config.limits().upload_mb)
    picked = None if fresh else state.chosen_data_source()
    if upload is not None and state.is_new_upload(upload.file_id):
        state.set_uploaded_source(upload.file_id, None)  # refused, unless it gets through
        picked = extract_upload(upload)
        state.set_uploaded_source(upload.file_id, picked)
        fresh = True  # the list below shows the new upload
    earlier = data.extracted_zips(folder)
    if not earlier:
        return None
    key = state.prepare_widget(state.UPLOAD_PICK_WIDGET, picked if picked in earlier else None,
                               reset=fresh, allowed=[None, *earlier])
    return st.selectbox("Your uploads", list(earlier), key=key, format_func=earlier.get,
                        placeholder="Pick one, or upload a zip above")


def extract_upload(upload: Any) -> str:
    """Check an uploaded zip of class folders in its turn (within a demo visitor's disk
    quota) and keep it among the visitor's uploads; return its data set's source.

    Raises:
        ValueError: refused (the message says why: unsafe, too large, one class...).
    """
    if state.owner() is not None:
        visitors.check_disk(state.owner(), archives.expanded_size(upload.getvalue()))
    with work.heavy("Checking the upload") as job:  # decoding takes turns too
        return data.from_zip(upload.getvalue(), name=upload.name, on_step=job.on_step,
                             into=uploads_folder()).source


def folder_source(fresh: bool) -> str | None:
    """Draw the folder field; return its data set, or None while it is empty."""
    current = state.chosen_data_source()
    typed = current if current is not None and current not in SOURCES else ""
    folder = st.text_input("Folder of class folders", key=state.prepare_widget(
        state.FOLDER_WIDGET, "" if fresh else typed, reset=fresh))
    return cache.dataset(folder).source if folder else None
