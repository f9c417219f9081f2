"""The sweep store: everything a sweep keeps in its folder ``<storage>/<name>/``.

- :mod:`~sweeps.store.state`: the file names (:class:`SweepPaths`) and ``sweep.json``'s
  record, read and written whole;
- :mod:`~sweeps.store.lifecycle`: ``sweep.json``'s state as a state machine (its states,
  its legal transitions, the one writer of a change) and whether the driver is alive;
- :mod:`~sweeps.store.journal`: the result journal, every result the driver received;
- :mod:`~sweeps.store.study` and :mod:`~sweeps.store.study_records`: the Optuna study's SQLite
  storage, and what it records of each trial;
- :mod:`~sweeps.store.checkpoints`: the trials' checkpoints (the latest, what is kept, their
  space), read through the backend's ``TrialFiles``: how a backend names its files, only it knows;
- :mod:`~sweeps.store.stop_request`: a request to stop the sweep (``sweep stop``);
- :mod:`~sweeps.store.catalog`: the read model of ``sweep list``, ``status`` and ``best``.

It imports neither Ray nor the runner: the CLI's read-only commands use it directly.
"""

# Nothing is re-exported: import from the modules above. Importing them all here would make
# every import of one of them (`sweep status` reads a few) load all of the store.
__all__: list[str] = []
