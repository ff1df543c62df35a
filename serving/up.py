"""`cardflow serve up`: the whole local stack in one command, each server a process of its own.

It serves a configuration (the spec's default unless `--config`): for each step, the registered model of the
step's variant at an alias (`champion`). A step whose model has no version at that alias yet gets its variant
registered and promoted through the gates (registry/gates.py: a refusal stops here, naming the failed gate). Then
four `serve step` processes (ports PORT+1 … PORT+4), the router (PORT) and, when the `prometheus` binary is
installed, a Prometheus (serving/monitoring's config and rules) scraping them all. The URLs are printed and
written to a state file, which `cardflow serve reload` (no URL) reads. Ctrl-C / SIGTERM stops every process and
removes the state file; a server that dies on its own stops the stack with exit status 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from common.errors import EXIT_REFUSED, BadInput, Conflict, Unavailable
from steps.base import STEPS

MONITORING = Path(__file__).resolve().parent / "monitoring"


class Refused(Conflict):
    """A gate refused the version `serve up` would have served."""
STATE_FILE = "serve.json"


@dataclass
class Child:
    name: str
    url: str
    proc: subprocess.Popen
    log: Path


def configuration(text: str | None):
    """The configuration to serve: the spec's default, or `preprocess | ocr | classify | extract` variant names."""
    from steps.catalog import Configuration, default_catalog
    from steps.spec import load_spec

    catalog = default_catalog()
    spec = load_spec(catalog)
    if not text:
        return spec, catalog, spec.default
    parts = [p.strip() for p in text.split("|")]
    if len(parts) != len(STEPS):
        raise BadInput(f"parameter --config: expected {len(STEPS)} variants separated by '|' "
                       f"({' | '.join(STEPS)}), got {text!r}")
    ids = {step: catalog.resolve(step, part) for step, part in zip(STEPS, parts, strict=True)}
    return spec, catalog, Configuration(**ids)



def ensure_champions(spec, catalog, config, alias: str, workers: int) -> dict[str, str]:
    """{step: version} at `alias` for the configuration's models, registering and promoting what is missing."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from registry.gates import Gatekeeper, gate_spec
    from registry.package import family, model_name
    from registry.register import TAG_VARIANT, register_all
    from steps.modelstore import ModelStore
    from tracking.edge import mlflow_errors, probe, tracking_uri

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a line per model says what happened
    uri = tracking_uri()
    probe(uri)
    held: dict[str, str] = {}
    missing = []
    with mlflow_errors(uri):
        client = MlflowClient(uri)
        for step in STEPS:
            vid = getattr(config, step)
            try:
                version = client.get_model_version_by_alias(model_name(step, family(vid)), alias)
            except MlflowException:
                missing.append(vid)
                continue
            if version.tags.get(TAG_VARIANT) not in (None, vid):
                print(f"  note: {model_name(step, family(vid))}@{alias} is version {version.version} "
                      f"({version.tags[TAG_VARIANT]}), not {vid}: serving what the alias names")
            held[step] = str(version.version)
        if not missing:
            return held
        print(f"registering {len(missing)} variant(s) with no version at @{alias}: {', '.join(missing)}")
        registered = register_all(catalog, ModelStore(), variant_ids=missing, default=spec.default.as_dict())
        gate = gate_spec(spec.registry.gate, spec.sla.steps_ms, spec.sla.batch_size)
        keeper = Gatekeeper(uri, gate, spec.default.as_dict(), catalog, workers=workers)
        for entry in registered:
            decision = keeper.promote(entry.name, entry.version, alias, force=False, reason=None)
            print(f"  {decision.outcome}: {entry.name}@{alias} → {entry.version}")
            if not decision.accepted:
                raise Refused(f"{entry.name} version {entry.version} ({entry.variant_id}) was refused @{alias} by "
                               f"the gates: {'; '.join(decision.failed)} — promote another version, or force it "
                               f"with `cardflow registry promote --force --reason …`")
            held[entry.variant_id.split("/", 1)[0]] = entry.version
    return held


def _wait_ready(child: Child, timeout_s: float, path: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            tail = child.log.read_text(errors="replace")[-2000:] if child.log.is_file() else ""
            raise Unavailable(f"{child.name} exited ({child.proc.returncode}) before it was ready; its log "
                              f"{child.log}:\n{tail}")
        try:
            with urllib.request.urlopen(child.url + path, timeout=2):
                return
        except OSError:
            time.sleep(0.25)
    raise Unavailable(f"{child.name} at {child.url} was not ready within {timeout_s:.0f} s (log: {child.log})")


def _spawn(name: str, args: list[str], url: str, state_dir: Path) -> Child:
    log = state_dir / f"{name}.log"
    proc = subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    return Child(name, url, proc, log)


def _stop(children: list[Child]) -> None:
    for child in children:
        if child.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it may have ended since
                os.killpg(child.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children:
        try:
            child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.proc.pid, signal.SIGKILL)
            child.proc.wait(timeout=5)


def prometheus_config(state_dir: Path, targets: dict[str, str]) -> Path:
    """serving/monitoring (config and rules) with the targets file naming this stack's servers."""
    config = state_dir / "monitoring"
    shutil.rmtree(config, ignore_errors=True)
    shutil.copytree(MONITORING, config, ignore=shutil.ignore_patterns("tests", "grafana", "*.py"))
    (config / "targets" / "local.json").write_text(json.dumps(
        [{"targets": [hostport], "labels": {"server": server}} for server, hostport in targets.items()], indent=1))
    return config / "prometheus.yml"


def up(args) -> int:
    from registry.package import family

    spec, catalog, config = configuration(args.config)
    state_dir = Path(args.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    state = state_dir / STATE_FILE
    if state.is_file():
        previous = json.loads(state.read_text())
        if any(_alive(pid) for pid in previous.get("pids", [])):
            raise Conflict(f"a stack already runs from {state} (router {previous.get('router')}); stop it first")
    try:
        versions = ensure_champions(spec, catalog, config, args.alias, args.workers)
    except Refused as exc:
        print(f"cardflow serve: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    host, base = "127.0.0.1", args.port
    python = [sys.executable, "-m", "serving"]
    children: list[Child] = []
    stopping = {"signal": None}

    def on_signal(signum, _frame) -> None:
        stopping["signal"] = signum
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        for k, step in enumerate(STEPS, start=1):
            port = base + k
            child = _spawn(step, [*python, "step", "--step", step, "--model", family(getattr(config, step)),
                                  "--alias", args.alias, "--host", host, "--port", str(port)],
                           f"http://{host}:{port}", state_dir)
            children.append(child)
        for child in children:
            _wait_ready(child, args.start_timeout_s, "/v2/health/ready")
        chain = ",".join(f"{c.name}={c.url}" for c in children)
        router = _spawn("router", [*python, "router", "--steps", chain, "--host", host, "--port", str(base)],
                        f"http://{host}:{base}", state_dir)
        children.append(router)
        _wait_ready(router, args.start_timeout_s, "/v2/health/ready")
        prometheus = None
        binary = shutil.which("prometheus")
        if args.prometheus_port and binary:
            targets = {c.name: c.url.removeprefix("http://") for c in children}
            cfg = prometheus_config(state_dir, targets)
            prometheus = _spawn("prometheus", [binary, f"--config.file={cfg}", f"--storage.tsdb.path={state_dir / 'tsdb'}",
                                               f"--web.listen-address={host}:{args.prometheus_port}"],
                                f"http://{host}:{args.prometheus_port}", state_dir)
            children.append(prometheus)
            _wait_ready(prometheus, 30, "/-/ready")
        state.write_text(json.dumps({"router": router.url, "steps": {c.name: c.url for c in children[:len(STEPS)]},
                                     "prometheus": prometheus.url if prometheus else None,
                                     "pids": [c.proc.pid for c in children]}, indent=1))
        print(f"serving {config.id}")
        for step, child in zip(STEPS, children, strict=False):
            print(f"  {step:<10} {child.url}/v2/models/cardflow-{step}  "
                  f"{family(getattr(config, step))} v{versions[step]} @{args.alias}")
        print(f"  {'pipeline':<10} {router.url}/v2/models/cardflow/infer")
        if prometheus:
            print(f"  {'prometheus':<10} {prometheus.url}  (alerts: {prometheus.url}/alerts)")
        elif args.prometheus_port:
            print("  prometheus not started: the `prometheus` binary is not installed (Debian: apt-get install "
                  "prometheus); each server still exposes /metrics")
        print(f"logs in {state_dir}; Ctrl-C stops everything", flush=True)
        while True:
            dead = [c for c in children if c.proc.poll() is not None]
            if dead:
                print(f"cardflow serve: error: {dead[0].name} exited ({dead[0].proc.returncode}); stopping the stack "
                      f"(log: {dead[0].log})", file=sys.stderr)
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("stopping…", flush=True)
        return 0
    finally:
        _stop(children)
        state.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def state_urls(state_dir: str | Path) -> list[str]:
    """The router's URL from a running stack's state file (for `serve reload` with no URL)."""
    state = Path(state_dir) / STATE_FILE
    if not state.is_file():
        raise BadInput(f"parameter URL: no URL given and no running stack ({state} does not exist): name the "
                       "servers to reload, or start them with `cardflow serve up`")
    return [json.loads(state.read_text())["router"]]
