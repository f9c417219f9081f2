"""The runner: one sweep from a validated spec to its summary, on any backend.

- :mod:`~sweeps.runner.runner`: :func:`run_sweep` and :class:`RunOptions`;
- :mod:`~sweeps.runner.recorders`: the run's listeners (journal, ledger, MLflow, live view,
  report alignment) and stop rules, and how the record ends;
- :mod:`~sweeps.runner.ledger`, :mod:`~sweeps.runner.progress`,
  :mod:`~sweeps.runner.report_alignment`: the listeners it owns;
- :mod:`~sweeps.runner.stopping` and :mod:`~sweeps.runner.abort`: stopping on purpose
  (signals, ``sweep stop``) and because the sweep cannot succeed;
- :mod:`~sweeps.runner.resume` and :mod:`~sweeps.runner.reconcile`: continuing a sweep
  from its study, journal and the backend's snapshot;
- :mod:`~sweeps.runner.summary`: what ``sweep run`` reports.

It talks to Ray only through :mod:`sweeps.ray_backend`, the default
:class:`~sweeps.backend.Backend`.
"""
