"""Every st.session_state key the app uses, behind typed getters and setters."""
from __future__ import annotations

import streamlit as st

from tlcore import attack, config, visitors, visualize

_DATA_SOURCE = "data_source"
_RUN_ID = "selected_run_id"
_JOB_ID = "training_job_id"
_TOKEN = "visitor_token"
# The address keeps a public-demo visitor's token, so a reload is the same visitor.
TOKEN_PARAMETER = "visitor"
_RENDER = "ideal_image_result"
_ATTACK = "attack_result"
_SWEEP = "ideal_sweep"
_CURVES = "robustness_curves"
_UPLOADS = "extracted_uploads"
_CELL = "confusion_cell"


def init() -> None:
    """Give a new session its defaults and its visitor (called on every script run by
    app.py). A public demo's visitor comes back with the token in the address; a missing
    or malformed token gets a new one, never a guessable one."""
    st.session_state.setdefault(_DATA_SOURCE, "demo")
    if _TOKEN not in st.session_state:
        given = st.query_params.get(TOKEN_PARAMETER)
        st.session_state[_TOKEN] = given if visitors.is_token(given) else visitors.new_token()
    if config.public_demo() and st.query_params.get(TOKEN_PARAMETER) != st.session_state[_TOKEN]:
        st.query_params[TOKEN_PARAMETER] = st.session_state[_TOKEN]


def visitor_id() -> str:
    """This visitor's owner id (a hash of their token): names their jobs, runs and files."""
    return visitors.owner_id(st.session_state[_TOKEN])


def owner() -> str | None:
    """The visitor whose work alone a public demo shows (None: not a demo, show all)."""
    return visitor_id() if config.public_demo() else None


def data_source() -> str:
    """The chosen data set: "demo", a folder path or an extracted upload folder."""
    return st.session_state.get(_DATA_SOURCE, "demo")


def set_data_source(source: str) -> None:
    """Choose the data set the Train page uses."""
    st.session_state[_DATA_SOURCE] = source


def selected_run_id() -> str | None:
    """The run the Evaluate, Ideal image and Attack pages start on."""
    return st.session_state.get(_RUN_ID)


def set_selected_run_id(run_id: str | None) -> None:
    """Remember a run across pages."""
    st.session_state[_RUN_ID] = run_id


def job_id() -> str | None:
    """This visitor's current or last training job."""
    return st.session_state.get(_JOB_ID)


def set_job_id(job: str | None) -> None:
    """Remember this visitor's training job."""
    st.session_state[_JOB_ID] = job


def render_result(model_key: str) -> visualize.RenderResult | None:
    """The last ideal image rendered with this model in this session, or None."""
    stored = st.session_state.get(_RENDER)
    return stored[1] if stored and stored[0] == model_key else None


def set_render_result(model_key: str, result: visualize.RenderResult) -> None:
    """Keep an ideal-image result so reruns (slider moves) still show it."""
    st.session_state[_RENDER] = (model_key, result)


def sweep_results(model_key: str) -> list[visualize.RenderResult] | None:
    """The last TV sweep rendered with this model in this session, or None."""
    stored = st.session_state.get(_SWEEP)
    return stored[1] if stored and stored[0] == model_key else None


def set_sweep_results(model_key: str, results: list[visualize.RenderResult]) -> None:
    """Keep a sweep so its slider scrubs without rendering again."""
    st.session_state[_SWEEP] = (model_key, results)


def attack_result(model_key: str) -> tuple[config.AttackConfig, attack.AttackResult] | None:
    """The last attack made with this model in this session as (settings, result), or None."""
    stored = st.session_state.get(_ATTACK)
    return stored[1:] if stored and stored[0] == model_key else None


def set_attack_result(model_key: str, attack_config: config.AttackConfig,
                      result: attack.AttackResult) -> None:
    """Keep an attack result so reruns still show it."""
    st.session_state[_ATTACK] = (model_key, attack_config, result)


def confusion_cell(run_id: str, split: str) -> tuple[int, int] | None:
    """The confusion-matrix cell (true class, predicted class) picked for this run and split."""
    picked = st.session_state.get(_CELL)
    return picked[2] if picked and picked[:2] == (run_id, split) else None


def set_confusion_cell(run_id: str, split: str, cell: tuple[int, int]) -> None:
    """Remember a clicked or chosen confusion-matrix cell."""
    st.session_state[_CELL] = (run_id, split, cell)


def robustness(model_key: str) -> dict[str, list[dict]] | None:
    """The last robustness curves computed for this model in this session, or None."""
    stored = st.session_state.get(_CURVES)
    return stored[1] if stored and stored[0] == model_key else None


def set_robustness(model_key: str, curves: dict[str, list[dict]]) -> None:
    """Keep robustness curves so reruns still show them."""
    st.session_state[_CURVES] = (model_key, curves)


def uploaded_source(file_id: str) -> str | None:
    """The data source an uploaded zip (Streamlit's file id) was extracted to, or None."""
    return st.session_state.get(_UPLOADS, {}).get(file_id)


def set_uploaded_source(file_id: str, source: str) -> None:
    """Remember where an uploaded zip went, so reruns do not check it again."""
    st.session_state.setdefault(_UPLOADS, {})[file_id] = source
