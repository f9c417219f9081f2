"""Every private Ray and Optuna internal that sweeps relies on, named, each with its check.

Each use site carries a ``# compat: <name>`` comment naming its entry here, and
``tests/ray_backend/test_compat.py`` runs every check against the installed versions, so
that a new Ray or Optuna release that breaks one fails CI with the assumption's name,
instead of breaking ``sweep resume`` silently. The version pins in ``pyproject.toml`` are
the releases these checks passed on (README, "Trying a new Ray version").
"""

from __future__ import annotations

import inspect
import subprocess
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Assumption:
    name: str
    #: Our modules that rely on it (each carries the ``# compat: <name>`` comment).
    where: tuple[str, ...]
    #: What we rely on, in one sentence.
    what: str
    #: Raises AssertionError (or ImportError, AttributeError) when the installed release breaks it.
    check: Callable[[], None]


def _tuner_internals() -> None:
    from ray import tune

    internal = tune.Tuner(lambda config: None)._local_tuner
    assert internal is not None, "Tuner._local_tuner is None"
    for name in ("_tune_config", "_run_config"):
        assert hasattr(internal, name), f"TunerInternal has no {name}"


def _cluster_config() -> None:
    from ray._private.state import state

    assert callable(state.get_cluster_config), "ray._private.state.state.get_cluster_config is gone"


def _train_storage() -> None:
    from ray.train._internal import storage

    parameters = inspect.signature(storage.StorageContext).parameters
    for name in ("storage_path", "experiment_dir_name", "trial_dir_name"):
        assert name in parameters, f"StorageContext takes no {name}"
    assert callable(storage._get_ray_train_session_dir), "_get_ray_train_session_dir is gone"  # type: ignore[attr-defined]


def _experiment_state_format() -> None:
    from ray.tune.execution import tune_controller

    source = inspect.getsource(tune_controller)
    for key in ('"trial_data"', '"runner_data"', "experiment_state-"):
        assert key in source, f"Tune's experiment snapshot no longer has {key}"


def _generator_state_format() -> None:
    import optuna
    from ray.tune.search import ConcurrencyLimiter, search_generator
    from ray.tune.search.optuna import OptunaSearch

    source = inspect.getsource(search_generator)
    for key in ("counter", "_total_samples", "_finished"):
        assert key in source, f"SearchGenerator's state no longer has {key}"
    searcher = OptunaSearch(space={"x": optuna.distributions.FloatDistribution(0, 1)}, metric="m", mode="max")
    limiter = ConcurrencyLimiter(searcher, max_concurrent=1)
    for key in ("live_trials", "num_unfinished_live_trials", "cached_results"):
        assert hasattr(limiter, key), f"ConcurrencyLimiter has no {key}"


def _restore_failure_log() -> None:
    from ray.tune.execution import tune_controller

    assert "Failed to restore the run state" in inspect.getsource(tune_controller), (
        "Tune no longer logs 'Failed to restore the run state' when a restore fails"
    )


def _trial_internals() -> None:
    from ray.tune.experiment.trial import Trial

    trial = Trial("noop", stub=True)
    assert isinstance(trial.run_metadata.metric_analysis, dict), "Trial.run_metadata.metric_analysis is gone"
    assert isinstance(trial.run_metadata.metric_n_steps, dict), "Trial.run_metadata.metric_n_steps is gone"
    assert hasattr(trial.temporary_state, "ray_actor"), "Trial.temporary_state.ray_actor is gone"
    assert isinstance(Trial.generate_id(), str)  # type: ignore[no-untyped-call]


def _optuna_storage_internals() -> None:
    import optuna

    study = optuna.create_study()
    trial = study.ask()
    assert hasattr(study, "_storage"), "Study._storage is gone"
    assert isinstance(trial._trial_id, int), "Trial._trial_id is gone"
    assert callable(trial._suggest), "Trial._suggest is gone"


#: The columns of Optuna's tables that sweeps/store/study_cache.py writes itself.
_WRITTEN_COLUMNS = {
    "trials": ("number", "study_id", "state", "datetime_start", "datetime_complete"),
    "trial_params": ("trial_id", "param_name", "param_value", "distribution_json"),
    "trial_user_attributes": ("trial_id", "key", "value_json"),
    "trial_system_attributes": ("trial_id", "key", "value_json"),
    "trial_intermediate_values": ("trial_id", "step", "intermediate_value", "intermediate_value_type"),
    "trial_values": ("trial_id", "objective", "value", "value_type"),
}
#: The unique keys its upserts rely on.
_UPSERT_KEYS = {
    "trial_user_attributes": {"trial_id", "key"},
    "trial_system_attributes": {"trial_id", "key"},
    "trial_intermediate_values": {"trial_id", "step"},
    "trial_values": {"trial_id", "objective"},
}


def _optuna_rdb_tables() -> None:
    import math
    import tempfile
    from pathlib import Path

    import optuna
    from optuna.storages._rdb import models
    from sqlalchemy import UniqueConstraint, inspect

    from sweeps.store.study_cache import WriteThroughStorage

    tables = {table.name: table for table in models.BaseModel.metadata.sorted_tables}
    for name, written in _WRITTEN_COLUMNS.items():
        table = tables[name]
        assert set(written) <= set(table.c.keys()), (
            f"{name} has no column {set(written) - set(table.c.keys())}"
        )
        required = {
            c.name
            for c in table.c
            if not c.nullable and not c.primary_key and c.default is None and c.server_default is None
        }
        assert required <= set(written), (
            f"{name} has required columns sweeps does not write: {required - set(written)}"
        )
    for name, keys in _UPSERT_KEYS.items():
        uniques = [
            {c.name for c in k.columns} for k in tables[name].constraints if isinstance(k, UniqueConstraint)
        ]
        assert keys in uniques, f"{name} has no unique key {keys}"
    for model, method in (
        (models.TrialValueModel, "value_to_stored_repr"),
        (models.TrialIntermediateValueModel, "intermediate_value_to_stored_repr"),
    ):
        assert callable(getattr(model, method)), f"{model.__name__}.{method} is gone"
    for column in ("datetime_start", "datetime_complete"):
        inspect(models.TrialModel).get_property_by_column(tables["trials"].c[column])
    # What the storage writes, a fresh RDBStorage reads back the same.
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'optuna.db'}"
        storage = WriteThroughStorage(optuna.storages.RDBStorage(url))
        study = optuna.create_study(storage=storage, study_name="s")
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        trial.set_user_attr("k", [1])
        storage.set_trial_intermediate_values(trial._trial_id, {1: 0.5, 2: math.inf})
        study.tell(trial, 0.25)
        running = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        fresh = optuna.storages.RDBStorage(url)
        on_file = fresh.get_all_trials(fresh.get_study_id_from_name("s"))
        assert [vars(t) for t in on_file] == [vars(t) for t in storage.get_all_trials(study._study_id)], (
            "a trial written by WriteThroughStorage reads back differently through RDBStorage"
        )
        assert on_file[1]._trial_id == running._trial_id, "FrozenTrial._trial_id is not the trial's id"


def _placement_group_by_id() -> None:
    from ray._raylet import PlacementGroupID
    from ray.util.placement_group import PlacementGroup

    group_id = PlacementGroupID(bytes.fromhex("ab" * 18))
    assert PlacementGroup(group_id).id.hex() == "ab" * 18, (
        "PlacementGroup(PlacementGroupID(...)) no longer round-trips"
    )


def _train_v2() -> None:
    from ray.train.torch import TorchTrainer
    from ray.train.v2._internal.constants import is_v2_enabled

    assert is_v2_enabled(), "Ray Train V2 is not on (RAY_TRAIN_V2_ENABLED): distributed trials need it"
    assert TorchTrainer.__module__.startswith("ray.train.v2"), (
        f"TorchTrainer is {TorchTrainer.__module__}'s, not V2's"
    )


def _ray_process_popen() -> None:
    from ray._private import services

    assert issubclass(services.ConsolePopen, subprocess.Popen), "services.ConsolePopen is no Popen"
    source = inspect.getsource(services.start_ray_process)
    assert "ConsolePopen(" in source, "start_ray_process no longer starts Ray's processes with ConsolePopen"
    assert "preexec_fn=" in source, "start_ray_process no longer passes a preexec_fn"


def _embedded_node_services() -> None:
    from ray._private import node
    from ray._private.parameter import RayParams

    params = inspect.signature(node.Node.__init__).parameters
    assert list(params)[1] == "ray_params", "Node.__init__ no longer takes ray_params first"
    for name in ("no_monitor", "include_log_monitor"):
        assert hasattr(RayParams(), name), f"RayParams has no {name}"
    head = inspect.getsource(node.Node.start_head_processes)
    assert "if not self._ray_params.no_monitor" in head, "start_head_processes no longer reads no_monitor"
    assert "self.start_api_server(" in head, (
        "start_head_processes no longer starts the dashboard via start_api_server"
    )
    assert "if self._ray_params.include_log_monitor" in inspect.getsource(node.Node.start_ray_processes), (
        "start_ray_processes no longer reads include_log_monitor"
    )


def _tune_actor_runtime_env() -> None:
    from ray.tune.execution import class_cache

    assert isinstance(class_cache.DEFAULT_ENV_VARS, dict), "class_cache.DEFAULT_ENV_VARS is gone"
    assert isinstance(class_cache.ENV_VARS_TO_PROPAGATE, (set, frozenset)), (
        "class_cache.ENV_VARS_TO_PROPAGATE is gone"
    )
    cache = class_cache._ActorClassCache()  # type: ignore[no-untyped-call]
    assert isinstance(cache._cache, dict), "_ActorClassCache._cache is gone"
    assert list(inspect.signature(class_cache._ActorClassCache.get).parameters) == ["self", "trainable_cls"]
    source = inspect.getsource(class_cache._ActorClassCache.get)
    assert "ray.remote(runtime_env=runtime_env)" in source, (
        "Tune no longer gives trial actors its runtime_env this way"
    )
    from ray.tune.execution import tune_controller

    assert "_ActorClassCache" in inspect.getsource(tune_controller), (
        "TuneController no longer uses _ActorClassCache"
    )


def _worker_preload() -> None:
    from ray._private.workers import default_worker

    source = inspect.getsource(default_worker)
    assert "--worker-preload-modules" in source and "args.worker_preload_modules" in source, (
        "default_worker.py no longer takes the raylet's --worker-preload-modules"
    )
    # The raylet (C++) turns the system setting into that flag: tests/ray_backend/test_embedded.py
    # checks the whole path on a real embedded Ray.


def _ray_auth_token_path() -> None:
    from pathlib import Path

    from ray._private.authentication import authentication_token_setup as setup

    assert setup._get_default_token_path() == Path.home() / ".ray" / "auth_token", "Ray's token file moved"
    assert "has_token" in inspect.getsource(setup.ensure_token_if_auth_enabled), (
        "ray.init no longer uses a token it finds before generating one"
    )


def _optuna_constraints_key() -> None:
    from optuna.samplers._tpe import sampler as tpe
    from optuna.study._constrained_optimization import _CONSTRAINTS_KEY

    assert _CONSTRAINTS_KEY == "constraints"
    assert "_get_infeasible_trial_score(trial) > 0" in inspect.getsource(tpe._split_trials), (
        "TPE no longer sends infeasible trials to its bad density in _split_trials"
    )


def _optuna_tpe_get_trials() -> None:
    import optuna

    for method in (
        optuna.samplers.TPESampler._sample_relative,
        optuna.samplers.TPESampler.sample_independent,
        optuna.samplers.TPESampler._sample,
    ):
        assert "study._get_trials(" in inspect.getsource(method), (
            f"TPE's {method.__name__} reads trials otherwise"
        )


ASSUMPTIONS = [
    Assumption(
        "tuner-internals",
        ("sweeps/ray_backend/restore.py",),
        (
            "Tuner._local_tuner holds _tune_config and _run_config, which a restored tuner takes "
            "from a fresh one"
        ),
        _tuner_internals,
    ),
    Assumption(
        "cluster-config",
        ("sweeps/ray_backend/cluster.py",),
        "ray._private.state.state.get_cluster_config() gives the autoscaler's node types",
        _cluster_config,
    ),
    Assumption(
        "train-storage",
        ("sweeps/ray_backend/snapshot.py",),
        "ray.train._internal.storage.StorageContext and _get_ray_train_session_dir lay out trial folders",
        _train_storage,
    ),
    Assumption(
        "experiment-state-format",
        ("sweeps/ray_backend/snapshot.py",),
        "experiment_state-*.json holds trial_data and runner_data, which resume corrects",
        _experiment_state_format,
    ),
    Assumption(
        "generator-state-format",
        ("sweeps/ray_backend/snapshot.py",),
        "search_gen_state-*.json pickles the generator's counter/total and the limiter's live trials",
        _generator_state_format,
    ),
    Assumption(
        "restore-failure-log",
        ("sweeps/ray_backend/snapshot.py",),
        "Tune logs 'Failed to restore the run state' when Tuner.restore fails, instead of raising",
        _restore_failure_log,
    ),
    Assumption(
        "trial-internals",
        (
            "sweeps/ray_backend/trial_memory.py",
            "sweeps/ray_backend/timeouts.py",
            "sweeps/ray_backend/snapshot.py",
        ),
        "Tune's Trial has run_metadata.metric_analysis/metric_n_steps and temporary_state.ray_actor",
        _trial_internals,
    ),
    Assumption(
        "optuna-storage-internals",
        ("sweeps/runner/reconcile.py", "sweeps/search/truthful_study.py", "sweeps/search/multi_fidelity.py"),
        "Study._storage, Trial._trial_id and Trial._suggest reach a trial's storage directly",
        _optuna_storage_internals,
    ),
    Assumption(
        "optuna-rdb-tables",
        ("sweeps/store/study_cache.py",),
        "WriteThroughStorage writes Optuna's trial tables itself (the _rdb models' tables, stored "
        "reprs, TrialModel's time conversion, FrozenTrial._trial_id), and RDBStorage reads back the same",
        _optuna_rdb_tables,
    ),
    Assumption(
        "placement-group-by-id",
        ("sweeps/ray_backend/train_runs.py",),
        "ray._raylet.PlacementGroupID and PlacementGroup(id) rebuild a Train run's group from its hex id",
        _placement_group_by_id,
    ),
    Assumption(
        "train-v2",
        ("sweeps/ray_backend/distributed.py",),
        (
            "ray.train.torch.TorchTrainer is Train V2's (on by default since Ray 2.5x) and runs "
            "inside a Tune trial"
        ),
        _train_v2,
    ),
    Assumption(
        "ray-process-popen",
        ("sweeps/ray_backend/process_groups.py",),
        "ray._private.services.start_ray_process starts each of the embedded Ray's processes "
        "with services.ConsolePopen(..., preexec_fn=...), looked up when it is called",
        _ray_process_popen,
    ),
    Assumption(
        "embedded-node-services",
        ("sweeps/ray_backend/embedded.py",),
        "ray.init builds a head Node(ray_params, ...) that skips the autoscaler monitor when "
        "ray_params.no_monitor, the log monitor unless include_log_monitor, and starts the dashboard "
        "only through Node.start_api_server",
        _embedded_node_services,
    ),
    Assumption(
        "tune-actor-runtime-env",
        ("sweeps/ray_backend/embedded.py",),
        "Tune registers each trial actor class through _ActorClassCache.get, with a runtime_env of "
        "DEFAULT_ENV_VARS and the ENV_VARS_TO_PROPAGATE set in the driver, and nothing else",
        _tune_actor_runtime_env,
    ),
    Assumption(
        "worker-preload",
        ("sweeps/ray_backend/embedded.py",),
        "ray.init(_system_config={'preload_python_modules': [...]}) makes every worker the raylet "
        "starts import those modules first (default_worker.py)",
        _worker_preload,
    ),
    Assumption(
        "ray-auth-token-path",
        ("sweeps/ray_backend/embedded.py",),
        "ray.init reads the token from ~/.ray/auth_token when it exists and writes a new one there otherwise",
        _ray_auth_token_path,
    ),
    Assumption(
        "optuna-constraints-key",
        ("sweeps/search/avoid_failures.py",),
        "a trial's constraint values live in its system attribute 'constraints', and TPE's _split_trials "
        "puts trials with a positive one in its bad density",
        _optuna_constraints_key,
    ),
    Assumption(
        "optuna-tpe-get-trials",
        ("sweeps/search/avoid_failures.py",),
        "TPESampler reads the study's trials through study._get_trials in _sample_relative, "
        "sample_independent and _sample",
        _optuna_tpe_get_trials,
    ),
]
