"""Promotion through gates: an alias (champion, challenger) moves to a version only on evidence.

The gate evaluates the candidate and the alias's current holder on the same evaluation: the same
corpus (by manifest sha256) and distribution, each version loaded from the registry through the
verified loader and run inside the default configuration (the other three steps at their defaults),
at the SLA's batch size. It passes when

- accuracy (assertions passed) is not below the holder's minus a tolerance, and
- the step's p95 latency per document is within the step's SLA budget (configs/pipeline.yaml).

An evaluation is an MLflow run (experiment `cardflow-registry-eval`) keyed by the version's fingerprint,
the corpus, the distribution, the other steps and the batch size, so it is computed once and reused.
Every decision (promoted, refused, forced) is a run in `cardflow-registry-decisions` and a tag on the
candidate version; `cardflow registry history` lists them. `--force --reason` overrides a failing gate
and records who and why. Rollback is a promotion of the previous holder (`rollback` finds it).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.params import ParameterError, fraction, is_default, or_default, positive_int
from corpus.records import Corpus
from corpus.resolve import resolve_corpus
from registry.errors import RegistryError, RegistryNotFound
from registry.loader import Loader
from registry.register import TAG_FINGERPRINT, TAG_VARIANT
from steps.base import STEPS
from steps.catalog import Catalog
from steps.runner import Pipeline
from steps.scoring import Summary, latency_metrics
from steps.spec import GateDefaults, Sla
from tracking.edge import client_for, experiment_id, log_finished_run, mlflow_errors, probe

EVAL_EXPERIMENT = "cardflow-registry-eval"
DECISION_EXPERIMENT = "cardflow-registry-decisions"


@dataclass(frozen=True)
class GateSpec:
    """Where gates evaluate and how strict they are: configs/pipeline.yaml `registry.gate` with the command's
    overrides, and the SLA's step budgets and batch size."""

    corpus: str | None  # None: the corpus generated from n, seed and distribution
    n: int
    seed: int
    distribution: str
    accuracy_tolerance: float
    budgets_ms: dict[str, float]
    batch_size: int


def gate_spec(gate: GateDefaults, budgets_ms: Mapping[str, float], batch_size: int, *, corpus: str | Path | None = None,
              n: Any = None, distribution: str | None = None, accuracy_tolerance: Any = None) -> GateSpec:
    """The spec's gate section (`spec.registry.gate`, already checked at load) with the command's overrides (None or
    '' keeps the spec's value), each override validated like every parameter."""
    corpus = or_default(corpus, gate.corpus)
    return GateSpec(corpus=None if is_default(corpus) else str(corpus), n=positive_int("n", or_default(n, gate.n)),
                    seed=gate.seed, distribution=str(or_default(distribution, gate.distribution)),
                    accuracy_tolerance=fraction("tolerance", or_default(accuracy_tolerance, gate.accuracy_tolerance)),
                    budgets_ms=dict(budgets_ms), batch_size=batch_size)


@dataclass
class Evaluation:
    name: str
    version: str
    variant_id: str
    run_id: str
    corpus_sha: str
    distribution: str
    documents: int
    accuracy: float
    p95_ms: float
    reused: bool


@dataclass
class Decision:
    name: str
    alias: str
    version: str
    previous: str | None
    outcome: str  # promoted | refused | forced | unchanged
    reasons: list[str] = field(default_factory=list)  # why each gate passed or failed, with figures
    failed: list[str] = field(default_factory=list)
    candidate: Evaluation | None = None
    holder: Evaluation | None = None
    run_id: str | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome in ("promoted", "forced", "unchanged")


def current_user() -> str:
    """Who is deciding: $CARDFLOW_USER, else the login name (a uid without a passwd entry: uid-<n>)."""
    if os.environ.get("CARDFLOW_USER"):
        return os.environ["CARDFLOW_USER"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def split_name(name: str) -> tuple[str, str]:
    """(step, model) of `cardflow.<step>.<model>`."""
    parts = name.split(".", 2)
    if len(parts) != 3 or parts[0] != "cardflow" or parts[1] not in STEPS:
        raise RegistryError(f"model name {name!r} is not cardflow.<step>.<model> with step one of {', '.join(STEPS)}")
    return parts[1], parts[2]


class Gatekeeper:
    """Evaluates versions and moves aliases for one tracking server."""

    def __init__(self, uri: str, spec: GateSpec, default: dict[str, str], catalog: Catalog,
                 loader: Loader | None = None, corpus: Corpus | None = None, workers: int = 2) -> None:
        self.uri = uri
        self.spec = spec
        self.default = default
        self.catalog = catalog
        self.loader = loader or Loader(uri)
        self.client = client_for(uri)
        self._corpus = corpus
        self.workers = workers

    @property
    def corpus(self) -> Corpus:
        if self._corpus is None:
            try:
                self._corpus, _ = resolve_corpus(self.spec.corpus, (self.spec.distribution,),
                                                 (self.spec.distribution,), self.spec.n, self.spec.seed, self.workers)
            except ParameterError as exc:
                raise RegistryError(f"registry.gate: {exc}") from exc
        return self._corpus

    def _version(self, name: str, version: str):
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version(name, str(version))
        except MlflowException as exc:
            raise RegistryNotFound(f"{name} has no version {version} at {self.uri} ({str(exc).splitlines()[0]})") from exc

    def holder(self, name: str, alias: str):
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(name, alias)
        except MlflowException:
            return None

    def evaluate(self, name: str, version: str) -> Evaluation:
        """The version's accuracy and step p95 on the gate's corpus and distribution (reused when done before)."""
        step, model = split_name(name)
        mv = self._version(name, version)
        fingerprint = mv.tags.get(TAG_FINGERPRINT, "")
        corpus = self.corpus
        others = {s: v for s, v in self.default.items() if s != step}
        key = hashlib.sha256(json.dumps([fingerprint, corpus.manifest_hash, self.spec.distribution, others,
                                         self.spec.batch_size, "warm"], sort_keys=True).encode()).hexdigest()[:16]
        experiment = experiment_id(self.client, EVAL_EXPERIMENT)
        found = self.client.search_runs([experiment], filter_string=f"tags.`cardflow.eval_key` = '{key}' and "
                                        "attributes.status = 'FINISHED'", max_results=1)
        if found:
            m = found[0].data.metrics
            return Evaluation(name, str(version), mv.tags.get(TAG_VARIANT, ""), found[0].info.run_id,
                              corpus.manifest_hash, self.spec.distribution, int(m["documents"]), m["accuracy"],
                              m[f"step.{step}.latency_ms.p95"], True)
        return self._run_evaluation(name, mv, step, model, key, experiment)

    def _run_evaluation(self, name: str, mv, step: str, model: str, key: str, experiment: str) -> Evaluation:
        variant = self.loader.load(step, model, version=mv.version)
        catalog = Catalog([variant if v.id == variant.id else v for v in self.catalog])
        config = catalog.configuration({**self.default, step: variant.id})
        docs = [d for d in self.corpus if d.distribution == self.spec.distribution]
        if not docs:
            raise RegistryError(f"corpus {self.corpus.root} has no documents under {self.spec.distribution}")
        outcomes, summary = [], Summary()
        for outcome in Pipeline(config, catalog).run(docs, self.spec.batch_size, warm=True):
            summary.add(outcome)
            outcomes.append(outcome)
        sla = Sla(self.spec.batch_size, float("inf"), self.spec.budgets_ms)
        metrics = {**summary.metrics(), **latency_metrics(outcomes, sla)}
        p95 = metrics[f"step.{step}.latency_ms.p95"]
        tags = {"cardflow.kind": "registry-eval", "cardflow.eval_key": key, "cardflow.model": name,
                "cardflow.model_version": str(mv.version), TAG_VARIANT: variant.id,
                TAG_FINGERPRINT: mv.tags.get(TAG_FINGERPRINT, ""), "cardflow.corpus_sha": self.corpus.manifest_hash,
                "cardflow.distribution": self.spec.distribution, "cardflow.config_id": config.id}
        params = {"model": name, "version": mv.version, "variant": variant.id, "configuration": config.id,
                  "corpus": str(self.corpus.root), "corpus_manifest_sha256": self.corpus.manifest_hash,
                  "distribution": self.spec.distribution, "documents": len(docs), "batch_size": self.spec.batch_size,
                  "loaded_from": str(variant.registered.origin)}
        run_id = log_finished_run(self.client, experiment, f"gate eval {name} v{mv.version} @ {self.spec.distribution}",
                                  tags, params, {k: float(v) for k, v in metrics.items() if v is not None})
        return Evaluation(name, str(mv.version), variant.id, run_id, self.corpus.manifest_hash, self.spec.distribution,
                          len(docs), metrics["accuracy"], p95, False)

    def promote(self, name: str, version: str, alias: str, *, force: bool = False, reason: str | None = None,
                user: str | None = None) -> Decision:
        """Move `alias` to `version` if the gates pass (or with force and a reason); records the decision."""
        step, _ = split_name(name)
        if not alias or not alias.replace("-", "").replace("_", "").isalnum():
            raise RegistryError(f"parameter alias: {alias!r} is not a valid alias (letters, digits, - and _)")
        if force and not (reason or "").strip():
            raise RegistryError("--force needs --reason \"…\": a forced promotion records who and why")
        self._version(name, version)
        current = self.holder(name, alias)
        previous = current.version if current else None
        if previous == str(version):
            return Decision(name, alias, str(version), previous, "unchanged",
                            [f"version {version} already holds {alias}"])
        candidate = self.evaluate(name, version)
        holder = self.evaluate(name, previous) if previous else None
        reasons, failed = [], []
        budget = self.spec.budgets_ms.get(step)
        tol = self.spec.accuracy_tolerance
        where = (f"{candidate.documents} documents of {self.spec.distribution} "
                 f"(corpus {candidate.corpus_sha[:12]})")
        if holder is not None:
            floor = holder.accuracy - tol
            line = (f"accuracy {candidate.accuracy:.1%} vs holder v{previous} {holder.accuracy:.1%} "
                    f"(tolerance {tol:.1%}: at least {floor:.1%}) on {where}")
            (reasons if candidate.accuracy >= floor - 1e-12 else failed).append(line)
        else:
            reasons.append(f"no version holds {alias} yet: accuracy {candidate.accuracy:.1%} on {where} "
                           "(nothing to compare with)")
        if budget is None:
            reasons.append(f"no SLA budget for step {step}: p95 {candidate.p95_ms:.0f} ms not gated")
        else:
            line = f"{step} p95 latency {candidate.p95_ms:.0f} ms vs SLA budget {budget:g} ms per document " \
                   f"(batch {self.spec.batch_size})"
            (reasons if candidate.p95_ms <= budget else failed).append(line)
        outcome = "promoted" if not failed else "forced" if force else "refused"
        decision = Decision(name, alias, str(version), previous, outcome, reasons, failed, candidate, holder)
        who = user or current_user()
        if decision.accepted:
            self.client.set_registered_model_alias(name, alias, str(version))
        self._record(decision, who, reason if force else None)
        return decision

    def _record(self, d: Decision, who: str, forced_reason: str | None) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        summary = {"outcome": d.outcome, "alias": d.alias, "previous": d.previous, "by": who, "at": stamp,
                   "passed": d.reasons, "failed": d.failed}
        if forced_reason:
            summary["reason"] = forced_reason
        tags = {"cardflow.kind": "promotion", "cardflow.model": d.name, "cardflow.alias": d.alias,
                "cardflow.outcome": d.outcome, "cardflow.by": who, "mlflow.user": who}
        params = {"model": d.name, "alias": d.alias, "version": d.version, "previous": d.previous or "",
                  "outcome": d.outcome, "by": who, "reason": forced_reason or "",
                  "passed": " ; ".join(d.reasons)[:6000], "failed": " ; ".join(d.failed)[:6000],
                  "corpus_sha": d.candidate.corpus_sha if d.candidate else "",
                  "distribution": d.candidate.distribution if d.candidate else "",
                  "tolerance": self.spec.accuracy_tolerance,
                  "candidate_eval_run": d.candidate.run_id if d.candidate else "",
                  "holder_eval_run": d.holder.run_id if d.holder else ""}
        metrics = {}
        if d.candidate:
            metrics.update({"candidate.accuracy": d.candidate.accuracy, "candidate.p95_ms": d.candidate.p95_ms})
        if d.holder:
            metrics.update({"holder.accuracy": d.holder.accuracy, "holder.p95_ms": d.holder.p95_ms})
        d.run_id = log_finished_run(self.client, experiment_id(self.client, DECISION_EXPERIMENT), f"{d.outcome} {d.name}@{d.alias} v{d.version}",
                                    tags, params, metrics)
        self.client.set_model_version_tag(d.name, d.version, f"cardflow.{d.alias}.decision",
                                          json.dumps(summary))
        if forced_reason:
            self.client.set_model_version_tag(d.name, d.version, f"cardflow.{d.alias}.forced_by", who)
            self.client.set_model_version_tag(d.name, d.version, f"cardflow.{d.alias}.force_reason", forced_reason)

    def previous_holder(self, name: str, alias: str) -> str | None:
        """The version that held `alias` before the current holder (for rollback), from the decision history."""
        current = self.holder(name, alias)
        if current is None:
            return None
        moves = [h for h in history(self.uri, name=name, alias=alias) if h["outcome"] in ("promoted", "forced")]
        for entry in reversed(moves):  # newest first
            if entry["version"] == current.version and entry["previous"]:
                return entry["previous"]
        return None


def history(uri: str, *, name: str | None = None, alias: str | None = None) -> list[dict[str, Any]]:
    """Every recorded decision, oldest first."""
    probe(uri)
    with mlflow_errors(uri):
        return _history(uri, name, alias)


def _history(uri: str, name: str | None, alias: str | None) -> list[dict[str, Any]]:
    client = client_for(uri)
    found = client.get_experiment_by_name(DECISION_EXPERIMENT)
    if found is None:
        return []
    filters = ["tags.`cardflow.kind` = 'promotion'"]
    if name:
        filters.append(f"tags.`cardflow.model` = '{name}'")
    if alias:
        filters.append(f"tags.`cardflow.alias` = '{alias}'")
    runs = client.search_runs([found.experiment_id], filter_string=" and ".join(filters), max_results=5000,
                              order_by=["attributes.start_time ASC"])
    out = []
    for run in runs:
        p, m = run.data.params, run.data.metrics
        out.append({"time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.info.start_time / 1000)),
                    "model": p.get("model"), "alias": p.get("alias"), "version": p.get("version"),
                    "previous": p.get("previous") or None, "outcome": p.get("outcome"), "by": p.get("by"),
                    "reason": p.get("reason", ""), "failed": p.get("failed", ""), "passed": p.get("passed", ""),
                    "candidate_accuracy": m.get("candidate.accuracy"), "holder_accuracy": m.get("holder.accuracy"),
                    "candidate_p95_ms": m.get("candidate.p95_ms"), "run_id": run.info.run_id})
    return out


def history_table(rows: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    if not rows:
        return "no promotions recorded yet (`cardflow registry promote …`)"

    def pct(v):
        return "" if v is None else f"{v:.1%}"

    table = [[r["time"], r["model"], r["alias"], f"{r['previous'] or '-'} → {r['version']}", r["outcome"],
              pct(r["candidate_accuracy"]), pct(r["holder_accuracy"]),
              "" if r["candidate_p95_ms"] is None else f"{r['candidate_p95_ms']:.0f}", r["by"],
              r["reason"] if r["outcome"] == "forced" else (r["failed"] if r["outcome"] == "refused" else "")]
             for r in rows]
    return tabulate(table, headers=["time", "model", "alias", "version", "decision", "accuracy", "holder acc.",
                                    "p95 ms", "by", "why (forced) / failed gates"], tablefmt="github")

