"""`cardflow sweep --executor ray` on a real local Ray cluster (`ray start --head` on 127.0.0.1, two CPUs): the
runs, metrics and predictions equal the local process pool's; a Ray worker killed mid-sweep has its task retried
and the sweep still ends with exactly one run per configuration × distribution; bad executor parameters are
errors naming the parameter.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from corpus.generate import GenerateSpec, generate
from steps.modelstore import ModelStore
from tests.conftest import ROOT
from tests.servers import free_port
from tests.test_sweep import _cli, _client, _predictions, _runs

RAY = Path(sys.executable).with_name("ray")
GRID = {"preprocess": "channel:gray,channel:red", "ocr": "tesseract:lstm-fast",
        "classify": "tfidf-logreg:l2,keywords:l2", "extract": "mrz-first:v1"}
LATENCY = ("latency", "throughput", "cpu_", "peak_rss", "load.", "sla_", "sla.", "step.", "warmup")  # timing-derived


def _sweep(corpus: Path, root: Path, name: str, *extra: str) -> list[str]:
    args = ["sweep", "--corpus", str(corpus), "--batch-size", "2", "--name", name, "--reports", str(root / "reports"),
            "--latency-repeats", "0", *extra]
    for step, value in GRID.items():
        args += [f"--{step}", value]
    return args


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory, trained_store: ModelStore):
    """A Ray head on 127.0.0.1 with 2 CPUs, its workers seeing the session's model store; a corpus of 4 documents
    × clean, phone."""
    root = tmp_path_factory.mktemp("ray")
    corpus = root / "corpus"
    generate(GenerateSpec(corpus, 4, 11, ("clean", "phone")), workers=1, progress=False)
    port = free_port()
    env = {**os.environ, "CARDFLOW_MODELS": str(trained_store.root), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    started = subprocess.run([str(RAY), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                              "--num-cpus", "2", "--include-dashboard=false", "--disable-usage-stats",
                              "--temp-dir", str(root / "ray")], capture_output=True, text=True, env=env, timeout=180)
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
    try:
        yield {"root": root, "corpus": corpus, "address": f"127.0.0.1:{port}", "env": env}
    finally:
        subprocess.run([str(RAY), "stop", "--force"], capture_output=True, env=env, timeout=120)


def _env(cluster: dict, name: str) -> dict:
    return {**cluster["env"], "MLFLOW_TRACKING_URI": f"sqlite:///{cluster['root'] / f'{name}.db'}"}


def _by_key(client) -> dict[tuple[str, str], object]:
    runs = _runs(client, "config-run")
    keyed = {(r.data.params["config_id"], r.data.params["distribution"]): r for r in runs}
    assert len(keyed) == len(runs), "two runs for one configuration × distribution"
    return keyed


def _same_results(local_client, ray_client) -> None:
    local, remote = _by_key(local_client), _by_key(ray_client)
    assert set(local) == set(remote) and len(local) == 8  # 2 × 1 × 2 × 1 configurations × 2 distributions
    for key, run in local.items():
        other = remote[key]
        quality = {k: v for k, v in run.data.metrics.items() if not k.startswith(LATENCY)}
        assert quality and "accuracy" in quality
        assert quality == {k: other.data.metrics[k] for k in quality}, key
        assert _predictions(local_client, run) == _predictions(ray_client, other), key
        assert other.data.params["executor"] == "ray" and run.data.params["executor"] == "local"


@pytest.mark.slow
def test_ray_sweep_equals_the_local_pool(ray_cluster) -> None:
    root, corpus = ray_cluster["root"], ray_cluster["corpus"]
    local_env, ray_env = _env(ray_cluster, "local"), _env(ray_cluster, "ray")
    local = _cli(*_sweep(corpus, root, "pool", "--workers", "2"), env=local_env)
    assert local.returncode == 0, local.stderr[-3000:]
    ray_run = _cli(*_sweep(corpus, root, "ray", "--executor", "ray", "--ray-address", ray_cluster["address"]),
                   env=ray_env)
    assert ray_run.returncode == 0, ray_run.stderr[-3000:]
    assert "Ray cluster at 127.0.0.1:" in ray_run.stdout and "1 node(s), 2 CPUs" in ray_run.stdout
    assert "sweep: 8 runs logged, 0 already finished" in ray_run.stdout
    _same_results(_client(local_env), _client(ray_env))
    parent = _runs(_client(ray_env), "sweep")[0]
    assert parent.data.params["executor"] == "ray" and parent.data.params["ray_address"] == ray_cluster["address"]
    assert parent.data.params["workers"] == "2"  # the cluster's CPUs


def _evaluating_workers() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if cmdline.startswith("ray::evaluate_remote"):
            found.append(proc)
    return found


@pytest.mark.slow
def test_a_ray_worker_killed_mid_sweep_is_retried_and_nothing_is_lost(ray_cluster) -> None:
    root, corpus = ray_cluster["root"], ray_cluster["corpus"]
    env = _env(ray_cluster, "killed")
    proc = subprocess.Popen([sys.executable, "-m", "mlproject.cli", *_sweep(
        corpus, root, "killed", "--executor", "ray", "--ray-address", ray_cluster["address"])],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.monotonic() + 240
    while killed is None and time.monotonic() < deadline and proc.poll() is None:
        workers = _evaluating_workers()
        if workers:
            time.sleep(0.5)  # mid-task: its model is loaded and it is computing
            try:
                workers[0].send_signal(signal.SIGKILL)
                killed = workers[0].pid
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.1)
    out, err = proc.communicate(timeout=600)
    assert killed is not None, "no Ray worker was seen running a task"
    assert proc.returncode == 0, err[-3000:]
    assert "sweep: 8 runs logged, 0 already finished" in out
    client = _client(env)
    runs = _by_key(client)  # exactly one run per configuration × distribution
    assert len(runs) == 8 and all(r.info.status == "FINISHED" for r in runs.values())
    pool_env = _env(ray_cluster, "local")
    if not _runs(_client(pool_env), "config-run"):  # this test alone: the local pool's runs to compare with
        local = _cli(*_sweep(corpus, root, "pool", "--workers", "2"), env=pool_env)
        assert local.returncode == 0, local.stderr[-3000:]
    _same_results(_client(pool_env), client)


def test_bad_executor_parameters_name_the_parameter(ray_cluster, tmp_path: Path) -> None:
    env = _env(ray_cluster, "bad")
    corpus = ray_cluster["corpus"]
    wrong = _cli(*_sweep(corpus, tmp_path, "bad", "--executor", "spark"), env=env)
    assert wrong.returncode == 2 and "parameter executor: 'spark' is not one of local, ray" in wrong.stderr
    stray = _cli(*_sweep(corpus, tmp_path, "bad", "--ray-address", "127.0.0.1:1"), env=env)
    assert stray.returncode == 2 and "parameter ray_address" in stray.stderr and "only used with executor ray" in \
        stray.stderr
    nowhere = _cli(*_sweep(corpus, tmp_path, "bad", "--executor", "ray", "--ray-address", f"127.0.0.1:{free_port()}"),
                   env=env, timeout=300)
    assert nowhere.returncode != 0 and "Traceback" not in nowhere.stderr
    assert "parameter ray_address: cannot join a Ray cluster at 127.0.0.1:" in nowhere.stderr
    # Ray missing: a clear error saying how to install it (Ray hidden from this interpreter by sitecustomize)
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['ray'] = None\n")
    missing = _cli(*_sweep(corpus, tmp_path, "bad", "--executor", "ray"),
                   env={**env, "PYTHONPATH": f"{hide}{os.pathsep}{env.get('PYTHONPATH', '')}"})
    assert missing.returncode == 2 and "needs Ray, which is not installed" in missing.stderr
    assert "pip install 'cardflow[ray]'" in missing.stderr


def test_without_an_address_the_sweep_joins_the_cluster_ray_start_runs_here(ray_cluster) -> None:
    """As ray.init() does: a cluster `ray start` left on this machine is joined, not refused for num_cpus."""
    env = _env(ray_cluster, "joined")
    args = ["sweep", "--corpus", str(ray_cluster["corpus"]), "--batch-size", "2", "--name", "joined",
            "--reports", str(ray_cluster["root"] / "reports"), "--latency-repeats", "0", "--executor", "ray",
            "--preprocess", "channel:gray", "--ocr", "tesseract:lstm-fast", "--classify", "keywords:l2",
            "--extract", "mrz-first:v1"]
    out = _cli(*args, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    port = ray_cluster["address"].rsplit(":", 1)[1]
    assert re.search(rf"Ray cluster at [\d.]+:{port}: 1 node\(s\), 2 CPUs", out.stdout), out.stdout[-2000:]
    assert "sweep: 2 runs logged" in out.stdout


@pytest.mark.slow
def test_a_profile_on_ray_runs_cells_side_by_side_on_cpus_of_their_own(ray_cluster) -> None:
    """`cardflow profile --executor ray`: one task per cell asking for its cores; two 1-core cells run at once on
    the 2-CPU node, each on a CPU the other does not hold; a 4-core cell gets the node's 2 and is oversubscribed."""
    env = _env(ray_cluster, "profile")
    args = ["profile", "--corpus", str(ray_cluster["corpus"]), "--distributions", "clean,phone", "--step", "ocr",
            "--versions", "tesseract:lstm-fast", "--cores", "1,4", "--batch-sizes", "1,2", "--min-batches", "2",
            "--latency-repeats", "0", "--load", "1", "--name", "on-ray",
            "--reports", str(ray_cluster["root"] / "reports"), "--executor", "ray",
            "--ray-address", ray_cluster["address"]]
    out = _cli(*args, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "1 node(s), 2 CPUs; the largest node has 2" in out.stdout
    client = _client(env)
    experiment = client.get_experiment_by_name("cardflow-profile")
    parent = client.search_runs([experiment.experiment_id], "tags.`cardflow.kind` = 'profile'")
    assert len(parent) == 1 and parent[0].info.status == "FINISHED"
    assert parent[0].data.params["executor"] == "ray" and parent[0].data.params["ray_address"] == \
        ray_cluster["address"]
    cells = client.search_runs([experiment.experiment_id], "tags.`cardflow.kind` = 'profile-cell'")
    assert sorted((r.data.params["cores"], r.data.params["batch_size"]) for r in cells) == [
        (c, b) for c in ("1", "4") for b in ("1", "2")]
    for run in cells:
        cores, cpus = int(run.data.params["cores"]), run.data.params["cpus"].split(",")
        assert len(cpus) == min(cores, 2) and run.data.params["node"] == os.uname().nodename
        assert run.data.metrics["oversubscribed"] == (1.0 if cores == 4 else 0.0)
        assert run.data.metrics["documents"] > 0 and run.data.metrics["throughput_docs_s"] > 0
        assert run.info.end_time > run.info.start_time  # the run spans the cell's measured work
    spans = [(r.info.start_time, r.info.end_time, set(r.data.params["cpus"].split(","))) for r in cells]
    overlapping = [(a, b) for i, a in enumerate(spans) for b in spans[i + 1:] if a[0] < b[1] and b[0] < a[1]]
    assert overlapping, "no two cells ran at once on the 2-CPU cluster"
    assert all(not (a[2] & b[2]) for a, b in overlapping), "two cells running at once shared a CPU"
    assert (ray_cluster["root"] / "reports" / "on-ray" / "report.md").exists()
