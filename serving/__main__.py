"""`python -m serving` (what `cardflow serve` runs): the serving commands, each a process of its own.

    python -m serving step --step ocr --model tesseract --alias champion [--port 8080]
    python -m serving router --steps preprocess=URL,ocr=URL,classify=URL,extract=URL
    python -m serving reload [URL ...]          # after `cardflow registry promote`: swap to the new champion
    python -m serving up [--port 8080]          # the whole local stack: four step servers, router, Prometheus
    python -m serving overlay --profile RUN --out DIR   # the profile's recommended plan as a kustomize overlay

Exit status: 0 after a clean stop (Ctrl-C / SIGTERM), and for an error the one error table's (common/errors.py):
2 for an unknown model, version or alias, 4 when the registry (or a server to reload) is unreachable with no
verified cached copy, 3 when `serve up` finds a gate refusing the version it would serve; `serve up` exits 1 when a
server dies on its own (the stack stops).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from common.errors import CardflowError, outcome
from steps.base import STEPS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cardflow serve", description="Serve registered versions (MLflow Model "
                                     "Registry) with KServe, one server per step.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    st = sub.add_parser("step", help="one step server: a registered version behind V2 (/v2/models/cardflow-<step>)",
                        description="Load a registered version through the registry loader (verified, cached; the "
                                    "verified cache with a warning when the registry is unreachable) and serve it over "
                                    "the Open Inference Protocol (V2) REST with adaptive batching and Prometheus "
                                    "metrics at /metrics, until Ctrl-C.")
    st.add_argument("--step", required=True, choices=STEPS, help="the step to serve")
    st.add_argument("--model", required=True, help="the step's model: tesseract or cardflow.ocr.tesseract")
    which = st.add_mutually_exclusive_group(required=True)
    which.add_argument("--alias", help="serve the version this alias names, e.g. champion")
    which.add_argument("--version", help="serve this version number")
    which.add_argument("--model-dir", help="serve the version packaged in this folder (a modelcar's /models, "
                                           "`cardflow registry image`), each file checked against its manifest")
    st.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; the container uses 0.0.0.0)")
    st.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    st.add_argument("--max-batch-size", type=int, help="documents per run(batch) call (default: the SLA's batch size)")
    st.add_argument("--max-batch-delay-ms", type=float, default=0.0,
                    help="how long the first waiting request waits for batch-mates (default 0: a batch is what "
                         "queued up while the previous one ran)")
    st.add_argument("--max-request-mb", type=float, default=32.0, help="largest request body, MB (default 32)")
    st.add_argument("--max-pixels", type=int, default=40_000_000, help="largest image, pixels (default 40,000,000)")
    st.add_argument("--threads", type=int, default=1, help="threads the variant uses on a batch (default 1)")
    rt = sub.add_parser("router", help="the pipeline endpoint /v2/models/cardflow/infer over the step servers",
                        description="Serve the whole pipeline at /v2/models/cardflow/infer: call the step servers in "
                                    "order (each step's V2 response is the next step's request), with per-step "
                                    "timeouts, retries on connection errors only, the request id and traceparent "
                                    "passed on, and every step's latency, version and alias in the response.")
    rt.add_argument("--steps", required=True,
                    help="the step servers, in order: preprocess=URL,ocr=URL,classify=URL,extract=URL")
    rt.add_argument("--timeout-s", default="30", help="per-step timeout in seconds: one number, or step=seconds,… "
                                                      "(default 30)")
    rt.add_argument("--retries", type=int, default=2, help="extra attempts after a connection error (default 2)")
    rt.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    rt.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    rt.add_argument("--max-request-mb", type=float, default=32.0, help="largest request body, MB (default 32)")
    rl = sub.add_parser("reload", help="make running servers re-resolve their alias and swap to what it names",
                        description="After `cardflow registry promote`: ask each server (a step server, or the router, "
                                    "which asks every step server) to re-resolve its alias through the V2 repository "
                                    "`load` endpoint; a server swaps to the new version between batches, so requests "
                                    "in flight finish on the version they started with. A server pinned to a version "
                                    "keeps it.")
    rl.add_argument("urls", nargs="*", metavar="URL", help="a server's base URL, e.g. http://127.0.0.1:8080 (default: "
                                                       "the router of the stack `serve up` runs from --state-dir)")
    rl.add_argument("--timeout-s", type=float, default=120.0, help="how long one server may take (default 120)")
    rl.add_argument("--state-dir", default=".cardflow/serve", help="where `serve up` keeps its state (default "
                                                                  ".cardflow/serve)")
    up = sub.add_parser("up", help="the whole local stack: four step servers, the router and Prometheus, until Ctrl-C",
                        description="Serve a configuration (the spec's default unless --config) from the registry: "
                                    "a step whose model has no version at --alias gets its variant registered and "
                                    "promoted through the gates first. Starts a step server per step (ports PORT+1 … "
                                    "PORT+4), the router (PORT) and, when installed, Prometheus with "
                                    "serving/monitoring's rules; prints the URLs; Ctrl-C stops them all.")
    up.add_argument("--config", help="variants as 'preprocess | ocr | classify | extract', e.g. "
                                     "'channel:gray | tesseract:lstm-fast | tfidf-logreg:l2 | mrz-first:v1'")
    up.add_argument("--alias", default="champion", help="the alias every step serves (default champion)")
    up.add_argument("--port", type=int, default=8080, help="the router's port; steps take the next four (default 8080)")
    up.add_argument("--prometheus-port", type=int, default=9090, help="Prometheus's port; 0: no Prometheus "
                                                                      "(default 9090)")
    up.add_argument("--state-dir", default=".cardflow/serve", help="logs, Prometheus data and the state file "
                                                                  "(default .cardflow/serve)")
    up.add_argument("--workers", type=int, default=2, help="processes for the gates' evaluation (default 2)")
    up.add_argument("--start-timeout-s", type=float, default=180.0, help="how long a server may take to be ready "
                                                                         "(default 180)")
    ov = sub.add_parser("overlay", help="a kustomize overlay from a profile's recommendation (versions, cores, batch "
                                        "sizes, replicas)",
                        description="Run the recommender on a finished profile (as `cardflow recommend`) and write its "
                                    "best plan as a kustomize overlay over overlays/production: per step the model and "
                                    "version, CPU = the plan's cores, memory from the measured peak RSS, the batch "
                                    "size, threads and minReplicas. Exit 3 when nothing is feasible.")
    ov.add_argument("--profile", required=True, help="the profile's MLflow parent run id")
    ov.add_argument("--out", required=True, help="the overlay folder to write, e.g. serving/k8s/overlays/recommended")
    ov.add_argument("--base", help="the kustomization it builds on (default serving/k8s/overlays/production)")
    ov.add_argument("--load", help="target load, documents per second (default: the profile's)")
    ov.add_argument("--sla-ms", "--sla_ms", dest="sla_ms", help="end-to-end budget, ms (default: the profile's)")
    ov.add_argument("--budget", action="append", help="a step budget, STEP=MS (repeatable)")
    ov.add_argument("--alias", default="champion", help="the alias the pods serve (default champion)")
    ov.add_argument("--min-replicas", type=int, default=2, help="replicas per step at least, whatever the load "
                                                               "(default 2, for availability)")
    ov.add_argument("--pin", action="store_true", help="serve a step by version number when the alias holds "
                                                       "another variant than the plan's")
    return parser


def serve_overlay(args: argparse.Namespace) -> int:
    from pathlib import Path

    from common.errors import EXIT_REFUSED
    from serving.overlay import PRODUCTION, write_overlay

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one small JSON file
    path, rec = write_overlay(profile=args.profile, out=Path(args.out), base=Path(args.base or PRODUCTION),
                              load=args.load, sla_ms=args.sla_ms, budgets=args.budget, alias=args.alias,
                              pin=args.pin, min_replicas=args.min_replicas)
    if path is None:
        print(f"no feasible plan: {rec.reason}")
        return EXIT_REFUSED
    print(path.read_text().split("apiVersion:", 1)[0].rstrip())
    print(f"wrote {path}: kubectl apply -k {path.parent}")
    return 0


def serve_up(args: argparse.Namespace) -> int:
    from serving.up import up

    for name in ("port", "workers"):
        if getattr(args, name) < 1:
            raise SystemExit(f"cardflow serve: error: parameter --{name}: must be at least 1, got {getattr(args, name)}")
    if not 1 <= args.port <= 65535 - len(STEPS):
        raise SystemExit(f"cardflow serve: error: parameter --port: {args.port} leaves no room for the four step "
                         "servers after it")
    return up(args)


def serve_reload(args: argparse.Namespace) -> int:
    import httpx

    from common.errors import NotFound, Unavailable
    from serving.up import state_urls

    for url in args.urls or state_urls(args.state_dir):
        base = url.rstrip("/")
        try:
            listed = httpx.get(f"{base}/v1/models", timeout=10)
            for name in listed.json().get("models", []):
                answer = httpx.post(f"{base}/v2/repository/models/{name}/load", json={}, timeout=args.timeout_s)
                data = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
                if answer.status_code == 404:
                    raise NotFound(f"{base}: {data.get('error', answer.text[:300])}")
                if answer.status_code != 200:
                    raise Unavailable(f"{base}: reloading {name} answered HTTP {answer.status_code}: "
                                      f"{data.get('error', answer.text[:300])}")
                _say_reloaded(base, name, data)
        except httpx.HTTPError as exc:
            raise Unavailable(f"server {base} is unreachable ({type(exc).__name__}: {exc})") from exc
    return 0


def _say_reloaded(base: str, name: str, data: dict) -> None:
    if "steps" in data:  # the router: one answer per step server
        for step, answer in json.loads(data["steps"]).items():
            _say_reloaded(base, f"{name}/{step}", answer)
        return
    version, before = data.get("cardflow.version", "?"), data.get("previous_version")
    what = f"version {before} → {version}" if data.get("changed") else f"version {version} (unchanged)"
    alias = f" @{data['cardflow.alias']}" if data.get("cardflow.alias") else ""
    print(f"{base} {name}: {data.get('cardflow.model', '')}{alias} {what}")


def _pairs(text: str, what: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise SystemExit(f"cardflow serve: error: parameter {what}: expected step=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def serve_router(args: argparse.Namespace) -> int:
    from serving.app import ServerSettings, run
    from serving.router import PipelineRouter, RouterSettings, StepTarget
    from steps.catalog import default_catalog
    from steps.spec import load_spec

    urls = _pairs(args.steps, "--steps")
    if "=" in args.timeout_s:
        timeouts = {k: float(v) for k, v in _pairs(args.timeout_s, "--timeout-s").items()}
    else:
        timeouts = dict.fromkeys(urls, float(args.timeout_s))
    sla = load_spec(default_catalog()).sla
    targets = tuple(StepTarget(step, url, timeouts.get(step, 30.0)) for step, url in urls.items())
    router = PipelineRouter(RouterSettings(targets, retries=args.retries, budget_s=sla.end_to_end_ms / 1000))
    router.load()
    run([router], ServerSettings(host=args.host, port=args.port,
                                 max_request_bytes=int(args.max_request_mb * 1024 * 1024)),
        step="pipeline", labels=lambda: ("pipeline", "cardflow", "", ""))
    return 0


def serve_step(args: argparse.Namespace) -> int:
    from serving.app import ServerSettings, run
    from serving.step_model import StepModel, StepSettings
    from steps.catalog import default_catalog
    from steps.spec import load_spec
    from tracking.edge import fail_over_fast

    fail_over_fast()
    for name in ("port", "max_batch_size", "max_pixels", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SystemExit(f"cardflow serve: error: parameter --{name.replace('_', '-')} must be at least 1, got {value}")
    sla = load_spec(default_catalog()).sla
    budget_ms = sla.steps_ms.get(args.step)
    settings = StepSettings(max_batch_size=args.max_batch_size or sla.batch_size,
                            max_batch_delay_ms=args.max_batch_delay_ms, max_pixels=args.max_pixels,
                            threads=args.threads, budget_s=budget_ms / 1000 if budget_ms else None)
    served = StepModel(args.step, args.model, alias=args.alias, version=args.version, settings=settings,
                       model_dir=args.model_dir)
    served.load()
    run([served], ServerSettings(host=args.host, port=args.port,
                                 max_request_bytes=int(args.max_request_mb * 1024 * 1024)),
        step=args.step, labels=lambda: served.served.labels)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return {"step": serve_step, "router": serve_router, "reload": serve_reload, "up": serve_up,
                "overlay": serve_overlay}[args.command](args)
    except CardflowError as exc:
        print(f"cardflow serve: error: {exc}", file=sys.stderr)
        return outcome(exc).exit_code
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
