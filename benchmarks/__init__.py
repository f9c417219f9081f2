"""Benchmarks of sweeps against plain Optuna and Ray Tune used directly (``make bench``).

Run them all with ``python -m benchmarks``, or some with ``python -m benchmarks B1 B3 --reps 3``.
They print one side-by-side table measured in one run; they are never asserted in unit
tests (a smoke test only checks that the harness still runs a tiny configuration).
"""
