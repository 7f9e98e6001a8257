"""Every st.session_state key the app uses, behind typed getters and setters."""
from __future__ import annotations

from typing import Any

import streamlit as st

from tlcore import attack, config, visitors, visualize

# Public keys: tests seed and read session state by them (AppTest has no script run in
# which these functions could be called); pages use the functions.
DATA_SOURCE = "data_source"  # a source, or None: the chosen kind has no data set yet
_DATA_MISSING = "data_source_missing"  # why there is none, in words for the Train page
_DATA_KIND = "data_kind"  # the Data page's Source choice, kept while other pages run
# Keys of the Data page's widgets. Their values are given back from the two above when
# Streamlit has dropped them (it does on other pages), never through `index`/`value`: a
# default that moves between runs makes a new widget, and the click that moved it is lost.
DATA_KIND_WIDGET = "data_kind_radio"
UPLOAD_PICK_WIDGET = "data_upload_pick"
FOLDER_WIDGET = "data_folder"
RUN_ID = "selected_run_id"
JOB_ID = "training_job_id"
_TOKEN = "visitor_token"
# The address keeps a public-demo visitor's token, so a reload is the same visitor.
TOKEN_PARAMETER = "visitor"
_RENDER = "ideal_image_result"
_ATTACK = "attack_result"
SWEEP = "ideal_sweep"
_CURVES = "robustness_curves"
_COMPARISONS = "comparisons"  # (pair key, {what: result}) of the Robustness lab
_UPLOADS = "extracted_uploads"
_AUGMENT_DRAW = "train-augment-draw"  # the augmentation preview's seed
LR_FOUND = "learning_rate_found"  # panel key -> (settings measured, lr_find result)
_BUILT_PENDING = "builder_pending_choice"  # the data set just created, chosen next run
_BUILDER_ROUNDS = "builder_rounds"  # class -> how often its uploader and camera were emptied
_BUILDER_NOTICE = "builder_notice"  # what the last change did, said on the next run
CELL = "confusion_cell"
_FORM_HIDDEN = "hidden_form"  # + a form's key prefix: the last run did not draw that form
_RATE_WIDGET = "train_rate_widget"  # the key of the learning-rate field drawn last
_FOUND_RATES = "train_found_rates"  # rates the learning-rate finder put in the form


def init() -> None:
    """Give a new session its defaults and its visitor (called on every script run by
    app.py). A public demo's visitor comes back with the token in the address; a missing
    or malformed token gets a new one, never a guessable one."""
    if _TOKEN not in st.session_state:
        given = st.query_params.get(TOKEN_PARAMETER)
        st.session_state[_TOKEN] = given if visitors.is_token(given) else visitors.new_token()
    if DATA_SOURCE not in st.session_state:  # a new session: a demo's visitor's last choice
        st.session_state[DATA_SOURCE] = ((visitors.remembered_source(visitor_id())
                                          if config.public_demo() else None) or "demo")
    if config.public_demo() and st.query_params.get(TOKEN_PARAMETER) != st.session_state[_TOKEN]:
        st.query_params[TOKEN_PARAMETER] = st.session_state[_TOKEN]


def visitor_id() -> str:
    """This visitor's owner id (a hash of their token): names their jobs, runs and files."""
    return visitors.owner_id(st.session_state[_TOKEN])


def owner() -> str | None:
    """The visitor whose work alone a public demo shows (None: not a demo, show all)."""
    return visitor_id() if config.public_demo() else None


class NoDataSet(ValueError):
    """The Data page's chosen source has no data set yet (no zip uploaded, no folder
    typed); the message says what to do, in words for a newcomer."""


def data_source() -> str:
    """The data set the Data page shows, which the Train page uses: "demo", "pets",
    "pets-species", "petimages", a folder path or an extracted upload folder.

    Raises:
        NoDataSet: the Data page's source has none yet (say what to do, never fall back
            to the one chosen before: it is not what the Data page shows).
    """
    source = st.session_state.get(DATA_SOURCE, "demo")
    if source is None:
        raise NoDataSet(st.session_state.get(_DATA_MISSING) or "No data set is chosen yet: "
                        "choose one on the Data page.")
    return source


def chosen_data_source() -> str | None:
    """The data set the Data page shows, or None while its source has none yet."""
    return st.session_state.get(DATA_SOURCE, "demo")


def set_data_source(source: str) -> None:
    """Choose the data set the Train page uses (a demo's visitor's link keeps it)."""
    if config.public_demo() and st.session_state.get(DATA_SOURCE) != source:
        visitors.remember_source(visitor_id(), source)
    st.session_state[DATA_SOURCE] = source


def clear_data_source(missing: str) -> None:
    """Choose no data set: the Data page's source has none yet, or it failed to open.

    Args:
        missing: what the Train page says instead, e.g. "No zip is uploaded yet: ...".
    """
    st.session_state[DATA_SOURCE] = None
    st.session_state[_DATA_MISSING] = missing


def data_kind_key(kinds: list[str], guess: str) -> str:
    """Prepare the Data page's Source radio and return its key.

    Its value is the kind chosen last (given back after other pages, where Streamlit
    drops it), else `guess` on a session's first visit (the kind of its data source).
    """
    if st.session_state.get(DATA_KIND_WIDGET) not in kinds:
        remembered = st.session_state.get(_DATA_KIND)
        st.session_state[DATA_KIND_WIDGET] = remembered if remembered in kinds else guess
    return DATA_KIND_WIDGET


def set_data_kind(kind: str) -> bool:
    """Remember the Data page's Source choice; True when it replaces another one (a
    click: that kind of source then starts with nothing chosen)."""
    previous = st.session_state.get(_DATA_KIND)
    st.session_state[_DATA_KIND] = kind
    return previous is not None and previous != kind


def prepare_widget(key: str, value: object, *, reset: bool = False,
                   allowed: list | None = None) -> str:
    """Give the Data page's keyed widget `key` a value before it is drawn, and return the
    key: `value` when `reset`, when Streamlit has dropped the widget's own (other pages
    ran), or when that is no longer one of `allowed` (a list's options)."""
    if (reset or key not in st.session_state
            or (allowed is not None and st.session_state[key] not in allowed)):
        st.session_state[key] = value
    return key


def selected_run_id() -> str | None:
    """The run the Evaluate, Ideal image and Attack pages start on."""
    return st.session_state.get(RUN_ID)


def set_selected_run_id(run_id: str | None) -> None:
    """Remember a run across pages."""
    st.session_state[RUN_ID] = run_id


def job_id() -> str | None:
    """This visitor's current or last training job."""
    return st.session_state.get(JOB_ID)


def set_job_id(job: str | None) -> None:
    """Remember this visitor's training job."""
    st.session_state[JOB_ID] = job


def render_result(model_key: str) -> visualize.RenderResult | None:
    """The last ideal image rendered with this model in this session, or None."""
    stored = st.session_state.get(_RENDER)
    return stored[1] if stored and stored[0] == model_key else None


def set_render_result(model_key: str, result: visualize.RenderResult) -> None:
    """Keep an ideal-image result so reruns (slider moves) still show it."""
    st.session_state[_RENDER] = (model_key, result)


def sweep_results(model_key: str) -> list[visualize.RenderResult] | None:
    """The last TV sweep rendered with this model in this session, or None."""
    stored = st.session_state.get(SWEEP)
    return stored[1] if stored and stored[0] == model_key else None


def set_sweep_results(model_key: str, results: list[visualize.RenderResult]) -> None:
    """Keep a sweep so its slider scrubs without rendering again."""
    st.session_state[SWEEP] = (model_key, results)


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
    picked = st.session_state.get(CELL)
    return picked[2] if picked and picked[:2] == (run_id, split) else None


def set_confusion_cell(run_id: str, split: str, cell: tuple[int, int]) -> None:
    """Remember a clicked or chosen confusion-matrix cell."""
    st.session_state[CELL] = (run_id, split, cell)


def robustness(model_key: str) -> dict[str, list[dict]] | None:
    """The last robustness curves computed for this model in this session, or None."""
    stored = st.session_state.get(_CURVES)
    return stored[1] if stored and stored[0] == model_key else None


def set_robustness(model_key: str, curves: dict[str, list[dict]]) -> None:
    """Keep robustness curves so reruns still show them."""
    st.session_state[_CURVES] = (model_key, curves)


def keep_comparisons(pair_key: str) -> None:
    """Keep the Robustness lab's results only for this pair: a new pair drops the last
    one's (they hold images)."""
    stored = st.session_state.get(_COMPARISONS)
    if not stored or stored[0] != pair_key:
        st.session_state[_COMPARISONS] = (pair_key, {})


def comparison(pair_key: str, what: str) -> Any:
    """A Robustness lab result of this pair ("curves", "transfer", "ideal"), or None."""
    stored = st.session_state.get(_COMPARISONS)
    return stored[1].get(what) if stored and stored[0] == pair_key else None


def set_comparison(pair_key: str, what: str, result: Any) -> None:
    """Keep a Robustness lab result of this pair so reruns still show it."""
    keep_comparisons(pair_key)
    st.session_state[_COMPARISONS][1][what] = result


def is_new_upload(file_id: str) -> bool:
    """True for an uploaded zip (Streamlit's file id) not handled yet in this session."""
    return file_id not in st.session_state.get(_UPLOADS, {})


def set_uploaded_source(file_id: str, source: str | None) -> None:
    """Remember where an uploaded zip went (None: it was refused), so reruns neither check
    it again nor let it override a data set picked later."""
    st.session_state.setdefault(_UPLOADS, {})[file_id] = source


def take_pending_built() -> str | None:
    """The built data set to choose in this run (just created), once; None otherwise."""
    return st.session_state.pop(_BUILT_PENDING, None)


def set_pending_built(name: str) -> None:
    """Choose this built data set in the next run (it did not exist in this one)."""
    st.session_state[_BUILT_PENDING] = name


def builder_round(class_name: str) -> int:
    """How often the builder emptied this class's uploader and camera (their key suffix)."""
    return st.session_state.get(_BUILDER_ROUNDS, {}).get(class_name, 0)


def next_builder_round(class_name: str) -> None:
    """Give this class's uploader and camera new keys, so each file is added once."""
    rounds = st.session_state.setdefault(_BUILDER_ROUNDS, {})
    rounds[class_name] = rounds.get(class_name, 0) + 1


def set_builder_notice(notice: str, warning: bool = False) -> None:
    """What the builder's last change did, to say after the rerun it asks for."""
    st.session_state[_BUILDER_NOTICE] = (notice, warning)


def take_builder_notice() -> tuple[str, bool] | None:
    """The builder's notice (text, whether it warns), once; None when there is none."""
    return st.session_state.pop(_BUILDER_NOTICE, None)


def augmentation_draw() -> int:
    """The seed of the augmentation preview's random versions (0 until redrawn)."""
    return st.session_state.get(_AUGMENT_DRAW, 0)


def next_augmentation_draw() -> None:
    """Show other random versions in the augmentation preview."""
    st.session_state[_AUGMENT_DRAW] = augmentation_draw() + 1


def learning_rate_found(panel_key: str) -> tuple[dict[str, Any], Any] | None:
    """The last learning-rate test of this panel: (the settings it measured, its
    `lr_find` result), or None."""
    return st.session_state.get(LR_FOUND, {}).get(panel_key)


def set_learning_rate_found(panel_key: str, measured: dict[str, Any], result: Any) -> None:
    """Keep a panel's learning-rate test so reruns still show it."""
    st.session_state.setdefault(LR_FOUND, {})[panel_key] = (measured, result)


def found_learning_rates() -> list[float]:
    """The rates the learning-rate finder put into the training form, ascending."""
    return list(st.session_state.get(_FOUND_RATES, ()))


def learning_rate_field(key: str) -> bool:
    """Remember `key` as the training form's learning-rate field (the one drawn last);
    True when it already holds a value (then it takes no default)."""
    st.session_state[_RATE_WIDGET] = key
    return key in st.session_state


def put_learning_rate(rate: float) -> None:
    """Offer `rate` in the training form's learning-rate field and, once the field has been
    drawn, choose it there."""
    st.session_state[_FOUND_RATES] = sorted({*found_learning_rates(), rate})
    if _RATE_WIDGET in st.session_state:
        st.session_state[st.session_state[_RATE_WIDGET]] = rate


def widget_value(key: str, default: Any) -> Any:
    """The value a widget had in the last run (it is drawn further down), or `default`."""
    return st.session_state.get(key, default)


def keep_form(drawn: bool, prefix: str) -> None:
    """Keep a form's values (its widgets' keys start with `prefix`; no button's does)
    through page runs that do not draw it (a training in progress, another tab open), and
    give them back in the first run that draws it again: Streamlit forgets the values of
    widgets that were not drawn, and the browser redraws a widget that comes back with its
    default unless the run sets its value; the form came back reset, showing one training
    and starting another. (Setting them in every run made Streamlit log a warning at every
    run.)"""
    hidden = f"{_FORM_HIDDEN}:{prefix}"
    if drawn and not st.session_state.pop(hidden, False):
        return
    if not drawn:
        st.session_state[hidden] = True
    for key in [key for key in st.session_state if str(key).startswith(prefix)]:
        st.session_state[key] = st.session_state[key]


def pressed_buttons(prefix: str) -> list[str]:
    """The keys, without `prefix`, of the buttons starting with `prefix` whose click
    started this run."""
    return [str(key)[len(prefix):] for key in list(st.session_state)
            if str(key).startswith(prefix) and st.session_state[key] is True]
