"""The live view's table of trials: the running ones, then the last few that ended.

One row per trial: its id, its config (shortened as the MLflow run names are), the
iteration it reached of its total, the highest rung it reached, its last metric value
and its state. The rows fit the terminal: running trials first (in the order they
started), then the most recently ended, as many as the height allows.
"""

from __future__ import annotations

from rich.table import Table

from sweeps.numbers import compact
from sweeps.outcomes import TrialRecord, rung_reached
from sweeps.tracking.naming import short_config

_STATE_STYLE = {"completed": "green", "pruned": "yellow", "diverged": "magenta", "failed": "red"}


def trial_table(
    records: list[TrialRecord],
    ended_order: list[str],
    metric: str,
    milestones: list[float],
    budget_unit: str,
    max_rows: int,
) -> Table | None:
    """The table of ``records`` (``ended_order``: ended trial ids, oldest first), or None for no room."""
    if max_rows < 1 or not records:
        return None
    running = [r for r in records if r.outcome is None]
    by_id = {r.trial_id: r for r in records}
    ended = [by_id[t] for t in reversed(ended_order) if t in by_id and by_id[t].outcome is not None]
    shown = (running + ended)[:max_rows]
    table = Table(box=None, padding=(0, 1), header_style="bold", show_edge=False)
    for column, justify in (
        ("trial", "left"),
        ("config", "left"),
        ("iteration", "right"),
        ("rung", "right"),
        (metric, "right"),
        ("state", "left"),
    ):
        table.add_column(column, justify=justify, no_wrap=column != "config")  # type: ignore[arg-type]
    for record in shown:
        result = record.last_result
        total = int(result["total_iterations"]) if result and "total_iterations" in result else None
        value = result.get(metric) if result else None
        rung = rung_reached(result, milestones, budget_unit) if milestones else -1
        state = str(record.outcome or "running")
        table.add_row(
            record.trial_id,
            short_config(record.config),
            f"{record.iterations:,}/{total:,}" if total else f"{record.iterations:,}",
            str(rung) if rung >= 0 else "-",
            compact(value) if isinstance(value, (int, float)) else "-",
            f"[{_STATE_STYLE.get(state, 'cyan')}]{state}[/]",
        )
    hidden = len(running) + len(ended) - len(shown)
    if hidden > 0:
        table.caption = f"{hidden} more trial(s) not shown"
    return table
