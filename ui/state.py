"""Every st.session_state key the app uses, behind typed getters and setters."""
from __future__ import annotations

import secrets

import streamlit as st

from tlcore import attack, config, visualize

_DATA_SOURCE = "data_source"
_RUN_ID = "selected_run_id"
_JOB_ID = "training_job_id"
_VISITOR_ID = "visitor_id"
_RENDER = "ideal_image_result"
_ATTACK = "attack_result"
_SWEEP = "ideal_sweep"
_CELL = "confusion_cell"


def init() -> None:
    """Give a new session its defaults (called once per script run by app.py)."""
    st.session_state.setdefault(_DATA_SOURCE, "demo")
    st.session_state.setdefault(_VISITOR_ID, secrets.token_hex(8))


def visitor_id() -> str:
    """A random id for this browser session (names its jobs)."""
    return st.session_state[_VISITOR_ID]


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
