"""The backend contract (tests/backend/contract.py) on the simulator: one stopped and resumed
sweep, no Ray."""

from __future__ import annotations

import pytest

from sweeps.backend.simulated import SimulatedBackend
from tests.backend.contract import BackendContract, ContractRun, run_contract_sweep


class TestSimulatedBackend(BackendContract):
    @pytest.fixture(scope="class")
    @classmethod
    def contract_run(cls, tmp_path_factory: pytest.TempPathFactory) -> ContractRun:
        return run_contract_sweep(tmp_path_factory.mktemp("simulated"), SimulatedBackend)
