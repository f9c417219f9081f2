"""`sweep report`: a static HTML report, opened in real headless Chromium, offline."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from sweeps.analysis.plots import ALL_PLOTS
from sweeps.analysis.report import write_report
from sweeps.cli import main
from tests.analysis.conftest import FinishedSweep

pytestmark = pytest.mark.slow

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


@pytest.fixture(scope="module")
def report(finished_sweep: FinishedSweep, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("report")
    code = main(
        ["report", finished_sweep.name, "--storage", str(finished_sweep.storage), "--output", str(output)]
    )
    assert code == 0
    return output / "index.html"


def test_the_report_is_an_html_file_with_every_png_beside_it(report: Path) -> None:
    for stem, _, _ in ALL_PLOTS:
        png = report.parent / f"{stem}.png"
        assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000
    text = report.read_text()
    # Offline: nothing is fetched from anywhere, no script at all.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text) and "<script" not in text


def test_chromium_loads_every_image_and_shows_the_tables(report: Path, sweep_data: Any) -> None:
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.goto(report.as_uri())
            page.wait_for_load_state("load")
            images = page.evaluate(
                "Array.from(document.images).map(i => ({src: i.getAttribute('src'), complete: i.complete,"
                " width: i.naturalWidth, height: i.naturalHeight}))"
            )
            tables = {
                table_id: page.evaluate(
                    f"Array.from(document.querySelectorAll('#{table_id} tbody tr')).map("
                    "r => Array.from(r.cells).map(c => c.textContent))"
                )
                for table_id in ("states", "best-trials", "budget", "all-trials")
            }
            headers = page.evaluate(
                "Array.from(document.querySelectorAll('#best-trials th')).map(c => c.textContent)"
            )
        finally:
            browser.close()
    assert [i["src"] for i in images] == [f"{stem}.png" for stem, _, _ in ALL_PLOTS]
    assert all(i["complete"] and i["width"] > 0 and i["height"] > 0 for i in images), images
    assert all(url.startswith("file://") for url in requests), requests
    best = sweep_data.best()
    assert tables["best-trials"][0][0] == best["trial_id"]
    assert headers[:5] == ["trial", "state", "batch_size", "epochs", "learning_rate"]
    assert len(tables["all-trials"]) == len(sweep_data.trials)
    budget = {row[0]: row[1] for row in tables["budget"]}
    assert budget["iterations used (all trials)"] == f"{sweep_data.budget()['iterations_used']:,.0f}"
    assert budget["expected by `sweep plan` under ASHA"] == f"{sweep_data.plan.expected_iterations:,.0f}"
    assert sum(int(n) for n in tables["states"][0]) == len(sweep_data.trials)


def test_the_default_output_is_the_sweeps_folder(finished_sweep: FinishedSweep, capsys: Any) -> None:
    assert main(["report", finished_sweep.name, "--storage", str(finished_sweep.storage)]) == 0
    expected = finished_sweep.storage / finished_sweep.name / "report" / "index.html"
    assert expected.is_file()
    assert str(expected) in capsys.readouterr().out.replace("\n", "")


def test_an_unwritable_output_exits_2(finished_sweep: FinishedSweep, tmp_path: Path, capsys: Any) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(
        [
            "report",
            finished_sweep.name,
            "--storage",
            str(finished_sweep.storage),
            "--output",
            str(blocker / "report"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "cannot be created" in err and "Traceback" not in err


def test_a_report_of_a_running_sweep_says_it_is_a_snapshot(
    finished_sweep: FinishedSweep, tmp_path: Path, capsys: Any
) -> None:
    """The parent run is RUNNING while the driver runs: the header says the report is a snapshot."""
    from mlflow.tracking import MlflowClient

    from sweeps.analysis import load

    data = load(finished_sweep.name, storage=finished_sweep.storage)
    assert not data.running
    finished_html = (write_report(data, tmp_path / "finished")).read_text()
    assert "Snapshot of a sweep still running" not in finished_html
    client = MlflowClient(data.tracking_uri)
    status = client.get_run(data.parent_run_id).info.status
    client.update_run(data.parent_run_id, status="RUNNING")
    try:
        assert (
            main(
                [
                    "report",
                    finished_sweep.name,
                    "--storage",
                    str(finished_sweep.storage),
                    "--output",
                    str(tmp_path / "running"),
                ]
            )
            == 0
        )
    finally:
        client.update_run(data.parent_run_id, status=status)
    out = " ".join(capsys.readouterr().out.split())
    assert "(a snapshot: the sweep is still running)" in out
    html = (tmp_path / "running" / "index.html").read_text()
    assert f"Snapshot of a sweep still running</strong>: the {len(data.trials)} trials started so far" in html
