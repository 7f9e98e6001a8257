"""The Train page's learning-rate finder: a range test of the settings in the form, its
chart with the suggested rate and the rule that picked it, and a button that puts the rate
into the form (`tlcore.lr_find`)."""
from __future__ import annotations

from typing import Any

import streamlit as st

from tlcore import backbones, config, data, estimate, lr_curve, lr_find, turns
from tlcore.fitting import TrainingCancelled
from ui import cache, charts, state, training, widgets, work

TITLE = "Find a learning rate"
STEP_CHOICES = (25, 50, 100, 200)
LESSON = (
    "Too low a learning rate and training crawls; too high and the loss blows up. This test "
    "trains a copy of the model set above, one batch per rate, starting from a rate so small "
    "that nothing changes (one ten-millionth) and multiplying it by the same factor at each "
    f"step up to {lr_find.END:g}, until the loss blows up. A good rate is where the loss still "
    "falls steeply, well before that point. Nothing is saved.")
FINE_TUNE_NOTE = ("Fine-tuning: the head is trained first, as the training does, so the "
                  "rates tried are those of the body's stage.")
FAST_NOTE = ("A feature extractor needs no search: its head learns in seconds at "
             f"{config.default_learning_rate('fast', 'edges'):g}. The learning-rate finder is "
             "for **Fine-tune** and **End-to-end** training.")
# Settings that do not change the test: it steps the rate itself and has no epochs.
_NOT_MEASURED = ("learning_rate", "epochs", "patience")


def panel(train_config: config.TrainConfig, dataset: data.Dataset, key: str) -> None:
    """The learning-rate finder for the settings of the training form (under it).

    Args:
        train_config: the form's settings as they are now.
        dataset: the data the training would use.
        key: a prefix for this panel's widget and session keys.
    """
    stored = state.learning_rate_found(key)
    with st.expander(TITLE, icon=":material/query_stats:", expanded=stored is not None):
        if train_config.mode == "fast":
            st.markdown(FAST_NOTE)
            return
        st.markdown(LESSON + (f" {FINE_TUNE_NOTE}" if train_config.mode == "fine-tune" else ""))
        steps = st.select_slider("Rates to try (one batch each)", STEP_CHOICES,
                                 value=lr_find.STEPS, key=f"{key}-steps")
        _expected_time(train_config, dataset, steps)
        if st.button(TITLE, icon=":material/query_stats:", key=f"{key}-run"):
            stored = _run(train_config, dataset, steps, key) or stored
        if stored is None:
            return
        measured, result = stored
        if measured != _measured(train_config, dataset):
            st.caption(":material/info: The last search was for other settings: search again "
                       "for these.")
            return
        _show(result, key)


def _measured(train_config: config.TrainConfig, dataset: data.Dataset) -> dict[str, Any]:
    """What a test's result depends on: the settings but the rate and the epochs, and the
    data."""
    settings = train_config.to_dict()
    for name in _NOT_MEASURED:
        settings.pop(name)
    return {**settings, "data": dataset.fingerprint()}


def _expected_time(train_config: config.TrainConfig, dataset: data.Dataset, steps: int) -> None:
    """Say how long the test takes at most, and whether a public demo's budget cuts it."""
    try:
        expected = lr_find.expected_seconds(train_config, dataset, steps,
                                            estimate.speed_from_runs(cache.all_runs()))
    except (ValueError, OSError):  # an unusable setting: the click says why
        return
    images = lr_find.sample_size(train_config, dataset)
    budget = config.limits().job_seconds
    over = (f" That is over this demo's {budget:.0f} s per job: it would stop there, so try "
            "fewer rates." if budget is not None and expected.seconds > budget else "")
    st.caption(f":material/schedule: At most **{expected.describe()}** on "
               f"{widgets.count(images, 'training image')}; it usually stops sooner, where the "
               f"loss blows up.{over}")


def _run(train_config: config.TrainConfig, dataset: data.Dataset, steps: int, key: str
         ) -> tuple[dict[str, Any], lr_curve.LRFindResult] | None:
    """Run the test in its turn and keep its result; say why when there is none."""
    # In the trainings' queue, not page work's: it trains, and waiting behind a training
    # must not hold the demo's one work slot from everyone's renders and attacks.
    with work.heavy("Finding a learning rate", queue=turns.TRAINING) as job:
        try:
            result = lr_find.range_test(train_config, dataset, steps=steps, on_step=job.on_step,
                                        should_stop=job.should_stop)
        except TrainingCancelled:
            st.warning(f"Stopped before any rate was tried: "
                       f"{job.stopped_because or 'cancelled'}.", icon=":material/timer_off:")
            return None
        except backbones.WeightsUnavailableError as error:
            if error.missing is None:
                widgets.error(error, icon=":material/cloud_off:")
            else:
                training.missing_weights(error.missing)
            return None
        except ValueError as error:  # a limit, or settings the test cannot take
            widgets.error(error)
            return None
    if result.ended == "stopped":
        st.warning(f"Stopped after {len(result.learning_rates)} of {result.steps} rates: "
                   f"{job.stopped_because or 'cancelled'}. The curve so far is shown.",
                   icon=":material/timer_off:")
    state.set_learning_rate_found(key, _measured(train_config, dataset), result)
    return state.learning_rate_found(key)


def _show(result: lr_curve.LRFindResult, key: str) -> None:
    """The chart, the rule's choice and sentence, and the button that uses its rate."""
    if not result.suggestions:
        st.warning("Too few rates were tried before the end to suggest one. Try more rates, "
                   "or a larger batch if the loss blew up at once.", icon=":material/warning:")
        return
    names = list(result.suggestions)
    rule = st.radio("Rule that reads the curve", names, index=names.index(result.rule),
                    format_func=lambda name: lr_curve.RULES[name].label + (
                        " (suggested)" if name == result.rule else ""),
                    horizontal=True, key=f"{key}-rule")
    found = result.suggestions[rule]
    st.plotly_chart(charts.learning_rate_finder(
        result.learning_rates, result.losses, result.smoothed,
        {name: (lr_curve.RULES[name].label, suggestion.learning_rate, suggestion.loss)
         for name, suggestion in result.suggestions.items()}, rule, result.diverged_at),
        width="stretch", key=f"{key}-chart")
    left, right = st.columns([1, 3], vertical_alignment="center")
    left.metric("Learning rate", f"{found.learning_rate:.2g}")
    right.markdown(f"**{lr_curve.RULES[rule].label}**: {found.explanation}")
    st.button("Use this rate", icon=":material/input:", key=f"{key}-use",
              on_click=training.use_learning_rate, args=(found.learning_rate,),
              help="Puts it in the Learning rate field above.")
    ending = {"diverged": f"the loss blew up at {result.diverged_at or 0:.2g}",
              "end of range": f"it reached the last rate, {result.end:g}, without the loss "
                              f"passing {lr_find.DIVERGE:g}x its lowest",
              "stopped": "it was stopped"}[result.ended]
    st.caption(f"{len(result.learning_rates)} of {result.steps} rates tried on "
               f"{widgets.count(result.images, 'training image')} in {result.seconds:.0f} s; "
               f"{ending}. Nothing was saved.")

