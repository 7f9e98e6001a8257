"""Runs: compare trainings; download one with the code that uses it; try, rename or delete it."""
from __future__ import annotations

import streamlit as st

from tlcore import runs
from ui import cache, charts, exporting, robust_training, state, try_it, widgets

st.title("Runs")
st.markdown("Every finished training is a run: the model and what made it. Compare them to "
            "answer *which backbone and mode should I use?* on your own data: accuracy, "
            "training time and model size usually pull in different directions.")

all_runs = cache.all_runs()
if not all_runs:
    st.info("No trained run yet: train one on the **Train** page.", icon=":material/info:")
    st.stop()
rows = [{**run.summary(), "robust": robust_training.label(run.info["config"])}
        for run in all_runs]
table, columns, order = charts.runs_table(rows)
st.dataframe(table, width="stretch", hide_index=True, column_config=columns,
             column_order=order)
st.plotly_chart(charts.run_comparison(rows), width="stretch")

st.subheader("One run")
run = widgets.run_picker(all_runs, key="runs_run")
st.caption(f"Id `{run.run_id}`; weights: {widgets.plain(run.info.get('weights_label', '?'))}.")
st.subheader("Use it elsewhere")
exporting.downloads(run)
st.subheader("Try it")
try_it.panel(run, key="runs-try")

if not run.deletable_by(state.owner()):
    st.caption("This run was made by the demo's host: you can use it, not rename or delete it.")
    st.stop()
st.subheader("Rename or delete")
with st.form("rename"):
    name = st.text_input("Name", value=run.name, max_chars=80)
    if st.form_submit_button("Rename", icon=":material/edit:"):
        try:
            runs.rename_run(run, name)
            st.rerun()
        except ValueError as error:
            widgets.error(error)
confirm = st.checkbox(f"Yes, delete {run.run_id} and its model")
if st.button("Delete", icon=":material/delete:", disabled=not confirm):
    runs.delete_run(run)
    state.set_selected_run_id(None)
    st.rerun()
