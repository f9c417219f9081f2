"""A bounded, background, batched writer of MLflow records.

The Ray Tune driver calls the tracking callback between scheduling decisions, so every
millisecond spent there is a millisecond no trial is started or stopped. Ray's own
``MLflowLoggerCallback`` logs synchronously there and doubled a 20-trial sweep's wall
time. This writer only appends to an in-memory buffer on the caller's thread; one
background thread turns the buffer into as few MLflow calls as it can:

- records are kept **per run, in order** (a run is created before it is logged to, and
  ended after its last metric), so consecutive metrics, params and tags of one run merge
  into one ``log_batch`` call, cut to MLflow's limits (1,000 metrics, 100 params,
  100 tags, 1,000 entities per call). A new run takes the tags logged right after its
  start at creation, one MLflow call fewer per run;
- when the tracking server does not answer (connection refused, 5xx, 429) nothing is
  dropped: the writer warns once, keeps the records and retries with a growing interval
  until the server is back, then says so. Trials keep running meanwhile;
- the buffer is bounded (``capacity`` records). When it is full, :meth:`submit` waits
  for the writer: the sweep slows down rather than loses records or memory;
- a record the server *refuses* (4xx, e.g. a param whose value changed) is dropped with
  a warning naming the run, so one bad record never blocks the rest.

Runs are addressed by a caller-chosen key (a Ray trial id, or ``"parent"``); their MLflow
run ids become known when the writer has created them (:meth:`run_id`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import posixpath
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sweeps.store.disk_errors import disk_error_of

_logger = logging.getLogger("sweeps.tracking")

#: MLflow's ``log_batch`` limits (https://mlflow.org/docs/latest/rest-api.html#log-batch).
MAX_METRICS, MAX_PARAMS, MAX_TAGS, MAX_ENTITIES = 1000, 100, 100, 1000
#: While the server is down, a reminder of how much is buffered is logged this often.
_REMINDER_SECONDS = 30.0
#: Longest wait at close for a store whose disk is full (the stop has given back a little
#: space, enough for the runs' ends; a read-only store never takes them).
_DISK_ERROR_CLOSE_SECONDS = 10.0
_MLFLOW_DB_LOGGER = "mlflow.store.db.utils"


@dataclass
class _Create:
    experiment_id: str
    name: str
    tags: dict[str, str]
    parent_key: str | None = None
    # Stamped by the caller: the writer may create the run a moment (or an outage) later,
    # and the UI's start, end and duration columns must tell the trial's own times.
    start_ms: int = field(default_factory=lambda: int(time.time() * 1000))


@dataclass
class _Log:
    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)  # key, value, ms, step
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class _Artifact:
    local_path: str | None = None
    artifact_path: str | None = None
    text: str | None = None  # set: log `text` as the file `artifact_path`
    folder: bool = False  # `local_path` is a folder: its files go under `artifact_path`


@dataclass
class _End:
    status: str
    end_ms: int = field(default_factory=lambda: int(time.time() * 1000))


_Op = Any  # one of _Create, _Log, _Artifact, _End


class TrackingWriter:
    """Writes MLflow runs from a background thread; see the module docstring.

    Args:
        uri: The MLflow tracking URI.
        known_runs: Run ids that exist already (key → run id), e.g. from a resumed sweep.
        on_run_created: Called as ``(key, run_id)`` on the writer thread for each new run.
        capacity: Most records buffered before :meth:`submit` waits.
        flush_interval: Seconds the writer gathers records before writing them.
        max_retry_interval: Longest wait between two tries while the server is down.
        on_disk_error: Called once, on the writer thread, with the first error that is the
            store's disk being full, read-only or failing (:mod:`sweeps.store.disk_errors`):
            not an outage to wait out, but a reason to stop the sweep. The writer keeps
            retrying quietly (the stop gives back a little space) and waits only briefly
            at :meth:`close`. None (a tracking server's store): an outage like any other.
    """

    def __init__(
        self,
        uri: str,
        *,
        known_runs: dict[str, str] | None = None,
        on_run_created: Callable[[str, str], None] | None = None,
        capacity: int = 100_000,
        flush_interval: float = 1.0,
        max_retry_interval: float = 5.0,
        on_disk_error: Callable[[BaseException], Any] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"The value of `capacity` is {capacity}, but must be `capacity >= 1`")
        if flush_interval < 0 or max_retry_interval <= 0:
            raise ValueError("`flush_interval` must be >= 0 and `max_retry_interval` > 0")
        self.uri = uri
        self._run_ids = dict(known_runs or {})
        self._on_run_created = on_run_created
        self._capacity = capacity
        self._flush_interval = flush_interval
        self._max_retry_interval = max_retry_interval
        self._queues: dict[str, deque[_Op]] = {}
        self._count = 0
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._closing = False
        self._abandon = False
        self._down_since: float | None = None
        self._reminded_at = 0.0
        self._thread: threading.Thread | None = None
        self.dropped = 0  # records the server refused
        self._on_disk_error = on_disk_error
        #: The store's first disk error (sweeps.store.disk_errors), once met.
        self.disk_error: BaseException | None = None
        self._db_logger_level = logging.NOTSET

    # -- the caller's side: cheap, never blocks unless the buffer is full ------------------

    def create_run(
        self, key: str, experiment_id: str, name: str, tags: dict[str, str], parent_key: str | None = None
    ) -> None:
        """Create the run for ``key``, or mark its existing run RUNNING again."""
        self.submit(key, _Create(experiment_id, name, dict(tags), parent_key))

    def log(
        self,
        key: str,
        *,
        metrics: dict[str, float] | None = None,
        step: int = 0,
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
    ) -> None:
        stamp = int(time.time() * 1000)
        self.submit(
            key,
            _Log(
                metrics=[(name, float(value), stamp, step) for name, value in (metrics or {}).items()],
                params={name: str(value) for name, value in (params or {}).items()},
                tags={name: str(value) for name, value in (tags or {}).items()},
            ),
        )

    def log_steps(
        self, key: str, steps: list[tuple[int, dict[str, float]]], *, tags: dict[str, Any] | None = None
    ) -> None:
        """Log the metrics of many steps, ``(step, {name: value})`` each, as one record."""
        stamp = int(time.time() * 1000)
        self.submit(
            key,
            _Log(
                metrics=[
                    (name, float(value), stamp, step)
                    for step, metrics in steps
                    for name, value in metrics.items()
                ],
                tags={name: str(value) for name, value in (tags or {}).items()},
            ),
        )

    def log_artifact(self, key: str, local_path: str, artifact_path: str | None = None) -> None:
        self.submit(key, _Artifact(local_path=local_path, artifact_path=artifact_path))

    def log_artifacts(self, key: str, local_folder: str, artifact_path: str | None = None) -> None:
        self.submit(key, _Artifact(local_path=local_folder, artifact_path=artifact_path, folder=True))

    def log_text(self, key: str, text: str, artifact_file: str) -> None:
        self.submit(key, _Artifact(artifact_path=artifact_file, text=text))

    def end_run(self, key: str, status: str) -> None:
        self.submit(key, _End(status))

    def submit(self, key: str, op: _Op) -> None:
        with self._cond:
            if self._closing:
                _logger.warning("MLflow writer is closed; dropped a record for run %s", key)
                return
            if self._count >= self._capacity:
                _logger.warning(
                    "MLflow tracking buffer is full (%d records): the sweep waits until MLflow "
                    "at %s takes them.",
                    self._count,
                    self.uri,
                )
                self._wake.set()
                while self._count >= self._capacity and not self._closing:
                    self._cond.wait()
                if self._closing:
                    _logger.warning(
                        "MLflow writer closed while the buffer was full; dropped a record for run %s", key
                    )
                    return
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = deque()
            queue.append(op)
            self._count += 1

    def run_id(self, key: str) -> str | None:
        return self._run_ids.get(key)

    @property
    def pending(self) -> int:
        return self._count

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> TrackingWriter:
        # MLflow's HTTP client retries a refused connection 7 times with exponential backoff
        # (minutes in all) inside one call. This writer retries itself, keeps buffering
        # meanwhile and says so, so one quick try per call is what it needs. setdefault
        # keeps a value the user chose.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        # MLflow's SQL store logs every failed commit with its whole traceback before raising
        # it; this writer sorts each failure itself and says it once (a full disk printed
        # about 600 tracebacks before). Restored at close.
        db_logger = logging.getLogger(_MLFLOW_DB_LOGGER)
        self._db_logger_level = db_logger.level
        db_logger.setLevel(logging.CRITICAL)
        self._thread = threading.Thread(target=self._loop, name="sweeps-mlflow-writer", daemon=True)
        self._thread.start()
        return self

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every buffered record is written; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._count:
                self._wake.set()
                if self.disk_error is not None:  # the sweep stops on it: wait briefly, not for long
                    cut = time.monotonic() + _DISK_ERROR_CLOSE_SECONDS
                    deadline = cut if deadline is None else min(deadline, cut)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(timeout=0.2 if left is None else min(0.2, left))
        return True

    def close(self, timeout: float = 120.0) -> int:
        """Write what is buffered (waiting up to ``timeout`` s for a server that is down),
        stop the thread, and return how many records could not be written."""
        if self._count and self._down_since is not None and self.disk_error is None:
            _logger.warning(
                "Waiting up to %.0f s for MLflow at %s to answer, to write %d buffered records "
                "(Ctrl-C gives up on them).",
                timeout,
                self.uri,
                self._count,
            )
        self.flush(timeout)
        with self._cond:
            self._closing = True
            self._abandon = True
            self._cond.notify_all()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._count and self.disk_error is None:
            _logger.warning(
                "%d MLflow records could not be written to %s and are lost.", self._count, self.uri
            )
        logging.getLogger(_MLFLOW_DB_LOGGER).setLevel(self._db_logger_level)
        return self._count

    # -- the writer thread ---------------------------------------------------------------------

    def _loop(self) -> None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self.uri)
        _use_fast_commits(client)
        retry_interval = 0.5
        while True:
            with self._cond:
                while not self._count and not self._abandon:
                    self._cond.wait(timeout=1.0)
                if self._abandon:
                    return
            # Gather a little before writing, so one call carries many records.
            self._wake.wait(timeout=self._flush_interval)
            self._wake.clear()
            try:
                self._write_all(client)
            except _ServerDown as down:
                if self._on_disk_error is not None and self.disk_error is None and disk_error_of(down.cause):
                    self.disk_error = down.cause
                    self._on_disk_error(down.cause)
                if self.disk_error is None:
                    self._note_outage(down.cause)
                self._wake.wait(timeout=retry_interval)
                retry_interval = min(retry_interval * 2, self._max_retry_interval)
                continue
            retry_interval = 0.5
            if self._down_since is not None:
                _logger.warning(
                    "MLflow at %s answers again after %.0f s; the records buffered meanwhile are written.",
                    self.uri,
                    time.monotonic() - self._down_since,
                )
                self._down_since = None

    def _write_all(self, client: Any) -> None:
        with self._cond:
            snapshot = {key: list(queue) for key, queue in self._queues.items() if queue}
        for key, ops in snapshot.items():
            index = 0
            while index < len(ops):
                op = ops[index]
                # Merge the run of consecutive log records into as few calls as possible.
                start = index if isinstance(op, _Log) else index + 1
                end = start
                while end < len(ops) and isinstance(ops[end], _Log):
                    end += 1
                logs: list[_Log] = ops[start:end]
                if isinstance(op, _Create) and key not in self._run_ids:
                    logs = self._create_with_tags(client, key, op, logs)
                    self._done(key, 1)
                elif isinstance(op, (_Create, _Artifact, _End)):
                    self._guarded(key, functools.partial(self._apply, client, key, op))
                    self._done(key, 1)
                if logs:
                    self._write_logs(client, key, logs)
                    self._done(key, len(logs))
                index = end

    def _create_with_tags(self, client: Any, key: str, create: _Create, logs: list[_Log]) -> list[_Log]:
        """Create the run with the tags of the ``logs`` that follow it; return what is left of them.

        A trial's first report tags its node, and a trial that ended within one flush its
        end state: set at creation, they save the run a ``log_batch`` session of tags. On
        ``python -m benchmarks.tracking_cpu`` (B2R's shape: 40 trials, 800 reports) MLflow
        ran 1,909 SQL statements instead of 2,122. The rest is MLflow's own cost, whatever
        the batching: about 8 ms a ``create_run``, 2 ms a ``set_terminated``, 0.1 ms a
        metric row (py-spy and per-call timing on that run).
        """
        tags = {name: value for log in logs for name, value in log.tags.items()}
        # MLflow's create_run checks no tag (its log_batch does): only tags that
        # log_batch would take as they are go with the creation.
        plain = {name: value for name, value in tags.items() if _is_plain_tag(name, value)}
        if plain:
            folded = dataclasses.replace(create, tags={**create.tags, **plain})
            if self._guarded(key, functools.partial(self._apply, client, key, folded), quiet=True):
                return [
                    _Log(log.metrics, log.params, {k: v for k, v in log.tags.items() if k not in plain})
                    for log in logs
                ]
        # None to fold, or the server refused the creation with them: the tags go with the
        # logs, where a bad one is dropped alone.
        self._guarded(key, functools.partial(self._apply, client, key, create))
        return logs

    def _write_logs(self, client: Any, key: str, logs: list[_Log]) -> None:
        merged = _Log()
        for log in logs:
            merged.metrics.extend(log.metrics)
            merged.params.update(log.params)
            merged.tags.update(log.tags)
        if self._guarded(key, lambda: self._log_batch(client, key, merged), quiet=len(logs) > 1):
            return
        if len(logs) == 1:
            return
        # The server refused the merged batch: retry record by record, so only the bad one is lost.
        for log in logs:
            self._guarded(key, functools.partial(self._log_batch, client, key, log))

    def _guarded(self, key: str, call: Callable[[], None], quiet: bool = False) -> bool:
        """Run ``call``; raise :class:`_ServerDown` if the server is away, False if it refused."""
        try:
            call()
            return True
        except Exception as exc:  # sorted into retry or drop right here
            if _is_transient(exc):
                raise _ServerDown(exc) from exc
            if not quiet:
                self.dropped += 1
                _logger.warning("MLflow at %s refused a record of run %s, dropped: %s", self.uri, key, exc)
            return False

    def _log_batch(self, client: Any, key: str, log: _Log) -> None:
        from mlflow.entities import Metric, Param, RunTag

        run_id = self._require_run(key)
        params = [Param(k, v) for k, v in log.params.items()]
        tags = [RunTag(k, v) for k, v in log.tags.items()]
        metrics = [Metric(k, v, ms, step) for k, v, ms, step in log.metrics]
        while params or tags or metrics:
            p, params = params[:MAX_PARAMS], params[MAX_PARAMS:]
            t, tags = tags[:MAX_TAGS], tags[MAX_TAGS:]
            room = min(MAX_METRICS, MAX_ENTITIES - len(p) - len(t))
            m, metrics = metrics[:room], metrics[room:]
            client.log_batch(run_id, metrics=m, params=p, tags=t, synchronous=True)

    def _apply(self, client: Any, key: str, op: _Op) -> None:
        if isinstance(op, _Create):
            existing = self._run_ids.get(key)
            if existing is not None:
                client.update_run(existing, status="RUNNING")
                return
            tags = dict(op.tags)
            if op.parent_key is not None:
                tags["mlflow.parentRunId"] = self._require_run(op.parent_key)
            run = client.create_run(op.experiment_id, start_time=op.start_ms, run_name=op.name, tags=tags)
            self._run_ids[key] = run.info.run_id
            if self._on_run_created is not None:
                self._on_run_created(key, run.info.run_id)
        elif isinstance(op, _Artifact):
            if op.text is not None:
                client.log_text(self._require_run(key), op.text, op.artifact_path)
            elif op.folder:
                client.log_artifacts(self._require_run(key), op.local_path, op.artifact_path)
            else:
                client.log_artifact(self._require_run(key), op.local_path, op.artifact_path)
        elif isinstance(op, _End):
            client.set_terminated(self._require_run(key), status=op.status, end_time=op.end_ms)

    def _require_run(self, key: str) -> str:
        run_id = self._run_ids.get(key)
        if run_id is None:
            raise LookupError(f"no MLflow run was created for {key!r}")
        return run_id

    def _done(self, key: str, count: int) -> None:
        with self._cond:
            queue = self._queues[key]
            for _ in range(count):
                queue.popleft()
            self._count -= count
            self._cond.notify_all()

    def _note_outage(self, cause: BaseException) -> None:
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = self._reminded_at = now
            reason = str(cause).splitlines()[0][:300] if str(cause) else type(cause).__name__
            _logger.warning(
                "MLflow at %s does not answer (%s). Trials keep running; %d records are buffered "
                "(at most %d) and retried until it is back.",
                self.uri,
                reason,
                self._count,
                self._capacity,
            )
        elif now - self._reminded_at >= _REMINDER_SECONDS:
            self._reminded_at = now
            _logger.warning(
                "MLflow at %s still does not answer after %.0f s; %d records are buffered.",
                self.uri,
                now - self._down_since,
                self._count,
            )


_PLAIN_TAG_NAME = re.compile(r"[\w.\- :/]{1,250}")


def _is_plain_tag(name: str, value: str) -> bool:
    """Whether MLflow's ``log_batch`` takes the tag as it is: its characters, a name that is
    its own normalised path, at most 250 characters, and a value it does not truncate
    (MLflow 3.17 keeps 8,000 characters; 5,000 leaves room for older 3.x releases)."""
    return (
        _PLAIN_TAG_NAME.fullmatch(name) is not None
        and posixpath.normpath(name) == name
        and not name.startswith(("/", ".."))
        and name != "."
        and len(value) <= 5000
    )


class _ServerDown(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _is_transient(exc: BaseException) -> bool:
    """True when the server is away or overloaded (retry), False when it refused the record."""
    from mlflow.exceptions import MlflowException

    if isinstance(exc, MlflowException):
        status: int = exc.get_http_status_code()  # type: ignore[no-untyped-call]  # unannotated in MLflow
        return status >= 500 or status == 429
    try:
        from sqlalchemy.exc import OperationalError
    except ImportError:  # pragma: no cover - sqlalchemy comes with mlflow
        OperationalError = OSError  # type: ignore[misc,assignment]
    return isinstance(exc, (OSError, TimeoutError, OperationalError))


def _use_fast_commits(client: Any) -> None:
    """An embedded SQLite store commits in WAL mode: see :mod:`sweeps.sqlite` (measured there)."""
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    engine = getattr(store, "engine", None)
    if engine is not None:
        from sweeps.sqlite import use_fast_commits

        use_fast_commits(engine)
