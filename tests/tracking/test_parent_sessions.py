"""The parent run's params and steps across the sessions of a resumed sweep (no Ray)."""

from __future__ import annotations

from sweeps.tracking.parent_sessions import EarlierSessions, session_params


def test_a_changed_setting_is_a_new_param_of_its_session_and_a_tag_of_its_value() -> None:
    earlier = EarlierSessions(params={"num_samples": "8", "seed": "0", "sampler": "tpe"}, sessions=1)
    params, tags = session_params({"num_samples": 12, "seed": 0, "sampler": "tpe", "new.option": 3}, earlier)
    # MLflow refuses to change `num_samples`; the same values are not logged again.
    assert params == {"session2.num_samples": 12, "new.option": 3}
    assert tags == {"sweep.sessions": 2, "sweep.setting.num_samples": "12"}


def test_the_third_session_compares_with_the_value_in_force_not_the_first() -> None:
    earlier = EarlierSessions(
        params={"num_samples": "8", "session2.num_samples": "12"}, sessions=2, settings={"num_samples": "12"}
    )
    assert session_params({"num_samples": 12}, earlier) == ({}, {"sweep.sessions": 3})
    # Back to the first session's value: a change again, recorded as such.
    assert session_params({"num_samples": 8}, earlier) == (
        {"session3.num_samples": 8},
        {"sweep.sessions": 3, "sweep.setting.num_samples": "8"},
    )


def test_an_unchanged_resume_logs_no_param() -> None:
    earlier = EarlierSessions(params={"num_samples": "8"}, sessions=4)
    assert session_params({"num_samples": 8}, earlier) == ({}, {"sweep.sessions": 5})
