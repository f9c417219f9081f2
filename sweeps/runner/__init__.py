"""The runner: one sweep from a validated spec to its summary, on any backend.

- :mod:`~sweeps.runner.runner`: :func:`run_sweep` and :class:`RunOptions`;
- :mod:`~sweeps.runner.recorders`: the run's listeners (journal, ledger, MLflow, live view,
  report alignment) and stop rules, and how the record ends;
- :mod:`~sweeps.runner.ledger`, :mod:`~sweeps.runner.progress`,
  :mod:`~sweeps.runner.report_alignment`: the listeners it owns;
- :mod:`~sweeps.runner.stopping` and :mod:`~sweeps.runner.abort`: stopping on purpose
  (signals, ``sweep stop``) and because the sweep cannot succeed;
- :mod:`~sweeps.runner.resume` and :mod:`~sweeps.runner.reconcile`: continuing a sweep
  from its study, journal and the backend's own record (:mod:`sweeps.backend.resume`);
- :mod:`~sweeps.runner.summary`: what ``sweep run`` reports.

It never imports Ray nor :mod:`sweeps.ray_backend`: it runs on the
:class:`~sweeps.backend.Backend` it is given (the CLI gives Ray's; fast tests give
:mod:`sweeps.backend.simulated`).
"""

# Nothing is re-exported: import from the modules above. Importing them all here would make
# every import of one of them (`sweep status` reads a few) load all of the runner.
__all__: list[str] = []
