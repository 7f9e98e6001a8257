"""tlcore dashboard: `streamlit run app.py`. Routes pages and draws the shared sidebar."""
from __future__ import annotations

import logging
import secrets

import streamlit as st
from streamlit import config as streamlit_config
from streamlit.runtime.scriptrunner import script_runner

from tlcore import config
from ui import cache, jobs, state, upload_memory, work

# After every script run, Streamlit calls keras.backend.clear_session(): a full garbage
# collection, TensorFlow's kernel caches dropped, and Keras's global state (layer names,
# seeds, settings) replaced for every thread, background trainings included. With a few
# visitors' progress bars refreshing each second, that made a 4 s training take 512 s
# (measured, 8 visitors). tlcore keeps no Keras state between runs that needs clearing.
script_runner._clean_problem_modules = lambda: None

st.set_page_config(page_title="tlcore: transfer learning on images", page_icon=":material/school:",
                   layout="wide")
if config.public_demo():
    # Strangers see no tracebacks (they name server paths), and Streamlit's own upload
    # limit (read at each request) is the demo's, so a bigger file is refused while it
    # streams in, before it is held in memory.
    st.set_option("client.showErrorDetails", "none")
    streamlit_config.set_option("server.maxUploadSize", config.limits().upload_mb,
                                "tlcore public demo")
upload_memory.install()  # uploads held in memory stay within the limits (a demo's)
state.init()

PAGES = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/data.py", title="Data", icon=":material/photo_library:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/runs.py", title="Runs", icon=":material/table_chart:"),
    st.Page("app_pages/evaluate.py", title="Evaluate", icon=":material/analytics:"),
    st.Page("app_pages/ideal_image.py", title="Ideal image", icon=":material/palette:"),
    st.Page("app_pages/attack.py", title="Attack", icon=":material/bug_report:"),
    st.Page("app_pages/robustness_lab.py", title="Robustness lab", icon=":material/shield:"),
]
page = st.navigation(PAGES)


@st.fragment(run_every=2.0)
def training_status(job: jobs.TrainingJob | jobs.BakeoffJob, what: str) -> None:
    """Keep the sidebar's progress bar current on every page while a training (or a
    bake-off) runs."""
    snapshot = job.snapshot()
    if snapshot.state == "running":
        st.progress(snapshot.fraction, text=f"{what}: {snapshot.phase}")
    else:
        st.caption(f"{what} {snapshot.state}.")


cache.housekeeping()
cache.warm_up()
work.say_if_stopped()
upload_memory.say_refused()
with st.sidebar:
    st.caption(f"Device: **{cache.device()}**")
    job = jobs.get_job(state.job_id()) or jobs.latest_training(state.visitor_id())
    bakeoff = jobs.latest_bakeoff(state.visitor_id())
    for running, what in ((job, "Training"), (bakeoff, "Bake-off")):
        if running is not None and running.is_running():
            training_status(running, what)
    if config.public_demo():
        limits = config.limits()
        st.caption(f"Public demo: what you upload and train is yours alone (kept with the "
                   f"link in your address bar) and deleted after "
                   f"{limits.visitor_run_hours:g} hours. Uploads up to {limits.upload_mb} MB; "
                   f"one training per visitor; renders and attacks take turns, up to "
                   f"{limits.job_seconds:.0f} s each.")

try:
    page.run()
except Exception:  # a bug: a public demo shows an incident number, never a traceback
    if not config.public_demo():
        raise
    incident = secrets.token_hex(4)
    logging.getLogger("tlcore").exception("page failed (incident %s)", incident)
    st.error(f"Something went wrong on this page (incident {incident}). Your work is safe: "
             "try again, or reload the page.", icon=":material/error:")
