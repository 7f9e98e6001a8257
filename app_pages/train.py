"""Train: pick a backbone and weights, train in the background, watch the curves."""
from __future__ import annotations

import streamlit as st

from tlcore import backbones, checkpoints, config, runs
from ui import (bakeoff, cache, charts, jobs, lr_finder, robust_training, state, training,
                try_it, widgets)

st.title("Train")
st.markdown(
    "**Feature extractor** (fast): the pretrained body stays frozen; every image is turned "
    "into a feature vector once (cached on disk), and only a small head is trained on the "
    "vectors, which takes seconds. **Fine-tune**: that head first, then the body's top "
    "blocks train too, with augmented images and a ~100x lower learning rate, so the "
    "features adapt without being destroyed; BatchNorm layers stay in inference mode so "
    "their statistics are not wrecked by small batches (the *BatchNorm trap*). "
    "*Small CNN from scratch* has nothing to transfer: the baseline.")

DATA_PAGE = "app_pages/data.py"
TABS = ("Train a model", "Which backbone? Bake-off")
EMBEDDINGS = {"hit": "reused", "miss": "computed", "off": "not kept"}  # run.json's cache state
try:
    dataset = cache.dataset(state.data_source())
except state.NoDataSet as missing:  # a step not taken yet, not a failure
    st.info(widgets.plain(missing), icon=":material/info:")
    st.page_link(DATA_PAGE, label="Open the Data page", icon=":material/photo_library:")
    st.stop()
except ValueError as error:  # the message says what to do
    widgets.error(error)
    st.page_link(DATA_PAGE, label="Open the Data page", icon=":material/photo_library:")
    st.stop()
st.caption(f"Data: **{widgets.plain(dataset.name)}**, {dataset.num_classes} classes, "
           f"{dataset.split_sizes()['train']} training images.")
st.page_link(DATA_PAGE, label="Change the data", icon=":material/photo_library:")


def _data_name(source: str) -> str:
    """A data set's name for people (an upload's own name, never its server folder)."""
    try:
        return cache.dataset(source).name
    except ValueError:
        return "the chosen data set"


def show_outcome(snapshot: jobs.JobSnapshot) -> None:
    """Show a finished job: its run's numbers, or why it failed."""
    if snapshot.state == "failed":
        widgets.error(f"Training failed: {snapshot.error}")
        return
    if snapshot.run_dir is None:
        st.warning(snapshot.error or "Training was cancelled.", icon=":material/cancel:")
        return
    try:
        run = runs.load_run(snapshot.run_dir)
    except ValueError as error:
        widgets.error(f"The run is gone: {error}")
        return
    state.set_selected_run_id(run.run_id)
    st.subheader(f"Last training: {widgets.plain(run.name)}")
    metrics = run.info["metrics"]
    if snapshot.state == "cancelled":
        st.warning(snapshot.error or "Cancelled: the finished epochs were kept as a run.",
                   icon=":material/cancel:")
    if run.info.get("diverged"):
        st.warning(f"Stopped early: {run.info['diverged']}. The best finished epoch was "
                   "kept.", icon=":material/warning:")
    columns = st.columns(4)
    for column, key, label in ((columns[0], "val_accuracy", "Validation accuracy"),
                               (columns[1], "test_accuracy", "Test accuracy")):
        column.metric(label, f"{metrics[key]:.3f}" if key in metrics else "n/a")
    columns[2].metric("Seconds", f"{metrics['seconds']:.1f}")
    columns[3].metric("Image features", EMBEDDINGS.get(run.info.get("embedding_cache"), "n/a"),
                      help="A feature extractor turns every image into a vector once; the "
                           "vectors are kept on disk for later trainings of the same body, "
                           "images and size.")
    robust_training.outcome(run.info["config"])
    history = run.info["history"]
    epochs = [{key: values[i] for key, values in history.items()}
              for i in range(len(history.get("loss", [])))]
    st.plotly_chart(charts.training_curves(epochs, head_epochs=run.info.get("head_epochs")),
                    width="stretch")
    head = (f"; the first {widgets.count(run.info['head_epochs'], 'epoch')} trained the "
            "head only" if run.info.get("head_epochs") else "")
    st.success(f"Saved as run `{run.run_id}` (best epoch {run.info.get('best_epoch')}{head}). "
               "Open **Evaluate** to see where it is right and wrong.", icon=":material/check:")
    st.subheader("Try it")
    try_it.panel(run, key="train-try")


job = jobs.get_job(state.job_id()) or jobs.latest_training(state.visitor_id())
if job is not None and job.is_running():
    state.keep_form(drawn=False, prefix=training.FORM_KEY)
    training.running(job.train_config, _data_name(job.data_source))
    widgets.job_progress(job)
    st.stop()

interrupted = [checkpoint for checkpoint in checkpoints.list_interrupted()
               if checkpoint.run_id not in jobs.running_run_ids()]
if interrupted and not config.public_demo():
    with st.expander(f"Interrupted trainings ({len(interrupted)})", expanded=True,
                     icon=":material/restart_alt:"):
        st.caption("A training stopped by a server restart keeps a checkpoint of every "
                   "finished epoch; resume continues from the last one.")
        for checkpoint in interrupted[:5]:
            left, middle, right = st.columns([6, 1, 1])
            left.write(checkpoint.label() + robust_training.clause(checkpoint.state["config"]))
            if middle.button("Resume", key=f"resume-{checkpoint.run_id}"):
                try:
                    job = jobs.start_training(state.visitor_id(), checkpoint.train_config(),
                                              checkpoint.state["data"]["source"], checkpoint)
                    state.set_job_id(job.job_id)
                    st.rerun()
                except jobs.JobLimitError as error:
                    widgets.error(error)
            if right.button("Discard", key=f"discard-{checkpoint.run_id}"):
                checkpoints.remove(checkpoint.folder)
                st.rerun()

# Only the open tab runs: the bake-off's candidates are looked up only there.
train_tab, bakeoff_tab = st.tabs(TABS, key="train-view", on_change="rerun")
state.keep_form(drawn=train_tab.open, prefix=training.FORM_KEY)
state.keep_form(drawn=bakeoff_tab.open, prefix=bakeoff.KEY)
if bakeoff_tab.open:
    with bakeoff_tab:
        bakeoff.section(dataset, state.data_source())
    st.stop()

with train_tab:
    train_config, submitted = training.form(dataset)
    lr_finder.panel(train_config, dataset, key="train-lr")
    if submitted:
        try:
            with st.spinner("Checking the weights..."):
                backbones.resolve_weights(train_config.backbone, train_config.weights,
                                          train_config.image_size)
            job = jobs.start_training(state.visitor_id(), train_config, state.data_source())
            state.set_job_id(job.job_id)
            st.rerun()
        except backbones.WeightsUnavailableError as error:
            job = None  # the last training's result would read as this one's
            if error.missing is not None:
                training.missing_weights(error.missing)
            else:
                widgets.error(error, icon=":material/cloud_off:")
        except (ValueError, jobs.JobLimitError) as error:
            job = None
            widgets.error(error)
    if job is not None:
        show_outcome(job.snapshot())
