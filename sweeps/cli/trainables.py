"""``sweep trainables``: the built-in trainables and their declared dataset sizes."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from sweeps.cli.app import app
from sweeps.training.registry import BUILTIN_TRAINABLES, resolve_trainable


@app.command("trainables")
def list_trainables() -> None:
    """List the built-in trainables with their training-set size N (default trainable_args)."""
    table = Table(title="Built-in trainables")
    for column in ("name", "reference", "dataset size N", "drop_last", "description"):
        table.add_column(column)
    for name in BUILTIN_TRAINABLES:
        resolved = resolve_trainable(name)
        table.add_row(
            name,
            resolved.reference,
            f"{resolved.dataset_size({}):,}",
            str(resolved.drop_last),
            resolved.declaration.description,
        )
    Console().print(table)
