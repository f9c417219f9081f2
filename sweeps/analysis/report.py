"""A static HTML report of a sweep: the plots as PNGs beside one self-contained ``index.html``.

No JavaScript and no CDN, so the report opens offline, from a file, in any browser, and can
be zipped up or served as is. ``sweep report NAME`` writes it; the logic lives here.

Example:
    >>> from sweeps.analysis import load
    >>> from sweeps.analysis.report import write_report
    >>> write_report(load("digits-mlp"), "report/")  # doctest: +SKIP
    PosixPath('report/index.html')
"""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from sweeps.analysis.front_plot import has_front, pareto_front_plot
from sweeps.analysis.loading import SweepData
from sweeps.analysis.plots import ALL_PLOTS
from sweeps.errors import SweepError
from sweeps.numbers import compact, is_finite_number

REPORT_FILE = "index.html"
BEST_TRIALS_SHOWN = 5

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } .subtitle { color: #666; margin-top: 0; }
.snapshot { background: #fff4d6; border: 1px solid #e0b84c; padding: 0.5rem 0.8rem; }
table { border-collapse: collapse; margin: 0.6rem 0 1.4rem; font-size: 0.92rem; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: right; }
th { background: #f3f3f3; } td.text, th.text { text-align: left; }
tr.best td { background: #fff7d6; font-weight: 600; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 1rem 2rem; }
.plots figure.wide { grid-column: 1 / -1; }
figure { margin: 0.6rem 0 1.2rem; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.92rem; max-width: 900px; }
.note { color: #8a5a00; } code, pre { background: #f6f6f6; padding: 0.1rem 0.3rem; }
pre { padding: 0.6rem; overflow-x: auto; }
"""

_CAPTIONS = {
    "learning_curves": "Each line is a trial, coloured by batch size; faded lines ending in × were stopped "
    "early by ASHA. Against iterations, small batches look slow because each step sees fewer "
    "samples; against samples seen, batch sizes compete on equal data.",
    "rung_survival": "How many trials reached each ASHA rung (stacked by batch size) next to how many "
    "`sweep plan` expected before the sweep ran.",
    "learning_rate": "Final metric against learning rate on a log axis, one marker per trial; hollow "
    "markers were stopped early and carry a low-fidelity value.",
    "parallel_coordinates": "One line per trial across the sampled hyperparameters, coloured by its "
    "final metric; the best trials are drawn on top.",
    "importance": "How much of the metric's variation each hyperparameter explains, from Optuna's "
    "importance evaluator on the sweep's persisted study.",
}


def write_report(
    data: SweepData,
    output: str | Path,
    on_step: Callable[[str], None] | None = None,
) -> Path:
    """Write ``index.html`` and one PNG per plot into ``output``; return the HTML's path.

    ``on_step(description)`` is called before each plot and before the HTML is written,
    ``len(ALL_PLOTS) + 1`` times in all (one more with several objectives: the front), so a
    caller can drive a progress bar.
    """
    output = Path(output)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(
            f"--output {output}: the report folder cannot be created ({exc.strerror}). "
            "Choose a writable folder."
        ) from None
    figures: list[tuple[str, str, str | None]] = []  # (file name, title, note if it failed)
    plots = list(ALL_PLOTS)
    if has_front(data):  # several objectives: the front first (sweeps/analysis/front_plot.py)
        plots.insert(0, ("pareto_front", "Pareto front", pareto_front_plot))
    for stem, title, draw in plots:
        if on_step:
            on_step(f"plotting {title.lower()}")
        try:
            figure = draw(data)
        except SweepError as exc:
            figures.append(("", title, str(exc)))
            continue
        figure.savefig(output / f"{stem}.png", dpi=110)
        figures.append((f"{stem}.png", title, None))
    if on_step:
        on_step("writing the HTML")
    path = output / REPORT_FILE
    path.write_text(render_html(data, figures), encoding="utf-8")
    return path


def render_html(data: SweepData, figures: list[tuple[str, str, str | None]]) -> str:
    spec = data.spec.spec if data.spec else None
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Sweep {_e(data.name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Sweep {_e(data.name)}</h1>",
        f'<p class="subtitle">{_e(data.metric)} ({_e(data.mode)}) · {len(data.trials)} trials'
        + (f" · trainable <code>{_e(spec.trainable)}</code>" if spec else "")
        + f" · MLflow <code>{_e(data.tracking_uri)}</code>, parent run <code>{_e(data.parent_run_id)}</code>"
        + f" · generated {_dt.datetime.now().isoformat(timespec='seconds')}</p>",
        _snapshot_note(data),
        "<h2>Trials</h2>",
        _table(_state_counts(data), table_id="states"),
        "<h2>Best trials</h2>",
        _table(best_trials(data), table_id="best-trials", highlight_first=True),
        _best_config(data),
        "<h2>Budget: plan against actual</h2>",
        _table(budget_table(data), table_id="budget"),
        _iterations_note(data),
        "<h2>Plots</h2>",
        '<div class="plots">',
    ]
    for file, title, note in figures:
        wide = ' class="wide"' if file == "learning_curves.png" else ""
        parts.append(f"<figure{wide}><h3>{_e(title)}</h3>")
        if note:
            parts.append(f'<p class="note">Not available: {_e(note)}</p>')
        else:
            caption = _CAPTIONS.get(file.removesuffix(".png"), "")
            parts.append(f'<img src="{_e(file)}" alt="{_e(title)}"><figcaption>{_e(caption)}</figcaption>')
        parts.append("</figure>")
    parts += [
        "</div>",
        "<h2>All trials</h2>",
        _table(all_trials(data), table_id="all-trials"),
        "<p>Every run, with its full metric history, is in MLflow: <code>sweep ui</code> opens it.</p>",
        *(f'<p class="note">{_e(note)}</p>' for note in data.notes),
        "</body></html>",
    ]
    return "\n".join(parts)


def _snapshot_note(data: SweepData) -> str:
    if not data.running:
        return ""
    return (
        f'<p class="snapshot"><strong>Snapshot of a sweep still running</strong>: the {len(data.trials)} '
        "trials started so far, as MLflow held them when this report was generated (the parent run is "
        "RUNNING). Run <code>sweep report</code> again for the trials since.</p>"
    )


def best_trials(data: SweepData, n: int = BEST_TRIALS_SHOWN) -> pd.DataFrame:
    """The top ``n`` trials, completed ones first (a pruned trial's value is low fidelity)."""
    trials = data.trials[data.trials["value"].map(is_finite_number)].copy()  # no NaN, no inf
    trials["_completed"] = trials["state"] == "completed"
    trials = trials.sort_values(["_completed", "value"], ascending=[False, data.mode == "min"]).head(n)
    return _trial_columns(data, trials)


def all_trials(data: SweepData) -> pd.DataFrame:
    return _trial_columns(data, data.trials)


def _trial_columns(data: SweepData, trials: pd.DataFrame) -> pd.DataFrame:
    shown = pd.DataFrame({"trial": trials["trial_id"], "state": trials["state"]})
    for name in data.hyperparameters:
        if name in trials:
            shown[name] = trials[name].map(_fmt)
    shown["iterations / total"] = [
        f"{int(i):,} / {int(t):,}"
        for i, t in zip(trials["iterations"], trials["total_iterations"], strict=False)
    ]
    shown["iterations per epoch"] = trials["iterations_per_epoch"]
    shown["rung reached"] = trials["rung"]
    shown[data.metric] = trials["value"].map(_fmt)
    return shown.reset_index(drop=True)


def budget_table(data: SweepData) -> pd.DataFrame:
    budget = data.budget()
    rows = [
        ("iterations used (all trials)", budget["iterations_used"]),
        ("worst case: these trials each run to their end", budget["iterations_worst_case"]),
        ("expected by `sweep plan` under ASHA", budget["planned_expected"]),
        ("worst case by `sweep plan` (every trial to its end)", budget["planned_worst_case"]),
    ]
    frame = pd.DataFrame(
        [(label, "n/a" if v is None else f"{v:,.0f}") for label, v in rows], columns=["", "iterations"]
    )
    if budget["saving_ratio"]:
        frame.loc[len(frame)] = ["ASHA saved (worst case / used)", f"{budget['saving_ratio']:.2f}×"]
    return frame


def _state_counts(data: SweepData) -> pd.DataFrame:
    counts = data.trials["state"].value_counts()
    states = ["completed", "pruned", "diverged", "failed", "running"]
    return pd.DataFrame([{s: int(counts.get(s, 0)) for s in states if s != "running" or counts.get(s)}])


def _best_config(data: SweepData) -> str:
    best = data.best()
    if best is None:
        return '<p class="note">No trial finished with a value.</p>'
    config = "\n".join(f"{k}: {_fmt(best[k])}" for k in data.hyperparameters if k in best)
    return (
        f"<p>Best config (trial <code>{_e(best['trial_id'])}</code>, {_e(data.metric)} = "
        f"{_fmt(best['value'])}, {best['state']}):</p><pre>{_e(config)}</pre>"
    )


def _iterations_note(data: SweepData) -> str:
    if data.plan is None:
        return ""
    rows = ", ".join(
        f"batch size {r.batch_size}: {r.iterations_per_epoch:,} iterations per epoch"
        for r in data.plan.batch_sizes
    )
    return (
        f"<p>An iteration is one optimizer step on one batch; an epoch is one pass over the "
        f"N = {data.plan.dataset_size:,} training samples. {_e(rows)}.</p>"
    )


def _table(frame: pd.DataFrame, table_id: str, highlight_first: bool = False) -> str:
    head = "".join(
        f'<th class="text">{_e(c)}</th>' if i == 0 else f"<th>{_e(c)}</th>"
        for i, c in enumerate(frame.columns)
    )
    body = []
    for n, row in enumerate(frame.itertuples(index=False)):
        cells = "".join(
            f'<td class="text">{_e(v)}</td>' if i == 0 else f"<td>{_e(v)}</td>" for i, v in enumerate(row)
        )
        body.append(f"<tr{' class=best' if highlight_first and n == 0 else ''}>{cells}</tr>")
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _fmt(value: Any) -> str:
    if isinstance(value, float) and not is_finite_number(value):
        return compact(value)  # nan, inf
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _e(value: Any) -> str:
    return html.escape(str(value))
