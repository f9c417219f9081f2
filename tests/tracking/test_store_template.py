"""A new SQLite store copied from the cached template is an ordinary MLflow store, made safely.

Real MLflow throughout: the copy is opened, upgraded and served by MLflow's own client,
``mlflow db upgrade`` and ``mlflow server``, in processes of their own.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from sweeps.spec.loading import load_spec
from sweeps.store.state import sweep_paths
from sweeps.tracking.preflight import preflight, tracking_uri, wait_for_store
from sweeps.tracking.store_template import cache_folder, create_store_from_template, template_path
from tests.conftest import REPO
from tests.ports import free_port
from tests.tracking.conftest import MlflowServer


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One template cache for the module, so MLflow's migrations run once for all its tests."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def cache(shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared_cache))
    return shared_cache


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    return tmp_path / "empty-cache"


def _run_python(code: str, *args: str, timeout: float = 180) -> str:
    """Run ``code`` in a fresh interpreter (this repository importable, the same cache)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _revision(path: Path) -> str:
    with closing(sqlite3.connect(path)) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    return str(revision[0])


def _schema(path: Path) -> set[tuple[str, str, tuple[str, ...]]]:
    """Every table and index with its definition's lines, in any order: MLflow's migrations
    rebuild tables from sets of constraints, so two stores MLflow itself made in two processes
    (another PYTHONHASHSEED) list the same constraints in different orders."""
    with closing(sqlite3.connect(path)) as connection:
        rows = connection.execute("SELECT type, name, COALESCE(sql, '') FROM sqlite_master")
        return {
            (kind, name, tuple(sorted(line.strip().rstrip(",") for line in sql.splitlines())))
            for kind, name, sql in rows
        }


def _rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as connection:
        return list(connection.execute(query))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- it is an ordinary MLflow store ------------------------------------------------------------------


@pytest.mark.slow
def test_another_process_uses_the_copy_with_plain_mlflow(cache: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert create_store_from_template(uri)
    out = _run_python(
        "import json, sys, mlflow\n"
        "from mlflow.tracking import MlflowClient\n"
        "client = MlflowClient(sys.argv[1])\n"
        "experiment = client.create_experiment('e')\n"
        "run = client.create_run(experiment, run_name='r')\n"
        "client.log_metric(run.info.run_id, 'loss', 0.5, step=3)\n"
        "client.set_terminated(run.info.run_id)\n"
        "mlflow.set_tracking_uri(sys.argv[1])\n"
        "runs = mlflow.search_runs(search_all_experiments=True)\n"
        "print(json.dumps({'experiments': sorted(e.name for e in client.search_experiments()),\n"
        "                  'runs': runs[['metrics.loss', 'status']].values.tolist()}))\n",
        uri,
    )
    assert json.loads(out.splitlines()[-1]) == {"experiments": ["Default", "e"], "runs": [[0.5, "FINISHED"]]}


@pytest.mark.slow
def test_mlflow_db_upgrade_accepts_the_copy(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "mlflow.db"
    assert create_store_from_template(f"sqlite:///{path}")
    revision = _revision(path)
    _run_python(
        "import sys; from mlflow.cli import cli; sys.exit(cli())", "db", "upgrade", f"sqlite:///{path}"
    )
    assert _revision(path) == revision


@pytest.mark.slow
def test_mlflow_server_serves_the_copy(cache: Path, tmp_path: Path) -> None:
    # MlflowServer serves `<folder>/server.db`: that file is the copy.
    assert create_store_from_template(f"sqlite:///{tmp_path / 'server.db'}")
    server = MlflowServer(tmp_path, free_port())
    server.start()
    try:
        request = urllib.request.Request(
            f"{server.uri}/api/2.0/mlflow/experiments/search",
            data=json.dumps({"max_results": 10}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            experiments = json.load(response)["experiments"]
    finally:
        server.stop()
    assert [e["name"] for e in experiments] == ["Default"]


@pytest.mark.parametrize("user_uri", [False, True], ids=["embedded", "tracking.uri sqlite"])
def test_a_sweeps_store_matches_the_one_mlflow_creates_itself(
    cache: Path,
    write_spec: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    user_uri: bool,
) -> None:
    from mlflow.tracking import MlflowClient

    from sweeps.tracking import store_template

    created: list[bool] = []
    real = store_template.create_store_from_template

    def recorded(uri: str) -> bool:
        created.append(real(uri))
        return created[-1]

    monkeypatch.setattr(store_template, "create_store_from_template", recorded)
    monkeypatch.chdir(tmp_path)  # MLflow's Default experiment keeps ./mlruns of the moment
    overrides = [f"tracking.uri=sqlite:///{tmp_path / 'own' / 'store.db'}"] if user_uri else []
    loaded = load_spec(write_spec(), overrides)
    paths = sweep_paths(loaded.spec.storage, loaded.spec.name)
    uri = preflight(loaded.spec, paths, loaded.source)  # the real code path: opens it on a thread
    wait_for_store(uri)
    ours = Path(uri.removeprefix("sqlite:///"))
    assert created == [True], "the sweep's store was made from the template"
    reference = tmp_path / "made-by-mlflow.db"
    MlflowClient(f"sqlite:///{reference}").search_experiments()

    assert _revision(ours) == _revision(reference)
    assert _schema(ours) == _schema(reference)
    for query in (
        "SELECT experiment_id, name, artifact_location, lifecycle_stage, workspace FROM experiments",
        "SELECT * FROM workspaces",
    ):
        assert _rows(ours, query) == _rows(reference, query)
    assert uri == tracking_uri(loaded.spec, paths)


# -- the cache -----------------------------------------------------------------------------------------


def test_the_template_is_made_once_and_reused(cache: Path, tmp_path: Path) -> None:
    assert create_store_from_template(f"sqlite:///{tmp_path / 'first.db'}")
    template = template_path()
    before = template.stat()
    assert create_store_from_template(f"sqlite:///{tmp_path / 'second.db'}")
    after = template.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), "migrated again"
    assert _digest(tmp_path / "second.db") == _digest(template)
    # One self-contained file: nothing beside it, and not in WAL mode (which needs a -wal).
    assert sorted(p.name for p in cache_folder().iterdir()) == [template.name]
    assert _rows(template, "PRAGMA journal_mode") == [("delete",)]
    assert _rows(template, "SELECT COUNT(*) FROM experiments") == [(0,)]


def test_the_cache_respects_xdg_cache_home_and_defaults_to_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_folder() == tmp_path / "sweeps"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for unset in ("", "relative/cache"):  # the XDG spec ignores a relative path
        monkeypatch.setenv("XDG_CACHE_HOME", unset)
        assert cache_folder() == tmp_path / "home" / ".cache" / "sweeps"


@pytest.mark.slow
def test_two_sweeps_creating_stores_at_once_both_get_a_valid_one(empty_cache: Path, tmp_path: Path) -> None:
    # Both start with an empty cache, so both build the template, then race for one target
    # (two sweeps sharing a storage folder share its mlflow.db).
    go = tmp_path / "go"
    code = (
        "import json, os, sys, time\n"
        "from mlflow.tracking import MlflowClient\n"
        "from sweeps.tracking.store_template import create_store_from_template\n"
        "while not os.path.exists(sys.argv[2]): time.sleep(0.01)\n"
        "created = create_store_from_template(sys.argv[1])\n"
        "print(json.dumps({'created': created,\n"
        "                  'experiments': [e.name for e in "
        "MlflowClient(sys.argv[1]).search_experiments()]}))\n"
    )
    uri = f"sqlite:///{tmp_path / 'storage' / 'mlflow.db'}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, uri, str(go)],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    time.sleep(3)  # let both import mlflow, so they start together
    go.touch()
    answers = []
    for process in processes:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err[-3000:]
        answers.append(json.loads(out.splitlines()[-1]))
    assert [a["experiments"] for a in answers] == [["Default"], ["Default"]]
    assert sorted(a["created"] for a in answers) == [False, True]  # the other opened the winner's
    assert sorted(p.name for p in (tmp_path / "storage").iterdir() if p.name.startswith(".")) == []
    template = next(cache_folder().iterdir())
    assert [p.name for p in cache_folder().iterdir()] == [template.name]  # no temporary left
    assert len(_rows(template, "SELECT version_num FROM alembic_version")) == 1


def _file_in_the_way(tmp_path: Path) -> str:
    (tmp_path / "not-a-folder").write_text("")
    return str(tmp_path / "not-a-folder")


@pytest.mark.parametrize("unwritable", [_file_in_the_way])
def test_an_unwritable_cache_still_gives_a_working_store(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    unwritable: Callable[[Path], str],
) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("XDG_CACHE_HOME", unwritable(tmp_path))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert not create_store_from_template(uri)
    assert not (tmp_path / "mlflow.db").exists()
    assert [e.name for e in MlflowClient(uri).search_experiments()] == ["Default"]  # MLflow made it


READ_ONLY_CACHE = """
import sys
from mlflow.tracking import MlflowClient
from sweeps.tracking.store_template import create_store_from_template
uri = f"sqlite:///{sys.argv[1]}/mlflow.db"
print(create_store_from_template(uri), [e.name for e in MlflowClient(uri).search_experiments()])
"""


def test_a_cache_on_a_read_only_mount_still_gives_a_working_store(tmp_path: Path) -> None:
    # A real read-only bind mount in a private user+mount namespace: root or not, nothing
    # can be written there (a chmod would not stop root).
    cache, store = tmp_path / "cache", tmp_path / "store"
    (cache / "sweeps").mkdir(parents=True)
    store.mkdir()
    script = (
        'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && '
        'XDG_CACHE_HOME="$1" exec "$2" -c "$3" "$4"'
    )
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(cache), sys.executable, READ_ONLY_CACHE, str(store)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False", "['Default']"], done.stdout  # no template; MLflow made the store
    assert list((cache / "sweeps").iterdir()) == []
    # Refused at once: MLflow, asked to make the template there, retried for 100 s.
    assert "Operation will be retried" not in done.stderr, done.stderr[-3000:]


def test_a_broken_template_is_not_copied_and_is_made_again(empty_cache: Path, tmp_path: Path) -> None:
    template = template_path()
    template.parent.mkdir(parents=True)
    template.write_bytes(b"SQLite format 3\x00 but truncated")
    assert not create_store_from_template(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert not (tmp_path / "mlflow.db").exists()
    assert not template.exists()
    assert create_store_from_template(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert len(_rows(tmp_path / "mlflow.db", "SELECT version_num FROM alembic_version")) == 1


# -- what it must leave alone -----------------------------------------------------------------------


@pytest.fixture
def existing_store(tmp_path: Path) -> Iterator[Path]:
    from mlflow.tracking import MlflowClient

    path = tmp_path / "existing.db"
    client = MlflowClient(f"sqlite:///{path}")
    client.create_experiment("kept")
    yield path


def test_an_existing_store_is_never_overwritten(cache: Path, existing_store: Path) -> None:
    before = _digest(existing_store)
    assert not create_store_from_template(f"sqlite:///{existing_store}")
    assert _digest(existing_store) == before


def test_an_existing_file_that_is_not_a_store_is_never_overwritten(cache: Path, tmp_path: Path) -> None:
    (tmp_path / "mlflow.db").write_bytes(b"someone's data")
    assert not create_store_from_template(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert (tmp_path / "mlflow.db").read_bytes() == b"someone's data"


@pytest.mark.parametrize("leftover", ["-wal", "-journal"])
def test_a_leftover_journal_beside_a_missing_store_is_left_to_mlflow(
    cache: Path,
    tmp_path: Path,
    leftover: str,
) -> None:
    (tmp_path / f"mlflow.db{leftover}").write_bytes(b"old transactions")
    assert not create_store_from_template(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:5000",
        "https://mlflow.example.com",
        "postgresql://u@host/db",
        "databricks",
        "sqlite:///:memory:",
        "sqlite://",
        "sqlite:///{tmp}/store.db?timeout=30",
        "file:///{tmp}/mlruns",
    ],
)
def test_anything_but_a_new_sqlite_file_is_left_to_mlflow(
    empty_cache: Path, tmp_path: Path, uri: str
) -> None:
    assert not create_store_from_template(uri.format(tmp=tmp_path))
    assert not empty_cache.exists(), "no template is made for a store it does not create"
    assert list(tmp_path.iterdir()) == []
