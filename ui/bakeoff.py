"""The Train page's backbone bake-off: one click trains every body whose weights are here
(a head on frozen features, as the feature extractor does), then a table and a Pareto chart
of accuracy against speed and size, beside published results. It runs as a background job
in the training queue (`jobs.BakeoffJob`); every row is a saved run."""
from __future__ import annotations

from typing import Any

import streamlit as st

from tlcore import bakeoff, config, data, estimate
from ui import cache, charts, jobs, state, widgets

KEY = "bakeoff-form-"  # prefix of the form's widget keys (kept by `state.keep_form`)
START_KEY = "bakeoff-start"  # its button: a click is not a value to keep
LESSON = (
    "Which backbone suits **your** images? The bake-off trains each body whose weights are "
    "on this server the same quick way (a feature extractor: the body stays frozen, a small "
    "head learns), then puts them side by side: how accurate, how fast at turning an image "
    "into features, how large. A body is a **best trade-off** when no other is at least as "
    "accurate and at least as fast (or small). Every body becomes a saved run, on the "
    "**Runs** and **Evaluate** pages like any other.")
SIZE_LABEL = "Image size for every backbone (px)"
RANDOM_LABEL = "Add random-weight bodies as a baseline (random weights: what transfer adds)"
RANDOM_HELP = ("The same networks with untrained, random filters: the gap between a body and "
               "its random twin is what pretraining brings to these images.")
COLUMNS = {
    # row key: (label, number format or None, help)
    "label": ("Body", None, "The network and where its weights come from."),
    "val_accuracy": ("Validation", "%.3f", "Accuracy on the validation images."),
    "test_accuracy": ("Test", "%.3f", "Accuracy on the test images, never seen in training."),
    "ms_per_image": ("ms per image", "%.2f", "Time to turn one image into features on this "
                     "server (measured after training: see below the chart)."),
    "parameters": ("Parameters", "compact", "Weights of the whole model, body and head."),
    "model_mb": ("Size", "%.1f MB", "The saved model file."),
    "best": ("Best trade-off", None, "On the Pareto front: no other body is at least as "
             "accurate and at least as fast (speed) or small (size)."),
    "features": ("Image features", None, "Computed during the bake-off, or reused from an "
                 "earlier training (random weights are never kept)."),
    "run_id": ("Run", None, "The saved run (Runs, Evaluate)."),
}
FEATURES = {"hit": "reused", "miss": "computed", "off": "computed (not kept)"}


def section(dataset: data.Dataset, data_source: str) -> None:
    """The bake-off on the Train page: its form, its progress while it runs, its result.

    Args:
        dataset: the data set the Train page trains on.
        data_source: where it comes from (`state.data_source()`), for the background job.
    """
    st.subheader("Backbone bake-off", anchor="bake-off")
    st.markdown(LESSON)
    job = jobs.latest_bakeoff(state.visitor_id())
    running = job is not None and job.is_running()
    # The form stays drawn while a bake-off runs (Streamlit forgets the values of widgets
    # a run does not draw); only its button is off.
    chosen, base = _form(dataset)
    if st.button(f"Run the bake-off ({widgets.count(len(chosen), 'training')})", type="primary",
                 icon=":material/leaderboard:", disabled=running or not chosen,
                 key=START_KEY):
        try:
            jobs.start_bakeoff(state.visitor_id(), chosen, base, data_source, _speed())
            st.rerun()
        except (ValueError, jobs.JobLimitError) as error:
            widgets.error(error)
            return
    if running:
        _running(job)
        widgets.job_progress(job)
    elif job is not None:
        outcome(job)


def _speed() -> float:
    """This server against the estimates' reference, from its latest trainings."""
    return estimate.speed_from_runs(cache.all_runs())


@st.cache_data(ttl=60, show_spinner="Looking for the backbones' weights...")
def _candidates(image_size: int, include_random: bool, public_demo: bool
                ) -> list[bakeoff.Candidate]:
    """`bakeoff.candidates`, asked at most once a minute per server (it may look the
    download host up; `public_demo` is in the key because it changes the answer)."""
    return bakeoff.candidates(image_size, include_random)


def _form(dataset: data.Dataset) -> tuple[list[bakeoff.Candidate], config.TrainConfig]:
    """The bake-off's settings: which bodies, epochs and image size, and the expected time."""
    limits = config.limits()
    largest = min(512, limits.image_size or 512)
    columns = st.columns(2)
    epochs = columns[0].number_input("Epochs of each head", 1, limits.epochs or 100, 10,
                                     key=f"{KEY}epochs")
    size_default = min(dataset.native_size or 224, largest)
    image_size = columns[1].number_input(SIZE_LABEL, 32, largest, size_default, step=16,
                                         key=f"{KEY}size-{size_default}")
    include_random = st.checkbox(RANDOM_LABEL, True, help=RANDOM_HELP, key=f"{KEY}random")
    found = _candidates(int(image_size), include_random, config.public_demo())
    keys = [candidate.key for candidate in found]
    by_key = {candidate.key: candidate for candidate in found}
    picked = st.pills("Backbones", keys, selection_mode="multi", default=keys,
                      format_func=lambda key: by_key[key].label(),
                      key=f"{KEY}bodies-{'-'.join(keys)}",
                      help="Every body whose weights are on this server (ImageNet bodies that "
                           "are not here cannot be offered). Click one to leave it out.")
    if not any(candidate.pretrained for candidate in found):
        st.info("No pretrained body is on this server: only random weights can be compared.",
                icon=":material/info:")
    chosen = [by_key[key] for key in keys if key in (picked or [])]
    base = config.TrainConfig(mode="fast", epochs=int(epochs), image_size=int(image_size))
    if chosen:
        expected = bakeoff.expected(chosen, base, dataset, _speed())
        budget = limits.training_seconds
        cut = (f" This demo stops a bake-off after {budget / 60:g} minutes; the bodies trained "
               "by then are compared." if budget is not None and expected.seconds > budget
               else "")
        st.caption(f":material/schedule: Expected: **{expected.describe()}** for "
                   f"{widgets.count(len(chosen), 'backbone')} at {int(image_size)} px.{cut}")
    return chosen, base


def _running(job: jobs.BakeoffJob) -> None:
    """One line naming what the running bake-off compares."""
    st.markdown(f"**Bake-off now:** {widgets.count(len(job.chosen), 'backbone')}, "
                f"{widgets.count(job.base.epochs, 'epoch')} each at {job.base.image_size} px. "
                "It runs in the background: you may leave this page and come back.")


def outcome(job: jobs.BakeoffJob) -> None:
    """A finished bake-off: its table, its Pareto chart and the published results; or why
    it stopped."""
    snapshot = job.snapshot()
    if snapshot.state == "failed":
        widgets.error(f"The bake-off failed: {snapshot.error}")
        return
    result = job.result
    if result is None:
        st.warning(snapshot.error or "The bake-off was cancelled before it began.",
                   icon=":material/cancel:")
        return
    if result["stopped"]:  # as an error's text: a demo's visitor sees no server path
        widgets.error(f"The bake-off stopped early: {result['stopped']}.",
                      icon=":material/cancel:", warn=True)
    for failure in result["failed"]:
        widgets.error(f"{failure['label']} could not be trained: {failure['reason']}", warn=True)
    if not result["rows"]:
        return
    st.markdown(f"**Last bake-off** on {widgets.plain(result['data'])}: "
                f"{widgets.count(result['epochs'], 'epoch')} of each head at "
                f"{result['image_size']} px.")
    rows, column_config = table(result["rows"])
    st.dataframe(rows, column_config=column_config, column_order=list(COLUMNS),
                 hide_index=True, width="stretch")
    st.plotly_chart(charts.bakeoff(result["rows"]), width="stretch")
    st.caption(result["timing"])
    references(result["references"])
    st.caption(":material/table_chart: Each body is a saved run: **Runs** compares them with "
               "your other trainings, **Evaluate** shows where one is right and wrong.")


def table(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The bake-off's rows for `st.dataframe`, and its column configuration."""
    shown = [{**row, "label": row["label"] + (" (stopped)" if row["cancelled"] else ""),
              "best": ", ".join(name for name, key in (("speed", "front_speed"),
                                                       ("size", "front_size")) if row[key]),
              "features": FEATURES.get(row.get("embedding_cache"), "")} for row in rows]
    column_config = {
        key: (st.column_config.TextColumn(label, help=help_text) if number_format is None
              else st.column_config.NumberColumn(label, help=help_text, format=number_format))
        for key, (label, number_format, help_text) in COLUMNS.items()}
    return shown, column_config


def references(published: list[dict[str, Any]]) -> None:
    """Published results for these architectures, for scale, each with its link."""
    titles = {"imagenet": "What these networks score on ImageNet (whole classifiers, with "
                          "their 1000-class head)",
              "pets": "Transfer to a real data set: Oxford-IIIT Pets, 37 breeds",
              "this machine": "Plain Keras speed on a 2-core CPU (this project's reference "
                              "machine, 224 px)"}
    with st.expander("Published results, for scale", icon=":material/menu_book:"):
        st.caption("Other data, other sizes, other machines: compare the order of the "
                   "bodies, not the numbers.")
        for kind, title in titles.items():
            lines = [f"- {entry['sentence']}" + (f" [Source]({entry['url']})"
                                                 if entry.get("url") else "")
                     for entry in published if entry["kind"] == kind]
            if lines:
                st.markdown(f"**{title}**\n" + "\n".join(lines))
