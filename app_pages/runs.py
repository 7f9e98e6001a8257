"""Runs: compare every training, and rename, download or delete one."""
from __future__ import annotations

import streamlit as st

from tlcore import config, export, runs
from ui import cache, charts, state, widgets

st.title("Runs")
st.markdown("Every finished training is a run: the model and what made it. Compare them to "
            "answer *which backbone and mode should I use?* on your own data: accuracy, "
            "training time and model size usually pull in different directions.")

all_runs = cache.all_runs()
if not all_runs:
    st.info("No trained run yet: train one on the **Train** page.", icon=":material/info:")
    st.stop()
rows = [run.summary() for run in all_runs]
st.dataframe(rows, width="stretch", hide_index=True,
             column_config={"val_accuracy": st.column_config.NumberColumn(format="%.3f"),
                            "test_accuracy": st.column_config.NumberColumn(format="%.3f")})
st.plotly_chart(charts.run_comparison(rows), width="stretch")

st.subheader("One run")
run = widgets.run_picker(all_runs, key="runs_run")
with open(run.model_path, "rb") as model_file:
    st.download_button("Download the model (.keras)", model_file, file_name=f"{run.run_id}.keras",
                       icon=":material/download:",
                       help="Load with keras.saving.load_model after `import tlcore.layers`; "
                            "it takes raw [0, 255] RGB pixels and returns logits.")
tflite = run.run_dir / export.TFLITE_FILE
if tflite.is_file():
    with open(tflite, "rb") as tflite_file:
        st.download_button("Download TensorFlow Lite (.tflite)", tflite_file,
                           file_name=f"{run.run_id}.tflite", icon=":material/smartphone:")
elif st.button("Export for phones (TensorFlow Lite)", icon=":material/smartphone:"):
    with st.spinner("Converting..."):
        export.export_tflite(run)
    st.rerun()
if config.public_demo():
    st.caption("Renaming and deleting are off in the public demo.")
    st.stop()
with st.form("rename"):
    name = st.text_input("Name", value=run.name)
    if st.form_submit_button("Rename", icon=":material/edit:"):
        try:
            runs.rename_run(run, name)
            st.rerun()
        except ValueError as error:
            st.error(str(error))
confirm = st.checkbox(f"Yes, delete {run.run_id} and its model")
if st.button("Delete", icon=":material/delete:", disabled=not confirm):
    runs.delete_run(run)
    state.set_selected_run_id(None)
    st.rerun()
