"""The MLflow UI opens CardFlow's runs where the README says it does ("Comparing configurations in the
MLflow UI"): a real `mlflow server` on 127.0.0.1 with a tmp SQLite store, an experiment made by
`tracking.edge.experiment_id` holding a sweep parent and one nested run, and the pages loaded in headless
Chromium (Debian's `chromium`, installed by `make system-deps`), each in a fresh browser profile, their
DOM read after a virtual-time budget.

What MLflow 3.17.2's UI does (read in its bundled JavaScript, seen in the browser): the landing page of
an experiment follows the sidebar's GenAI / Model training switch (`?workflowType=` in the URL, else the
browser's remembered choice, else GenAI), not the experiment's `mlflow.experimentKind` tag. So a fresh
browser opens `#/experiments/<id>` on the GenAI overview whatever the tag, and the README links to
`#/experiments/<id>/runs?...`, which opens the runs table with the search filter and sort it carries."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from servers import free_port, stop, wait_http

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1600,1000"]
NESTED = "channel:gray | tesseract:lstm-fast | tfidf-logreg:l2 | mrz-first:v1 @ clean"
PARENT = "ui-test-sweep"
# the README's link: configuration runs only (not the sweep parents), best accuracy first
RUNS_VIEW = ("searchFilter=" + urllib.parse.quote("tags.cardflow.kind = 'config-run'")
             + "&orderByKey=" + urllib.parse.quote("metrics.`accuracy`") + "&orderByAsc=false")


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium() -> str:
    found = chromium_path()
    if not found:
        pytest.fail("headless Chromium not found (Debian package `chromium`): run `make system-deps`", pytrace=False)
    return found


def dump_dom(url: str, work: Path) -> str:
    """The page's DOM after 8 s of virtual time, in a browser profile of its own (nothing remembered)."""
    profile = tempfile.mkdtemp(prefix="chromium-", dir=work)
    done = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=8000",
                           "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "<html" in done.stdout, f"chromium failed on {url}:\n{done.stderr[-2000:]}"
    Path(profile + ".html").write_text(done.stdout)  # kept beside the profile, for a look after a failure
    return done.stdout


def dump_doms(urls: list[str], work: Path) -> list[str]:
    """dump_dom for several pages, two browsers at a time."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda url: dump_dom(url, work), urls))


def page_kind(dom: str) -> str:
    runs = "matching run" in dom and 'data-testid="experiment-view-runs-visibility-column-header"' in dom
    genai = "Tokens per Trace" in dom or "Token Usage" in dom
    assert not (runs and genai), "the page shows both the runs table and the GenAI overview"
    return "runs" if runs else "genai-overview" if genai else "other"


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory):
    """`mlflow server` on a free loopback port (artifacts under its working folder), with experiment
    `cardflow-sweep` made as CardFlow makes it and an untagged one beside it, each with a sweep parent and
    one nested configuration run."""
    from mlflow import MlflowClient

    from tracking.edge import EXPERIMENT_TAGS, experiment_id

    if chromium_path() is None:  # each test then fails, naming `make system-deps`; no server started
        yield None
        return
    work = tmp_path_factory.mktemp("mlflow-ui")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no huey job consumers: the UI needs none
    log = work / "mlflow.log"
    proc = subprocess.Popen([str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1",
                             "--port", str(port), "--backend-store-uri", f"sqlite:///{work}/mlflow.db",
                             "--workers", "1"], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True, cwd=work)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", 90, proc, log)
        client = MlflowClient(url)
        tagged = experiment_id(client, "cardflow-sweep")
        kind = EXPERIMENT_TAGS["mlflow.experimentKind"]
        assert client.get_experiment(tagged).tags.get("mlflow.experimentKind") == kind
        untagged = client.create_experiment("untagged")
        for exp in (tagged, untagged):
            parent = client.create_run(exp, run_name=PARENT, tags={"cardflow.kind": "sweep",
                                                                   "mlflow.note.content": "1 run"})
            nested = client.create_run(exp, run_name=NESTED, tags={
                "mlflow.parentRunId": parent.info.run_id, "cardflow.kind": "config-run",
                "cardflow.distribution": "clean", "mlflow.note.content": "accuracy 97.7%"})
            client.log_param(nested.info.run_id, "distribution", "clean")
            client.log_metric(nested.info.run_id, "accuracy", 0.977)
            client.log_metric(nested.info.run_id, "latency_ms.p95", 812.7)
            client.set_terminated(nested.info.run_id)
            client.set_terminated(parent.info.run_id)
        yield {"url": url, "tagged": tagged, "untagged": untagged, "work": work}
    finally:
        stop(proc)


def test_readme_runs_link_opens_the_runs_table(ui):
    chromium()
    link = f"{ui['url']}/#/experiments/{ui['tagged']}/runs?{RUNS_VIEW}"
    dom, charts = dump_doms([link, link + "&compareRunsMode=CHART"], ui["work"])
    assert page_kind(dom) == "runs", "the README's runs link did not open the runs table"
    assert NESTED in dom, "the nested configuration run is not listed"
    assert PARENT not in dom, "the search filter carried by the link was not applied (the sweep parent is listed)"
    assert page_kind(charts) == "runs" and "Add chart" in charts, "compareRunsMode=CHART did not open the chart view"


def test_experiment_page_follows_the_workflow_switch_not_the_tag(ui):
    """The plain experiment link opens the GenAI overview in a fresh browser, tagged or not (hence the
    README's /runs links); `?workflowType=machine_learning` opens the runs table."""
    chromium()
    base = f"{ui['url']}/#/experiments"
    tagged, untagged, ml = dump_doms([f"{base}/{ui['tagged']}", f"{base}/{ui['untagged']}",
                                      f"{base}/{ui['tagged']}?workflowType=machine_learning"], ui["work"])
    for exp, plain in ((ui["tagged"], tagged), (ui["untagged"], untagged)):
        assert page_kind(plain) == "genai-overview", (
            f"#/experiments/{exp} no longer opens on the GenAI overview in a fresh browser: MLflow's UI changed "
            "(does it honour mlflow.experimentKind now?); update the README section and this test")
    assert page_kind(ml) == "runs" and PARENT in ml, "workflowType=machine_learning did not open the runs table"
