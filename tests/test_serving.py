"""The served pipeline end to end against real servers on 127.0.0.1: a real `mlflow server` process whose
artifacts live on a real S3 API server (moto's: MinIO cannot be installed here), four `cardflow serve step`
processes loading registered versions through the registry loader, a `cardflow serve router` process over
them, and real HTTP clients — tritonclient (an independent V2 client) and plain HTTP. The tests share the
servers and run in file order (predictions, chaining, batching, reload, a step killed)."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from servers import S3_KEYS, free_port, register_champions, start_mlflow, start_s3, stop, wait_http

from steps.modelstore import ModelStore
from tests.conftest import REAL_DEV, ROOT

pytestmark = pytest.mark.slow
BUCKET = "cardflow-serving"
CONFIG = {"preprocess": "preprocess/channel:gray", "ocr": "ocr/tesseract:lstm-fast",
          "classify": "classify/tfidf-logreg:l2", "extract": "extract/mrz-first:v1"}
MODELS = {"preprocess": "channel", "ocr": "tesseract", "classify": "tfidf-logreg", "extract": "mrz-first"}
STEPS_SERVED = tuple(MODELS)
NEXT_CLASSIFIER = "classify/tfidf-logreg:l1"  # registered second: version 2 of cardflow.classify.tfidf-logreg
PASSPORT = REAL_DEV / "mrz_more" / "images" / "usa_passport_nelson_sample.jpg"


@dataclass
class Proc:
    url: str
    proc: subprocess.Popen
    args: list[str]
    log: Path
    env: dict

    @property
    def hostport(self) -> str:
        return self.url.removeprefix("http://")

    def restart(self) -> None:
        self.proc = subprocess.Popen(self.args, stdout=self.log.open("a"), stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True, cwd=ROOT)
        wait_http(f"{self.url}/v2/health/ready", 120, self.proc, self.log)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mlproject.cli", *args]


def _start(args: list[str], env: dict, log: Path, port: int) -> Proc:
    proc = subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
                            cwd=ROOT)
    server = Proc(f"http://127.0.0.1:{port}", proc, args, log, env)
    wait_http(f"{server.url}/v2/health/ready", 120, proc, log)
    return server


@pytest.fixture(scope="module")
def stack(trained_store: ModelStore, tmp_path_factory):
    """The registry (mlflow server + S3) with the configuration's variants registered and champion, the four
    step servers and the router, each a process of its own; the servers hold no S3 credentials."""
    from mlflow.tracking import MlflowClient

    work = tmp_path_factory.mktemp("serving")
    s3 = start_s3(work)
    s3.create_bucket(BUCKET)
    mlflow_server = start_mlflow(work, f"sqlite:///{work / 'mlflow.db'}", s3, BUCKET)
    env = {k: v for k, v in os.environ.items() if k not in {*S3_KEYS, "MLFLOW_S3_ENDPOINT_URL"}}
    env.update(MLFLOW_TRACKING_URI=mlflow_server.url, CARDFLOW_MODELS=str(trained_store.root),
               CARDFLOW_REGISTRY_CACHE=str(work / "registry-cache"))
    procs: list[Proc] = []
    registered = register_champions(mlflow_server.url, trained_store, list(CONFIG.values()), [NEXT_CLASSIFIER], env)
    client = MlflowClient(mlflow_server.url)
    try:
        steps = {}
        for step, model in MODELS.items():
            port = free_port()
            extra = ["--max-batch-delay-ms", "60"] if step == "classify" else []
            steps[step] = _start(_cli("serve", "step", "--step", step, "--model", model, "--alias", "champion",
                                      "--port", str(port), *extra), env, work / f"{step}.log", port)
            procs.append(steps[step])
        port = free_port()
        chain = ",".join(f"{step}={server.url}" for step, server in steps.items())
        router = _start(_cli("serve", "router", "--steps", chain, "--timeout-s", "20", "--port", str(port)), env,
                        work / "router.log", port)
        procs.append(router)
        yield {"steps": steps, "router": router, "env": env, "registered": registered, "work": work,
               "client": client}
    finally:
        for p in procs:
            stop(p.proc)
        stop(mlflow_server.proc)
        stop(s3.proc)


@pytest.fixture(scope="module")
def images(small_corpus: Path) -> list[Path]:
    """Three generated documents and a real passport."""
    return [*sorted((small_corpus / "clean" / "images").glob("*.png"))[:3], PASSPORT]


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _post(url: str, body: dict | bytes, headers: dict | None = None, timeout: float = 60) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _infer_url(server: Proc, name: str) -> str:
    return f"{server.url}/v2/models/{name}/infer"


def _request(paths: list[Path]) -> dict:
    return {"inputs": [{"name": "doc_id", "datatype": "BYTES", "shape": [len(paths)], "data": [p.stem for p in paths]},
                       {"name": "image_b64", "datatype": "BYTES", "shape": [len(paths)],
                        "data": [_b64(p) for p in paths]}]}


def _outputs(body: dict) -> dict[str, list]:
    return {t["name"]: t["data"] for t in body["outputs"]}


def _metric(server: Proc, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`, from the server's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


@pytest.fixture(scope="module")
def predicted(stack, images: list[Path], tmp_path_factory) -> dict[str, dict]:
    """`cardflow predict` on the same images with the same variants: {doc_id: prediction}."""
    out = tmp_path_factory.mktemp("predict") / "predictions.jsonl"
    config = " | ".join(vid.split("/", 1)[1] for vid in CONFIG.values())
    done = subprocess.run(_cli("predict", *map(str, images), "--out", str(out), "--config", config), env=stack["env"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return {row["doc_id"]: row for row in map(json.loads, out.read_text().splitlines())}


def _same_as_predict(outputs: dict[str, list], predicted: dict[str, dict]) -> None:
    assert set(outputs["doc_id"]) == set(predicted)
    for k, doc_id in enumerate(outputs["doc_id"]):
        want = predicted[doc_id]
        assert outputs["error"][k] == "", (doc_id, outputs["error"][k])
        assert json.loads(outputs["extraction_json"][k]) == want["extraction"], doc_id
        assert json.loads(outputs["classification_json"][k]) == want["classification"], doc_id


def test_metadata_and_health_validate_with_tritonclient(stack) -> None:
    import tritonclient.http as tc

    for step, server in stack["steps"].items():
        client = tc.InferenceServerClient(server.hostport)
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready(f"cardflow-{step}")
        meta = client.get_model_metadata(f"cardflow-{step}")
        assert meta["name"] == f"cardflow-{step}"
        assert meta["parameters"]["cardflow.model"] == f"cardflow.{step}.{MODELS[step]}"
        assert meta["parameters"]["cardflow.alias"] == "champion"
        assert meta["parameters"]["cardflow.variant"] == CONFIG[step]
        assert meta["versions"] == [meta["parameters"]["cardflow.version"]]
        assert all(t["datatype"] == "BYTES" and t["shape"] == [-1] for t in meta["inputs"] + meta["outputs"])
        assert [t["name"] for t in meta["inputs"]][:2] == ["doc_id", "image_b64" if step in ("preprocess", "ocr")
                                                          else "ocr_json"]
    router = tc.InferenceServerClient(stack["router"].hostport)
    meta = router.get_model_metadata("cardflow")
    assert {t["name"] for t in meta["outputs"]} >= {"doc_id", "extraction_json", "classification_json", "error"}
    with pytest.raises(tc.InferenceServerException, match="404|not"):
        router.get_model_metadata("cardflow-nope")


def test_each_step_through_tritonclient_and_the_router_equal_cardflow_predict(stack, images, predicted) -> None:
    import tritonclient.http as tc

    def infer(server: Proc, name: str, tensors: dict[str, list], binary: bool):
        client = tc.InferenceServerClient(server.hostport, network_timeout=120)
        inputs = []
        for tensor, values in tensors.items():
            item = tc.InferInput(tensor, [len(values)], "BYTES")
            item.set_data_from_numpy(np.array([v.encode() if isinstance(v, str) else v for v in values], dtype=object),
                                     binary_data=binary)
            inputs.append(item)
        names = [t["name"] for t in client.get_model_metadata(name)["outputs"]]
        result = client.infer(name, inputs, outputs=[tc.InferRequestedOutput(n, binary_data=binary) for n in names])
        as_text = {n: [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy(n).tolist()] for n in names}
        return as_text, result.get_response()

    tensors = {"doc_id": [p.stem for p in images], "image_b64": [_b64(p) for p in images]}
    for k, step in enumerate(stack["steps"]):  # JSON tensors (binary BYTES inputs: kserve reads no inference-header-content-length here, see the note)
        tensors, response = infer(stack["steps"][step], f"cardflow-{step}", tensors, binary=k % 2 == 0)
        assert response["parameters"]["cardflow.variant"] == CONFIG[step]
        assert response["parameters"]["cardflow.alias"] == "champion"
    _same_as_predict(tensors, predicted)

    by_router, response = infer(stack["router"], "cardflow", {"doc_id": [p.stem for p in images],
                                                              "image_b64": [_b64(p) for p in images]}, binary=True)
    _same_as_predict(by_router, predicted)
    steps = json.loads(response["parameters"]["cardflow.steps"])
    assert [s["step"] for s in steps] == list(CONFIG)
    assert all(s["alias"] == "champion" and s["latency_ms"] > 0 for s in steps)

    status, body = _post(_infer_url(stack["router"], "cardflow"), _request(images),
                         headers={"x-request-id": "req-42", "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"})
    assert status == 200, body
    _same_as_predict(_outputs(body), predicted)
    assert body["id"] == "req-42" and body["parameters"]["cardflow.request_id"] == "req-42"
    assert body["parameters"]["cardflow.traceparent"].startswith("00-" + "a" * 32)
    assert {s["request_id"] for s in json.loads(body["parameters"]["cardflow.steps"])} == {"req-42"}
    passport = _outputs(body)["doc_id"].index(PASSPORT.stem)
    assert json.loads(_outputs(body)["extraction_json"][passport])["fields"].get("document_number")  # a real MRZ read


def test_each_steps_response_posted_unchanged_is_the_next_steps_request(stack, images, predicted) -> None:
    """What a KServe InferenceGraph Sequence with `data: $response` does."""
    body = _request(images[:2])
    for step, server in stack["steps"].items():
        status, body = _post(_infer_url(server, f"cardflow-{step}"), body)
        assert status == 200, (step, body)
        assert "outputs" in body and "inputs" not in body
    _same_as_predict(_outputs(body), {k: v for k, v in predicted.items() if k in {p.stem for p in images[:2]}})


def test_bad_input_is_a_400_naming_the_tensor(stack, images) -> None:
    pre = stack["steps"]["preprocess"]
    url = _infer_url(pre, "cardflow-preprocess")
    cases = [
        ({"inputs": [{"name": "doc_id", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}, "image_b64"),
        ({"inputs": [{"name": "doc_id", "datatype": "BYTES", "shape": [1], "data": ["a"]},
                     {"name": "image_b64", "datatype": "BYTES", "shape": [1], "data": ["not base64!"]}]}, "image_b64"),
        ({"inputs": [{"name": "doc_id", "datatype": "BYTES", "shape": [1], "data": ["a"]},
                     {"name": "image_b64", "datatype": "BYTES", "shape": [1],
                      "data": [base64.b64encode(b"not an image").decode()]}]}, "image_b64"),
        ({"inputs": [{"name": "doc_id", "datatype": "FP32", "shape": [1], "data": [1.0]},
                     {"name": "image_b64", "datatype": "BYTES", "shape": [1], "data": [_b64(images[0])]}]}, "doc_id"),
        ({"inputs": "nope"}, "inputs"),
    ]
    for body, tensor in cases:
        status, answer = _post(url, body)
        assert status == 400 and tensor in answer["error"], (body, status, answer)
    status, answer = _post(url, b"{not json")
    assert status == 400 and "JSON" in answer["error"]
    status, answer = _post(_infer_url(pre, "cardflow-nope"), _request(images[:1]))
    assert status == 404 and "cardflow-nope" in answer["error"]
    status, answer = _post(_infer_url(stack["router"], "cardflow"), cases[2][0])  # through the router: still a 400
    assert status == 400 and "preprocess" in answer["error"] and "image_b64" in answer["error"]


def test_concurrent_requests_are_batched_and_a_bad_one_fails_alone(stack, images) -> None:
    classify = stack["steps"]["classify"]
    status, ocr = _post(_infer_url(stack["steps"]["ocr"], "cardflow-ocr"), _request(images))
    assert status == 200
    ocr_out = _outputs(ocr)
    singles = [{"inputs": [{"name": n, "datatype": "BYTES", "shape": [1], "data": [ocr_out[n][k]]}
                           for n in ("doc_id", "ocr_json", "text", "error")]} for k in range(len(images))]
    url = _infer_url(classify, "cardflow-classify")
    alone = [_post(url, body)[1] for body in singles]  # one at a time: batches of one
    batches_before = _metric(classify, "cardflow_batch_size_count")
    docs_before = _metric(classify, "cardflow_batch_size_sum")
    bad = {"inputs": [{"name": "doc_id", "datatype": "BYTES", "shape": [1], "data": ["bad"]},
                      {"name": "ocr_json", "datatype": "BYTES", "shape": [1], "data": ["{not json"]}]}
    requests = singles * 2 + [bad]
    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(lambda body: _post(url, body), requests))
    assert [s for s, _ in answers] == [200] * (len(requests) - 1) + [400]
    assert "ocr_json" in answers[-1][1]["error"]
    for (_, got), want in zip(answers, alone * 2, strict=False):
        assert _outputs(got)["classification_json"] == _outputs(want)["classification_json"]
    batches = _metric(classify, "cardflow_batch_size_count") - batches_before
    docs = _metric(classify, "cardflow_batch_size_sum") - docs_before
    assert docs == len(requests) - 1  # every good document once; the bad one never reached a batch
    assert batches < docs  # concurrent requests shared run(batch) calls
    assert max(int(a["parameters"]["cardflow.batch_size"]) for _, a in answers[:-1]) > 1


LABELS = {"__name__", "step", "model", "version", "alias", "code", "le", "outcome", "result", "job", "instance",
          "server"}
# Panels with data after a few requests through the router (the others read series that need errors or failures).
PANELS_WITH_DATA = {"Requests per second", "Servers up", "In-flight requests", "p95 latency vs budget",
                    "p50 / p99 latency", "SLA violations", "Each step as the router saw it (p95)", "Queue vs compute",
                    "Batch size", "MRZ check digits", "Confidence", "Fields and failures", "Served versions"}


def test_prometheus_scrapes_every_server_and_an_sla_breach_fires_its_alert(stack, images, tmp_path) -> None:
    """A real Prometheus with serving/monitoring's config and rules scrapes the four step servers and the router.
    The breach is real: classify's 60 ms batch window (the fixture's --max-batch-delay-ms) is over its 50 ms budget,
    so every lone classify request misses its SLA, and nothing else does."""
    from servers import start_prometheus

    from tests.test_monitoring import concrete, dashboard_queries

    servers = {**{step: p.hostport for step, p in stack["steps"].items()}, "router": stack["router"].hostport}
    prom = start_prometheus(tmp_path, servers)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            active = prom.api("targets")["activeTargets"]
            if len(active) == 5 and all(t["health"] == "up" for t in active):
                break
            time.sleep(0.5)
        assert sorted(t["labels"]["server"] for t in active if t["health"] == "up") == sorted(servers)
        url = _infer_url(stack["router"], "cardflow")
        classify_ms = []
        started = time.monotonic()
        while time.monotonic() - started < 6:  # lone requests across several scrapes
            status, answer = _post(url, _request(images[:1]))
            assert status == 200
            classify_ms.append(float(answer["parameters"]["cardflow.classify.latency_ms"]))
        assert min(classify_ms) > 50  # the breach the alert must see: every classify call over its 50 ms

        firing: list[dict] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not firing:
            firing = [a for a in prom.api("alerts")["alerts"]
                      if a["labels"]["alertname"] == "CardflowStepLatencyOverSLA" and a["state"] == "firing"]
            time.sleep(0.5)
        assert [a["labels"]["step"] for a in firing] == ["classify"], prom.api("alerts")
        assert firing[0]["labels"]["severity"] == "warning"
        assert float(firing[0]["value"]) > 0.05
        assert firing[0]["annotations"]["summary"] == "classify: p95 latency over its SLA budget"

        ok = prom.query('cardflow_requests_total{code="200"}')
        assert {s["metric"]["step"] for s in ok} == {*STEPS_SERVED, "pipeline"}
        for series in ok:
            if series["metric"]["step"] != "pipeline":
                assert series["metric"]["alias"] == "champion" and series["metric"]["version"].isdigit(), series
                assert series["metric"]["model"] == f"cardflow.{series['metric']['step']}." \
                                                   f"{MODELS[series['metric']['step']]}"
        info = {s["metric"]["step"]: s["metric"] for s in prom.query("cardflow_model_info == 1")}
        assert set(info) == set(STEPS_SERVED)
        budgets = {s["metric"]["step"]: float(s["value"][1]) for s in prom.query("step:cardflow_sla_budget_seconds:max")}
        assert budgets == {"preprocess": 0.25, "ocr": 2.5, "classify": 0.05, "extract": 0.4, "pipeline": 3.0}
        p95 = {s["metric"]["step"]: float(s["value"][1])
               for s in prom.query("step:cardflow_request_duration_seconds:p95_rate5m")}
        assert set(p95) == {*STEPS_SERVED, "pipeline"} and p95["classify"] > 0.05
        # low, fixed label sets: never a request or document id
        assert set(prom.api("labels", **{"match[]": '{__name__=~"cardflow_.+|step.*:cardflow_.+"}'})) <= LABELS

        empty = []
        for title, expr in dashboard_queries():
            result = prom.query(concrete(expr))  # every query is valid PromQL (status success)
            if title in PANELS_WITH_DATA and not result:
                empty.append((title, expr))
        assert not empty, f"dashboard panels with no data: {empty}"
    finally:
        stop(prom.proc)


def test_after_promote_and_reload_the_next_request_reports_the_new_version(stack, images) -> None:
    classify = stack["steps"]["classify"]
    url = _infer_url(classify, "cardflow-classify")
    new = next(e for e in stack["registered"] if e.variant_id == NEXT_CLASSIFIER)
    status, ocr = _post(_infer_url(stack["steps"]["ocr"], "cardflow-ocr"), _request(images[:1]))
    body = ocr  # the OCR server's response, as is
    status, before = _post(url, body)
    assert status == 200 and before["parameters"]["cardflow.version"] != str(new.version)

    done = subprocess.run(_cli("registry", "promote", new.name, "--version", str(new.version), "--force",
                               "--reason", "serving test: swap while serving"), env=stack["env"], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    results: list[tuple[int, str]] = []
    stop_flag = threading.Event()

    def hammer() -> None:
        while not stop_flag.is_set():
            code, answer = _post(url, body)
            results.append((code, answer.get("parameters", {}).get("cardflow.version", answer.get("error", ""))))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    reload = subprocess.run(_cli("serve", "reload", stack["router"].url), env=stack["env"], capture_output=True,
                            text=True, cwd=ROOT, timeout=300)
    time.sleep(0.5)
    stop_flag.set()
    for t in threads:
        t.join()
    assert reload.returncode == 0, reload.stderr[-3000:]
    assert f"version {before['parameters']['cardflow.version']} → {new.version}" in reload.stdout
    assert reload.stdout.count("(unchanged)") == 3  # the other steps keep their version
    assert results and all(code == 200 for code, _ in results), [r for r in results if r[0] != 200][:5]
    assert {v for _, v in results} <= {before["parameters"]["cardflow.version"], str(new.version)}
    assert results[-1][1] == str(new.version)
    status, after = _post(url, body)
    assert status == 200 and after["parameters"]["cardflow.version"] == str(new.version)
    assert after["parameters"]["cardflow.variant"] == NEXT_CLASSIFIER
    assert _metric(classify, "cardflow_model_info", version=str(new.version), alias="champion") == 1
    assert _metric(classify, "cardflow_model_info", version=before["parameters"]["cardflow.version"]) == 0


def test_a_killed_step_is_a_503_naming_it_then_served_again_after_restart(stack, images) -> None:
    ocr, router = stack["steps"]["ocr"], stack["router"]
    url = _infer_url(router, "cardflow")
    os.killpg(ocr.proc.pid, signal.SIGKILL)
    ocr.proc.wait(timeout=10)
    started = time.perf_counter()
    status, answer = _post(url, _request(images[:1]))
    seconds = time.perf_counter() - started
    assert status == 503, answer
    assert "step ocr" in answer["error"] and ocr.url in answer["error"]
    assert seconds < 20  # within the router's per-step timeout
    ocr.restart()
    status, answer = _post(url, _request(images[:1]))
    assert status == 200, answer
    assert _outputs(answer)["error"] == [""]
