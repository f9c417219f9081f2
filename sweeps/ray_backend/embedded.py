"""Starting Ray: the embedded local Ray with only what a sweep needs, on a thread of its own.

``ray.init()`` without an address starts, besides the GCS and the raylet (which starts its
dashboard and runtime-env agents and the prestarted workers), three Python processes that
a sweep on one machine never uses: the autoscaler monitor, the log monitor (it forwards
workers' output, and the sweep sets ``log_to_driver=False``) and a dashboard process
(``--modules-to-load=UsageStatsHead`` with ``include_dashboard=False``: usage statistics,
which the sweep turns off). ``ray.init`` also *waits* for that dashboard to write its
address. Measured on 2 cores (``ray.init`` + one task + ``ray.shutdown``, 2 runs each):
``ray.init`` 4.3 s → 1.9-3.0 s and ``ray.shutdown`` 1.1-1.4 s → 0.4 s without them, and a
trivial sweep's tree spent 1.7 CPU-seconds less (``benchmarks/process_cpu.py``). Ray has
no public setting for any of the three (``RayParams.no_monitor`` and
``include_log_monitor`` exist, but ``ray.init`` does not pass them), so
:func:`only_what_a_sweep_needs` sets them on the node it builds: private names, checked by
``compat.py`` (``embedded-node-services``). The agents stay: the raylet fate-shares with
them.

:class:`RayStarter` runs ``ray.init`` on a thread, so that the driver loads the trainable
(torch), opens MLflow and the study while Ray's processes start on the other core. The
thread then stays alive, parked, until Ray is shut down: Ray starts its processes with
``prctl(PR_SET_PDEATHSIG)``, which fires when the *thread* that forked them ends, not the
process, so a thread that returned would take the GCS and the raylet with it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sweeps.errors import SweepError
from sweeps.ray_backend.process_groups import ray_processes_in_their_own_groups


@contextlib.contextmanager
def only_what_a_sweep_needs() -> Iterator[None]:
    """While active, a head node that ``ray.init`` builds starts no monitor, log monitor or dashboard."""
    from ray._private import node  # compat: embedded-node-services

    original_init = node.Node.__init__
    original_api_server = node.Node.start_api_server

    def init(self: Any, ray_params: Any, *args: Any, **kwargs: Any) -> None:
        ray_params.no_monitor = True
        ray_params.include_log_monitor = False
        original_init(self, ray_params, *args, **kwargs)

    def no_api_server(self: Any, **kwargs: Any) -> None:
        return None

    node.Node.__init__ = init  # type: ignore[method-assign]
    node.Node.start_api_server = no_api_server  # type: ignore[method-assign]
    try:
        yield
    finally:
        node.Node.__init__ = original_init  # type: ignore[method-assign]
        node.Node.start_api_server = original_api_server  # type: ignore[method-assign]


def init_kwargs() -> dict[str, Any]:
    return {
        "log_to_driver": False,
        "include_dashboard": False,
        "configure_logging": True,
        "logging_level": "ERROR",
    }


def worker_preload_modules(trainable: str | None, workers_per_trial: int = 1) -> list[str]:
    """What the embedded Ray's workers import as they start, before a trial reaches them.

    Ray prestarts one worker per CPU at ``ray.init``; with the trial actors now placed on
    them (:func:`trial_actors_on_prestarted_workers`), their imports of torch, Ray Tune's
    trainable machinery and the trainable's module run while the driver still imports its
    own, instead of after the Tuner starts. Measured on B0's sweep (4 alternating pairs,
    2 cores, a busy machine): 7.6-10.1 s end to end (median 8.9) with the preload, 8.0-10.5 s
    (median 10.0) without; Ray is up later (its workers import meanwhile) but the trials
    start sooner. (An earlier attempt, before the actors used the prestarted workers, was
    a loss: those workers imported torch for nothing.) A trainable given as a file path is
    imported by path, so only a module name is preloaded.

    A distributed sweep (``workers_per_trial`` > 1) preloads nothing: Ray Train starts
    about ten actors per trial attempt (its controller, coordinators, watchers, then the
    ranks) on new worker processes, and the preload made each import torch and Ray Tune,
    most of them for nothing. Measured on the distributed lifecycle test (four drivers
    of a 2-worker trial, 2 cores, quiet): 173 s → 134 s, and about 40 % less CPU.
    """
    from sweeps.training.registry import BUILTIN_TRAINABLES

    if workers_per_trial > 1:
        return []

    modules = ["torch", "ray.tune", "sweeps.ray_backend.trial"]
    target = BUILTIN_TRAINABLES.get(trainable or "", trainable or "")
    module = target.partition(":")[0]
    if module and "/" not in module and not module.endswith(".py"):
        modules.append(module)
    return modules


def _preloading(modules: list[str]) -> dict[str, Any]:
    # Ray's system setting `preload_python_modules`: the raylet passes it to every worker it
    # starts, and default_worker.py imports each module, logging (not raising) what fails.
    return (
        {"_system_config": {"preload_python_modules": modules}} if modules else {}
    )  # compat: worker-preload


def start_embedded_ray(preload: list[str] | None = None) -> None:
    """``ray.init()`` of a local Ray for this driver alone (call it on :class:`RayStarter`'s thread)."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Workers must import trainables given as `module:function` from the user's folder. The
    # embedded Ray's processes inherit the driver's environment, so PYTHONPATH goes there
    # rather than in a runtime_env: a job with a runtime_env cannot use the worker processes
    # Ray prestarts at `ray.init`, and each trial actor then waits for a fresh process set up
    # by the runtime-env agent (measured: 2 actors ready in 2.1-2.4 s with the runtime_env,
    # 0.5-0.7 s without).
    global _inherited_environment
    inherited = {"PYTHONPATH": _pythonpath(), **_TUNE_ACTOR_ENVIRONMENT}
    previous = {name: os.environ.get(name) for name in inherited}
    os.environ.update(inherited)
    try:
        _inherited_environment = dict(os.environ)
        # Process groups: so that a SIGTERM to the driver's whole group reaches the driver alone.
        with ray_processes_in_their_own_groups(), only_what_a_sweep_needs():
            # address="local": a Ray of its own, even when `ray start` runs on this machine
            # (without it, ray.init() joins that one; `--address auto` is how to choose it).
            private_auth_token()
            ray.init(address="local", **init_kwargs(), **_preloading(preload or []))
    except BaseException:
        _inherited_environment = None
        raise
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def private_auth_token() -> Path | None:
    """Make sure the token the embedded Ray authenticates with is readable by its owner alone.

    Ray 2.60's ``ray.init()`` turns token authentication on and, when there is no token,
    writes a new one to ``~/.ray/auth_token`` with the default mode (0644 under the usual
    umask): every user of the machine could read the token and join the sweep's Ray.
    Written here first, with ``O_EXCL`` and mode 0600, Ray finds it and uses it; a token
    already there is restricted to 0600. Nothing is done when the token does not come from
    that file (``RAY_AUTH_MODE`` other than token, ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``).
    Returns the token file it wrote or restricted, or None.
    """
    if (
        os.environ.get("RAY_AUTH_MODE", "token").lower() != "token"
        or os.environ.get("RAY_AUTH_TOKEN")
        or os.environ.get("RAY_AUTH_TOKEN_PATH")
    ):
        return None
    path = Path.home() / ".ray" / "auth_token"  # compat: ray-auth-token-path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
            return path
        with os.fdopen(descriptor, "w") as stream:
            stream.write(secrets.token_hex(32))  # as Ray's own generate_new_authentication_token
        return path
    except OSError:  # a read-only or foreign home: Ray's own handling (and error) applies
        return None


#: What Tune sets on every trial actor (``class_cache.DEFAULT_ENV_VARS``), given to the
#: embedded Ray's processes from the start instead (:func:`trial_actors_on_prestarted_workers`).
_TUNE_ACTOR_ENVIRONMENT = {"PL_DISABLE_FORK": "1"}
#: The environment the running embedded Ray's processes inherited (None: no embedded Ray).
_inherited_environment: dict[str, str] | None = None


@contextlib.contextmanager
def trial_actors_on_prestarted_workers() -> Iterator[None]:
    """While active, Tune's trial actors take the worker processes Ray prestarted.

    Tune creates every trial actor with ``runtime_env={"env_vars": {...}}`` (``PL_DISABLE_FORK``
    and any of a list of variables set in the driver), and a worker process serves only
    actors of its own runtime environment. So the workers the embedded Ray prestarts at
    ``ray.init`` (one per CPU, ready with Ray imported) sat idle, and each trial actor
    waited for a fresh process set up through the runtime-env agent: measured on the B0
    sweep, 4 worker processes instead of 2, and the first trials starting about 1 s later.
    The embedded Ray's processes inherit the driver's environment, so where those
    variables already hold the values Tune would set, the runtime_env adds nothing and is
    left out; otherwise (a cluster, a variable set after Ray started) Tune's own is kept.
    """
    from ray.tune.execution import class_cache  # compat: tune-actor-runtime-env

    original = class_cache._ActorClassCache.get

    def get(self: Any, trainable_cls: Any) -> Any:
        import ray

        inherited = _inherited_environment
        wanted = {name: os.environ[name] for name in class_cache.ENV_VARS_TO_PROPAGATE if name in os.environ}
        wanted.update(class_cache.DEFAULT_ENV_VARS)
        redundant = inherited is not None and all(inherited.get(k) == v for k, v in wanted.items())
        if not redundant:
            return original(self, trainable_cls)  # type: ignore[no-untyped-call]
        if trainable_cls not in self._cache:
            self._cache[trainable_cls] = ray.remote(trainable_cls)
        return self._cache[trainable_cls]

    class_cache._ActorClassCache.get = get  # type: ignore[method-assign]
    try:
        yield
    finally:
        class_cache._ActorClassCache.get = original  # type: ignore[method-assign]


def join_cluster(address: str) -> None:
    """``ray.init(address)``: a running cluster (or a local ``ray start --head``)."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs = init_kwargs()
    kwargs.pop("include_dashboard")
    try:
        ray.init(address=address, runtime_env={"env_vars": {"PYTHONPATH": _pythonpath()}}, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SweepError(
            f"--address {address}: cannot join the Ray cluster there ({exc}). Check that "
            "`ray status --address ...` works from this machine, or leave out --address "
            "to run on an embedded local Ray."
        ) from None


def _pythonpath() -> str:
    return os.pathsep.join(p for p in [os.getcwd(), os.environ.get("PYTHONPATH", "")] if p)


class RayStarter:
    """Starts (or joins) Ray on a thread that lives as long as the Ray it started.

    Example::

        starter = RayStarter(None).begin()   # returns at once
        ...                                  # the driver's own start-up
        starter.wait()                       # Ray is up (or its error is raised here)
        ...
        starter.stop()                       # ray.shutdown(), then the thread ends
    """

    def __init__(self, address: str | None, preload: list[str] | None = None) -> None:
        self.address = address
        self.preload = list(preload or [])
        self._ready = threading.Event()
        self._release = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._start_and_hold, name="sweeps-ray-start", daemon=True)

    def begin(self) -> RayStarter:
        # Ray's modules are imported here, on the caller's thread: two threads importing the
        # same protobuf-generated modules at once can leave one half-built.
        import ray._private.node
        import ray._private.services  # noqa: F401

        self._thread.start()
        return self

    def wait(self) -> None:
        """Block until Ray is up; raise what ``ray.init`` raised."""
        self._ready.wait()
        if self._error is not None:
            self._release.set()
            raise self._error

    def stop(self) -> None:
        """Wait for the start to end, shut Ray down, and let the thread end."""
        import ray

        global _inherited_environment
        self._ready.wait()
        try:
            if self._error is None:
                ray.shutdown()
        finally:
            _inherited_environment = None
            self._release.set()

    def _start_and_hold(self) -> None:
        try:
            if self.address is None:
                start_embedded_ray(self.preload)
            else:
                join_cluster(self.address)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            self._error = exc
        finally:
            self._ready.set()
        # Parked, not ended: Ray's processes get SIGKILL when the thread that forked them ends.
        self._release.wait()
