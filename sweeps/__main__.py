"""``python -m sweeps`` is the ``sweep`` command."""

from sweeps.cli import entry_point

entry_point()
