"""Opening a sweep's record: the parent run is created once and reopened on a resume."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from mlflow.tracking import MlflowClient

from sweeps.plan.planner import plan_spec
from sweeps.spec.loading import load_spec
from sweeps.store.state import sweep_paths
from sweeps.tracking.runs import RUNS_FILE, RunsFile
from sweeps.tracking.session import start_tracking


def test_parent_run_is_created_with_the_spec_and_reopened_by_a_resumed_sweep(
    write_spec: Callable[..., Path],
) -> None:
    loaded = load_spec(write_spec(), ["seed=3", "sampler.n_startup_trials=4", "sampler.multivariate=true"])
    _, plan = plan_spec(loaded)
    paths = sweep_paths(loaded.spec.storage, loaded.spec.name)
    first = start_tracking(loaded, plan, paths)
    parent = first.parent_run_id()
    first.close(interrupted=True)
    client = MlflowClient(paths.embedded_tracking_uri)
    run = client.get_run(parent)
    assert run.info.status == "KILLED" and run.data.tags["sweep.role"] == "parent"
    assert run.data.params["seed"] == "3" and run.data.params["sampler"] == "tpe"
    assert run.data.params["scheduler.grace_period"] == "10.0"
    assert (run.data.params["scheduler.grace_period_auto"], run.data.params["scheduler.brackets"]) == (
        "False",
        "1",
    )
    # The sampler's options as it was built: the spec's, and the constant liar it keeps by default.
    assert {k: v for k, v in run.data.params.items() if k.startswith("sampler.")} == {
        "sampler.n_startup_trials": "4",
        "sampler.multivariate": "True",
        "sampler.constant_liar": "True",
    }
    assert {a.path for a in client.list_artifacts(parent, "spec")} == {
        "spec/spec.yaml",
        "spec/effective_spec.yaml",
    }
    effective = Path(
        client.download_artifacts(parent, "spec/effective_spec.yaml", str(paths.storage))
    ).read_text()
    assert "seed: 3" in effective  # the --set override is in the spec as run

    second = start_tracking(loaded, plan, paths)
    assert second.parent_run_id() == parent
    assert client.get_run(parent).info.status == "RUNNING"
    second.close()
    assert len(client.search_runs([run.info.experiment_id])) == 1


def test_runs_file_ignores_ids_of_another_tracking_uri_and_corrupt_files(tmp_path: Path) -> None:
    runs = RunsFile.load(tmp_path, "sqlite:///a.db")
    runs.record("parent", "p1")
    runs.note_index("trial1", 1)
    runs.record("trial1", "r1")
    saved = json.loads((tmp_path / RUNS_FILE).read_text())
    assert (
        saved["parent"] == "p1" and saved["trials"] == {"trial1": "r1"} and saved["indices"] == {"trial1": 1}
    )
    again = RunsFile.load(tmp_path, "sqlite:///a.db")
    assert (again.parent, again.trials, again.indices) == ("p1", {"trial1": "r1"}, {"trial1": 1})
    assert RunsFile.load(tmp_path, "http://elsewhere:5000").parent is None
    (tmp_path / RUNS_FILE).write_text("{not json")
    assert RunsFile.load(tmp_path, "sqlite:///a.db").parent is None
