"""The registry against real servers on 127.0.0.1: how many models and versions the catalog makes, their
size, the time to register them all and to re-register (nothing new), and each model's cold load
(download + verify + build + load) against its warm load (verified cache) measured side by side.

Starts moto's S3 API server and an `mlflow server` (sqlite backend, S3 artifact destination) of its own
and stops them at the end. Needs trained classifiers in the model store (`cardflow train`) or
$CARDFLOW_MODELS pointing at a store that has them. Run with `make bench-registry`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the same real servers the tests start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="warm loads per model (default 3; the median is shown)")
    args = parser.parse_args()

    from servers import S3_KEYS, start_mlflow, start_s3, stop

    from registry.loader import Loader
    from registry.register import register_all
    from steps.catalog import default_catalog
    from steps.modelstore import ModelStore
    from steps.spec import load_spec

    work = Path(tempfile.mkdtemp(prefix="cardflow-bench-registry-"))
    for key in [*S3_KEYS, "MLFLOW_S3_ENDPOINT_URL"]:
        os.environ.pop(key, None)  # the client holds no S3 credentials: the server proxies artifacts
    s3 = start_s3(work)
    server = None
    try:
        s3.create_bucket("cardflow-bench")
        started = time.perf_counter()
        server = start_mlflow(work, f"sqlite:///{work / 'mlflow.db'}", s3, "cardflow-bench")
        print(f"mlflow server up in {time.perf_counter() - started:.1f} s at {server.url} (artifacts: S3 at {s3.url})")
        os.environ["MLFLOW_TRACKING_URI"] = server.url
        store = ModelStore()
        catalog = default_catalog(store)
        default = load_spec(catalog).default.as_dict()

        started = time.perf_counter()
        first = register_all(catalog, store, default=default)
        register_s = time.perf_counter() - started
        started = time.perf_counter()
        second = register_all(catalog, store, default=default)
        again_s = time.perf_counter() - started

        models: dict[str, list] = {}
        for entry in first:
            models.setdefault(entry.name, []).append(entry)
        total = sum(e.bytes for e in first)
        print(f"\n{len(catalog)} variants -> {len(models)} registered models, {len(first)} versions, "
              f"{total / 1e6:.1f} MB of model files (artifacts in S3)")
        print(f"register all: {register_s:.1f} s ({register_s / len(first):.2f} s per version); "
              f"again with nothing changed: {again_s:.2f} s, {sum(e.new for e in second)} new versions")

        loader = Loader(server.url, work / "cache")
        print(f"\n{'registered model':<34} {'ver.':>4} {'MB':>6} {'cold s':>7} {'warm s':>7} {'cold/warm':>9}")
        cold_all, warm_all = [], []
        for name, entries in sorted(models.items()):
            largest = max(entries, key=lambda e: e.bytes)
            _, step, model = name.split(".", 2)
            started = time.perf_counter()
            cold = loader.load(step, model, version=largest.version).registered
            cold_s = time.perf_counter() - started
            assert cold.origin == "download", cold.origin
            warm = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                variant = loader.load(step, model, version=largest.version)
                warm.append(time.perf_counter() - started)
                assert variant.registered.origin == "cache"
            warm_s = statistics.median(warm)
            cold_all.append(cold_s)
            warm_all.append(warm_s)
            print(f"{name:<34} {largest.version:>4} {largest.bytes / 1e6:6.1f} {cold_s:7.2f} {warm_s:7.2f} "
                  f"{cold_s / warm_s:8.1f}x   ({largest.variant_id})")
        print(f"\ncold loads: median {statistics.median(cold_all):.2f} s, max {max(cold_all):.2f} s; "
              f"warm loads: median {statistics.median(warm_all):.2f} s, max {max(warm_all):.2f} s")
    finally:
        if server is not None:
            stop(server.proc)
        stop(s3.proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
