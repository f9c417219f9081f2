"""The parent run of a sweep resumed any number of times: settings and steps that tell the truth.

A sweep resumed with ``--set num_samples=12`` after a first session with 8 reopens the
same parent run. Two things went wrong there:

- MLflow refuses to change a param ("Changing param values is not allowed"), so
  ``params.num_samples`` stayed 8, and the refused param took the other records of its
  batch with it;
- the parent's counts (``trials_completed``...) are logged at one step per ended trial,
  and a new session started again at step 1, so MLflow's *latest* value (the one at the
  highest step) was the first session's.

Here each session is numbered (tag ``sweep.sessions``, 1 for the first). A resumed
session logs only the params that are new, and each changed one under a name of its own,
``session<N>.<param>`` (``session2.num_samples = 12``), with the setting's current value
as the tag ``sweep.setting.<param>``: the params keep the first session's values and
every change, the tags the values now in force. The counts continue from the last step
the parent run holds, and from the trials the earlier sessions ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Tag counting the sessions (the first run, then one per resume) of a sweep's parent run.
SESSIONS_TAG = "sweep.sessions"
#: Prefix of the tags holding a changed setting's current value.
SETTING_TAG_PREFIX = "sweep.setting."
#: The parent's count metrics, one of which holds the last step a session logged.
STEP_METRIC = "trials_completed"


@dataclass(frozen=True)
class EarlierSessions:
    """What the parent run holds from the sweep's earlier sessions."""

    params: dict[str, str] = field(default_factory=dict)
    sessions: int = 1
    #: Setting → its value now in force, for the settings a later session changed.
    settings: dict[str, str] = field(default_factory=dict)
    #: The highest step of the parent's counts: the next session's first is one more.
    last_step: int = 0


def read_earlier_sessions(client: Any, parent_run_id: str) -> EarlierSessions:
    """The params, session count and last step of ``parent_run_id`` (an ``MlflowClient`` call or two)."""
    run = client.get_run(parent_run_id)
    history = client.get_metric_history(parent_run_id, STEP_METRIC) if STEP_METRIC in run.data.metrics else []
    return EarlierSessions(
        params=dict(run.data.params),
        sessions=int(run.data.tags.get(SESSIONS_TAG, "1")),
        settings={
            name.removeprefix(SETTING_TAG_PREFIX): value
            for name, value in run.data.tags.items()
            if name.startswith(SETTING_TAG_PREFIX)
        },
        last_step=max((int(point.step) for point in history), default=0),
    )


def session_params(params: dict[str, Any], earlier: EarlierSessions) -> tuple[dict[str, Any], dict[str, Any]]:
    """The params and tags a resumed session logs on the parent run.

    Example:
        >>> session_params({"num_samples": 12, "seed": 0}, EarlierSessions({"num_samples": "8", "seed": "0"}))
        ({'session2.num_samples': 12}, {'sweep.sessions': 2, 'sweep.setting.num_samples': '12'})
    """
    session = earlier.sessions + 1
    new: dict[str, Any] = {}
    tags: dict[str, Any] = {SESSIONS_TAG: session}
    for name, value in params.items():
        recorded = earlier.settings.get(name, earlier.params.get(name))
        if name not in earlier.params:
            new[name] = value
        elif recorded != str(value):  # changed since the last session that set it
            new[f"session{session}.{name}"] = value
            tags[f"{SETTING_TAG_PREFIX}{name}"] = str(value)
    return new, tags
