"""The served chain against the in-process pipeline, in one run on the same documents and versions.

Registers the configuration's variants in a private local registry (sqlite, no server) and makes them champion,
then starts two stacks of `cardflow serve step` processes with a router each: adaptive batching on (up to 8
documents, the default window) and off (--max-batch-size 1); the OCR server gets every core (--threads), as the
in-process pool does. It measures, per document (one request = one document):

1. the in-process pipeline (`steps.runner.Pipeline`, one document at a time) vs the served chain (router, batching
   on) at 1, 4 and 8 concurrent clients: p50/p99 latency, throughput, and the serving overhead per request;
2. the compute limit: the in-process pool (one process per core, batches of the SLA's batch size) on the corpus;
3. how the preprocessed image should cross from preprocess to OCR (bench/wire_formats.py: PNG, BMP, UINT8 binary,
   UINT8 JSON through a real KServe server);
4. batching on vs off at 8 clients, per step (each step server fed the previous step's real responses) and end to
   end through the routers.

Every figure is measured here in this run; the ratios compare figures measured side by side. Needs trained
classifiers (`cardflow train`, or $CARDFLOW_MODELS). `make bench-serve`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the same process helpers the tests use
sys.path.insert(0, str(ROOT / "bench"))
CONFIG = "channel:gray | tesseract:lstm-fast | tfidf-logreg:l2 | mrz-first:v1"
STEPS = ("preprocess", "ocr", "classify", "extract")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _row(name: str, latencies_s: list[float], wall_s: float) -> dict:
    return {"what": name, "n": len(latencies_s), "p50_ms": 1000 * _pct(latencies_s, 0.5),
            "p99_ms": 1000 * _pct(latencies_s, 0.99), "docs_per_s": len(latencies_s) / wall_s}


def _clients(bodies: list[bytes], url: str, clients: int, steps: list | None = None) -> tuple[list[float], float]:
    """`clients` threads, each with a keep-alive connection, posting the bodies (round robin); every answer must
    be a 200. With `steps`, the router's per-step figures of every answer are appended to it."""
    import httpx

    latencies: list[float] = []
    lock = threading.Lock()
    queue = list(enumerate(bodies))

    def worker() -> None:
        with httpx.Client(timeout=120, headers={"content-type": "application/json"}) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    _, body = queue.pop()
                started = time.perf_counter()
                answer = client.post(url, content=body)
                seconds = time.perf_counter() - started
                if answer.status_code != 200:
                    raise RuntimeError(f"{url}: HTTP {answer.status_code}: {answer.text[:300]}")
                with lock:
                    latencies.append(seconds)
                    if steps is not None:
                        steps.append((seconds, json.loads(answer.json()["parameters"]["cardflow.steps"])))

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(worker) for _ in range(clients)]:
            future.result()
    return latencies, time.perf_counter() - started


_PIPELINE = None


def _pool_init(config_ids: dict[str, str]) -> None:
    global _PIPELINE
    from steps.catalog import Configuration, default_catalog
    from steps.runner import Pipeline

    _PIPELINE = Pipeline(Configuration(**config_ids), default_catalog())
    _PIPELINE.load()


def _pool_run(docs) -> float:
    started = time.perf_counter()
    _PIPELINE.run_batch(docs)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=16, help="documents (generated, clean; default 16)")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the documents per measurement (default 2)")
    args = parser.parse_args()

    from servers import free_port, stop, wait_http

    from corpus.generate import GenerateSpec, generate
    from corpus.loaders import load
    from registry.register import register_all
    from serving.up import configuration
    from serving.v2 import response_as_request
    from steps.modelstore import ModelStore
    from steps.runner import Pipeline, batched

    work = Path(tempfile.mkdtemp(prefix="cardflow-bench-serve-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    os.environ["CARDFLOW_REGISTRY_CACHE"] = str(work / "cache")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    spec, catalog, config = configuration(CONFIG)
    ids = config.as_dict()
    print(f"configuration {config.id}; {args.docs} generated documents; {os.cpu_count()} cores; work dir {work}")
    generate(GenerateSpec(work / "corpus", args.docs, 2027, ("clean",)), workers=2, progress=False)
    docs = list(load(work / "corpus"))[: args.docs]
    from mlflow.tracking import MlflowClient

    registered = register_all(catalog, ModelStore(), variant_ids=list(ids.values()))
    client = MlflowClient()
    for entry in registered:
        client.set_registered_model_alias(entry.name, "champion", entry.version)

    procs = []

    def start(args_: list[str], port: int, name: str):
        log = work / f"{name}.log"
        proc = subprocess.Popen([sys.executable, "-m", "serving", *args_, "--port", str(port)], stdout=log.open("w"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(proc)
        return proc, log, f"http://127.0.0.1:{port}"

    stacks: dict[str, dict[str, str]] = {}
    try:
        for mode, extra in (("on", ["--max-batch-size", "8"]), ("off", ["--max-batch-size", "1"])):
            urls = {}
            for step in STEPS:
                model = ids[step].split("/", 1)[1].split(":")[0]
                threads = ["--threads", str(os.cpu_count() or 1)] if step == "ocr" else []  # OCR: every core
                proc, log, url = start(["step", "--step", step, "--model", model, "--alias", "champion", *extra,
                                        *threads], free_port(), f"{step}-{mode}")
                urls[step] = url
                wait_http(f"{url}/v2/health/ready", 180, proc, log)
            chain = ",".join(f"{s}={u}" for s, u in urls.items())
            proc, log, url = start(["router", "--steps", chain], free_port(), f"router-{mode}")
            wait_http(f"{url}/v2/health/ready", 60, proc, log)
            stacks[mode] = {**urls, "router": url}

        bodies = [json.dumps({"inputs": [
            {"name": "doc_id", "datatype": "BYTES", "shape": [1], "data": [d.doc_id]},
            {"name": "image_b64", "datatype": "BYTES", "shape": [1],
             "data": [base64.b64encode(d.path.read_bytes()).decode()]}]}).encode() for d in docs]
        router = f"{stacks['on']['router']}/v2/models/cardflow/infer"
        _clients(bodies[:4], router, 1)  # warm-up (first batch of each variant in each server)
        _clients(bodies[:4], f"{stacks['off']['router']}/v2/models/cardflow/infer", 1)

        pipeline = Pipeline(config, catalog)
        pipeline.load()
        pipeline.run_batch(docs[:1])  # warm-up
        import wire_formats

        wire = wire_formats.measure([pipeline.trace([d]).pre[0].image for d in docs[:8]])
        rows: list[dict] = []
        inproc_steps: list[dict[str, float]] = []  # per document at 1 client: in-process step wall ms
        served_steps: list[tuple[float, list[dict]]] = []  # per request at 1 client: (seconds, router's per-step)
        for clients in (1, 4, 8):
            if clients == 1:
                latencies, started = [], time.perf_counter()
                for _ in range(args.rounds):
                    for doc in docs:
                        t = time.perf_counter()
                        trace = pipeline.trace([doc])
                        trace.outcomes()
                        latencies.append(time.perf_counter() - t)
                        inproc_steps.append(trace.latency_ms())
                rows.append(_row("in-process, 1 client", latencies, time.perf_counter() - started))
            else:
                with ProcessPoolExecutor(min(clients, os.cpu_count() or 1), initializer=_pool_init,
                                         initargs=(ids,)) as pool:
                    list(pool.map(_pool_run, [[d] for d in docs[:clients]]))  # load + warm-up
                    started = time.perf_counter()
                    latencies = list(pool.map(_pool_run, [[d] for d in docs * args.rounds]))
                    rows.append(_row(f"in-process pool ({min(clients, os.cpu_count() or 1)} proc), {clients} "
                                     "queued", latencies, time.perf_counter() - started))
            latencies, wall = _clients(bodies * args.rounds, router, clients, served_steps if clients == 1 else None)
            rows.append(_row(f"served chain, {clients} client(s)", latencies, wall))
        batch = spec.sla.batch_size
        with ProcessPoolExecutor(os.cpu_count() or 1, initializer=_pool_init, initargs=(ids,)) as pool:
            list(pool.map(_pool_run, [docs[:batch]] * (os.cpu_count() or 1)))
            started = time.perf_counter()
            times = list(pool.map(_pool_run, list(batched(docs * args.rounds, batch))))
            limit = len(docs) * args.rounds / (time.perf_counter() - started)
        rows.append({"what": f"compute limit: in-process pool, {os.cpu_count()} proc, batches of {batch}",
                     "n": len(docs) * args.rounds, "p50_ms": 1000 * _pct(times, 0.5) / batch,
                     "p99_ms": 1000 * _pct(times, 0.99) / batch, "docs_per_s": limit})

        # batching on vs off at 8 clients: each step fed the previous step's real responses
        import httpx

        inputs = {"preprocess": bodies}
        with httpx.Client(timeout=120, headers={"content-type": "application/json"}) as http:
            for k, step in enumerate(STEPS[:-1]):
                nxt = []
                for body in inputs[step]:
                    answer = http.post(f"{stacks['on'][step]}/v2/models/cardflow-{step}/infer", content=body)
                    answer.raise_for_status()
                    nxt.append(json.dumps(response_as_request(answer.json())).encode())
                inputs[STEPS[k + 1]] = nxt
        batching = []
        for step in (*STEPS, "router"):
            figures = {}
            for mode in ("on", "off"):
                name = "cardflow" if step == "router" else f"cardflow-{step}"
                url = f"{stacks[mode][step]}/v2/models/{name}/infer"
                feed = bodies if step == "router" else inputs[step]
                _clients(feed[:8], url, 8)
                latencies, wall = _clients(feed * args.rounds, url, 8)
                figures[mode] = _row(f"{step} batching {mode}", latencies, wall)
            batching.append((step, figures))
    finally:
        for proc in procs:
            stop(proc)

    print("\n| measured | requests | p50 ms | p99 ms | docs/s |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['what']} | {r['n']} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['docs_per_s']:.2f} |")
    inproc1, served1 = rows[0], rows[1]
    overhead = served1["p50_ms"] - inproc1["p50_ms"]
    best = max(r["docs_per_s"] for r in rows if r["what"].startswith("served"))
    print(f"\nserving overhead at 1 client: p50 {overhead:+.0f} ms per request, served/in-process p50 "
          f"{served1['p50_ms'] / inproc1['p50_ms']:.2f}x (target <= 1.05x)")
    print(f"served throughput at saturation {best:.2f} docs/s = {best / limit:.2f}x the in-process compute limit "
          f"{limit:.2f} docs/s (target >= 0.85x)")
    print("\nwhere the time goes at 1 client (medians over the requests, ms): the router's call to each step = the "
          "step server's compute + its queue + the rest (HTTP, JSON, tensor codec, image decode)")
    print("| step | in-process | served: router→step call | compute | queue | rest of the call | call − in-process |")
    print("|---|---|---|---|---|---|---|")
    for k, step in enumerate(STEPS):
        calls = [s[k] for _, s in served_steps]
        call, compute = _pct([c["latency_ms"] for c in calls], 0.5), _pct([float(c["compute_ms"]) for c in calls], 0.5)
        queue = _pct([float(c["queue_ms"]) for c in calls], 0.5)
        inproc = _pct([d[step] for d in inproc_steps], 0.5)
        print(f"| {step} | {inproc:.1f} | {call:.1f} | {compute:.1f} | {queue:.1f} | {call - compute - queue:.1f} | "
              f"{call - inproc:+.1f} |")
    router_own = _pct([1000 * sec - sum(c["latency_ms"] for c in s) for sec, s in served_steps], 0.5)
    print(f"| router (client→router→client, outside the step calls) | | {router_own:.1f} | | | {router_own:.1f} | "
          f"{router_own:+.1f} |")
    wire_formats.print_table(wire)
    print("\n| 8 clients | batching on: p50 ms | docs/s | batching off: p50 ms | docs/s | on/off throughput |")
    print("|---|---|---|---|---|---|")
    for step, f in batching:
        print(f"| {step} | {f['on']['p50_ms']:.0f} | {f['on']['docs_per_s']:.2f} | {f['off']['p50_ms']:.0f} | "
              f"{f['off']['docs_per_s']:.2f} | {f['on']['docs_per_s'] / f['off']['docs_per_s']:.2f}x |")
    print("(targets: classify on/off >= 2x at 8 clients)")
    print(f"\nlogs and registry kept in {work}")


if __name__ == "__main__":
    main()
