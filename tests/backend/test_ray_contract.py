"""The backend contract (tests/backend/contract.py) on Ray: one real sweep stopped by its
limit and one resume, in the session's Ray, then every promise checked on them.

Ray pays for one sweep and one resume here (the class-scoped fixture); the intricate
cases of resume run on the simulator (tests/backend/test_simulated_resume.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.backend.contract import BackendContract, ContractRun, run_contract_sweep


@pytest.mark.slow
class TestRayBackend(BackendContract):
    @pytest.fixture(scope="class")
    @classmethod
    def contract_run(cls, ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> ContractRun:
        from sweeps.ray_backend import RayBackend

        return run_contract_sweep(tmp_path_factory.mktemp("ray"), RayBackend)
