"""The MLflow UI in a real headless Chromium, opened with ``sweep ui`` on a real sweep's store.

Debian's ``/usr/bin/chromium`` is driven by Playwright (its own browser download does not
work offline). Screenshots are saved under ``test-artifacts/`` for a human to look at.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sweeps.ray_backend import RayBackend
from sweeps.runner.runner import RunOptions, run_sweep
from sweeps.spec.loading import load_spec
from sweeps.store.state import sweep_paths
from tests.conftest import small_spec
from tests.tracking.conftest import ARTIFACTS, free_port
from tests.tracking.contract import read_sweep

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def swept_store(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real digits sweep in the embedded store: a parent run and six nested trials."""
    import yaml

    folder = tmp_path_factory.mktemp("browser")
    spec = folder / "spec.yaml"
    # Two batch sizes, so the compare view shows curves of different lengths on one step
    # axis; three epochs, so every curve has at least three points.
    space = {
        "batch_size": {"type": "categorical", "values": [64, 128]},
        "epochs": 3,
        "learning_rate": {"type": "float", "low": 3e-3, "high": 3e-2, "log": True},
    }
    spec.write_text(
        yaml.safe_dump(
            small_spec(
                name="ui-sweep",
                storage=str(folder / "results"),
                seed=1,
                search_space=space,
                scheduler={"type": "none"},
            ),
            sort_keys=False,
        )
    )
    run_sweep(load_spec(spec, []), RunOptions(RayBackend(), live=False))
    return folder / "results"


@pytest.fixture(scope="module")
def sweep_ui(swept_store: Path) -> Iterator[str]:
    """``sweep ui --storage ... --port P`` as a user runs it; yields its printed address."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sweeps", "ui", "--storage", str(swept_store), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once the UI answers
        assert f"http://127.0.0.1:{port}" in line, line
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: `make system-deps`"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1600, "height": 1000},
        )
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        yield page
        browser.close()


def _close_assistant(page: Any) -> None:
    # MLflow 3 opens an "Assistant" side panel on a fresh profile; it hides half the page.
    close = page.get_by_role("button", name="Close")
    if close.count():
        close.first.click()


def _open_runs_list(page: Any, url: str, runs: int) -> None:
    """Open an experiment's runs list and wait until it has loaded all ``runs``, with no
    search of it still in flight.

    The UI searches the unfiltered list twice as it mounts, and it shows whichever answer
    comes last, even when that answer was asked before a filter typed since: a filter
    typed too early could end on the unfiltered list ("7 matching runs"), as a CI run did.
    A user types after the list is there; so does this.
    """
    in_flight: set[Any] = set()
    page.on("request", lambda request: in_flight.add(request) if "/runs/search" in request.url else None)
    page.on("requestfinished", lambda request: in_flight.discard(request))
    page.on("requestfailed", lambda request: in_flight.discard(request))
    page.goto(url)
    page.get_by_text(f"{runs} matching runs").wait_for()
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while in_flight and time.monotonic() < deadline:
        page.wait_for_timeout(100)  # lets Playwright deliver the requests' events
    assert not in_flight, f"searches still unanswered after {TIMEOUT_MS} ms: {in_flight}"


def _shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.mark.slow
def test_experiment_lists_the_parent_and_its_nested_trials(
    page: Any, sweep_ui: str, swept_store: Path
) -> None:
    record = read_sweep(sweep_paths(swept_store, "ui-sweep").embedded_tracking_uri, "ui-sweep")
    experiment = record.parent.info.experiment_id
    page.goto(f"{sweep_ui}/#/experiments/{experiment}/runs")
    parent_link = page.locator(f'a[href$="/runs/{record.parent.info.run_id}"]')
    parent_link.wait_for()
    _close_assistant(page)
    assert parent_link.inner_text() == "ui-sweep"
    # Trials are nested: hidden until the parent's row is expanded.
    first_child = page.locator(f'a[href$="/runs/{record.children[0].info.run_id}"]')
    assert first_child.count() == 0
    page.locator("[role=gridcell]", has=parent_link).locator("button").first.click()
    for child in record.children:
        link = page.locator(f'a[href$="/runs/{child.info.run_id}"]')
        link.wait_for()
        assert link.inner_text() == child.info.run_name
    assert len(record.children) == 6
    _shot(page, "mlflow_experiment.png")


@pytest.mark.slow
def test_the_search_box_filters_trials_by_their_tags_and_params(
    page: Any, sweep_ui: str, swept_store: Path
) -> None:
    record = read_sweep(sweep_paths(swept_store, "ui-sweep").embedded_tracking_uri, "ui-sweep")
    wanted = [r for r in record.children if r.data.params["batch_size"] == "64"]
    others = [r for r in record.children if r.data.params["batch_size"] != "64"]
    assert wanted and others
    _open_runs_list(
        page,
        f"{sweep_ui}/#/experiments/{record.parent.info.experiment_id}/runs",
        runs=len(record.children) + 1,
    )
    box = page.get_by_placeholder('metrics.rmse < 1 and params.model = "tree"')
    box.fill("tags.\"sweep.state\" = 'completed' and params.batch_size = '64'")
    box.press("Enter")
    page.get_by_text(f"{len(wanted) + 1} matching runs").wait_for()  # the trials and their parent
    _close_assistant(page)
    parent_link = page.locator(f'a[href$="/runs/{record.parent.info.run_id}"]')
    page.locator("[role=gridcell]", has=parent_link).locator("button").first.click()
    for run in wanted:
        page.locator(f'a[href$="/runs/{run.info.run_id}"]').wait_for()
    for run in others:
        # The count above can update before the grid drops its unfiltered rows: give them
        # the locator's timeout to go (it raises if a filtered-out run stays).
        page.locator(f'a[href$="/runs/{run.info.run_id}"]').wait_for(state="detached")
    _shot(page, "mlflow_filtered.png")


@pytest.mark.slow
def test_compare_view_charts_both_trials_on_the_step_axis(
    page: Any, sweep_ui: str, swept_store: Path
) -> None:
    record = read_sweep(sweep_paths(swept_store, "ui-sweep").embedded_tracking_uri, "ui-sweep")
    by_batch = {}
    for child in sorted(record.children, key=lambda r: r.info.run_name):
        by_batch.setdefault(child.data.params["batch_size"], child)
    assert set(by_batch) == {"64", "128"}, "the sweep should have tried both batch sizes"
    runs = list(by_batch.values())
    ids = urllib.parse.quote(json.dumps([r.info.run_id for r in runs]))
    experiments = urllib.parse.quote(json.dumps([record.parent.info.experiment_id]))
    page.goto(f"{sweep_ui}/#/compare-runs?runs={ids}&experiments={experiments}")
    page.get_by_text("Comparing 2 Runs").first.wait_for()
    _close_assistant(page)
    for run in runs:
        page.get_by_text(run.info.run_name).first.wait_for()
    _shot(page, "mlflow_compare_table.png")

    # From the compare view, open the chart of the sweep's metric.
    page.get_by_role("link", name="val_accuracy").first.click()
    card = page.locator('[data-testid="experiment-view-compare-runs-card"]').first
    traces = card.locator(".js-plotly-plot .scatterlayer .trace")
    try:
        traces.first.wait_for()
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while traces.count() < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert traces.count() >= 2, "one curve per compared trial"
        text = card.inner_text()
        for run in runs:  # the legend names both trials
            assert run.info.run_name in text
        # One axis for both batch sizes: optimizer iterations, logged as the step.
        assert card.locator(".xtitle").text_content() == "Step"
    finally:
        _shot(page, "mlflow_compare.png")
