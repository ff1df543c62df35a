"""A search that does not try everything: successive halving on documents (`cardflow sweep --search halving`).

Per distribution, every configuration is evaluated on the first few documents (`first_docs`, whole batches).
Ranked by accuracy (assertions passed over evaluated), then assertions passed, then the grid's order (the same
corpus and grid always prune the same way), the best 1/`eta` survive — taken from the best 1/`eta` of their
(preprocessing, OCR) prefixes (`keep`: OCR is most of the work, and a prefix is computed once for every
configuration under it) — and go on to `eta` times as many documents, until the full corpus. A survivor only
computes the documents it has not seen yet (its earlier outcomes are kept: a document's outcome does not depend on
the others), and each stage runs as the sweep's tasks do, so shared prefixes are computed once per document.

    stage  documents  configurations (672 per distribution in 32 prefixes, eta 5, first 2 of 32 documents)
    0      2          672
    1      10         135
    2      32          27  → full runs; the best of these is the search's answer

(`make bench-search` chose the defaults: eta 5, first 2 found the exhaustive best on both distributions with 14.7%
of its document-step computations; eta 3, first 4 also did, with 28.3%.)

Every configuration ends with the outcomes of the documents it saw; `run_sweep` logs the last stage's as full runs
(the report ranks only those) and the others as runs tagged `cardflow.search=pruned` with the stage they stopped at
and the documents they saw, so the MLflow UI shows the whole search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from common.params import ParameterError, is_default, positive_int
from corpus.records import DocumentRef
from steps.catalog import Configuration
from steps.runner import DocumentOutcome
from steps.scoring import Summary

SEARCHES = ("exhaustive", "halving")


@dataclass(frozen=True)
class SearchParams:
    kind: str = "exhaustive"
    eta: int = 5  # keep 1/eta of the configurations per stage; documents grow ×eta
    first_docs: int = 2  # documents per distribution at the first stage (rounded up to whole batches)

    def params(self) -> dict[str, str]:
        if self.kind != "halving":
            return {"search": self.kind}
        return {"search": self.kind, "search_eta": str(self.eta), "search_first_docs": str(self.first_docs)}


def search_param(search=None, eta=None, first_docs=None) -> SearchParams:
    """`--search exhaustive|halving`, `--search-eta` (≥ 2), `--search-first-docs` (≥ 1), each checked."""
    kind = "exhaustive" if is_default(search) else str(search).strip().lower()
    if kind not in SEARCHES:
        raise ParameterError(f"parameter search: {search!r} is not one of {', '.join(SEARCHES)}")
    eta_n = SearchParams.eta if is_default(eta) else positive_int("search_eta", eta)
    if eta_n < 2:
        raise ParameterError(f"parameter search_eta: {eta!r} must be at least 2 (each stage keeps 1/eta)")
    first = SearchParams.first_docs if is_default(first_docs) else positive_int("search_first_docs", first_docs)
    if kind != "halving" and not (is_default(eta) and is_default(first_docs)):
        raise ParameterError("parameters search_eta and search_first_docs are only used with search halving")
    return SearchParams(kind, eta_n, first)


def stage_sizes(n_docs: int, first: int, eta: int, batch_size: int) -> list[int]:
    """Cumulative documents per stage: first (whole batches), ×eta each stage, the last one all `n_docs`."""
    def whole(n: int) -> int:
        return min(n_docs, -(-n // batch_size) * batch_size)

    sizes = [whole(max(1, first))]
    while sizes[-1] < n_docs:
        sizes.append(whole(sizes[-1] * eta))
    return sizes


@dataclass
class StageRecord:
    index: int
    documents: int
    evaluated: list[str]  # configuration ids, best first
    kept: list[str]
    accuracy: dict[str, float]


@dataclass
class HalvingResult:
    """Per distribution: the stages, and every configuration's outcomes on the documents it saw."""

    stages: dict[str, list[StageRecord]] = field(default_factory=dict)
    outcomes: dict[tuple[str, str], list[DocumentOutcome]] = field(default_factory=dict)  # (config id, dist)
    stopped: dict[tuple[str, str], int] = field(default_factory=dict)  # the stage a configuration ended at

    def survivors(self, dist: str) -> list[str]:
        return self.stages[dist][-1].evaluated

    def is_final(self, config_id: str, dist: str) -> bool:
        return self.stopped[(config_id, dist)] == len(self.stages[dist]) - 1

    def ranks(self, config_id: str, dist: str) -> list[int | None]:
        """The configuration's rank (1 = best) at each stage of the distribution; None where it was not evaluated."""
        return [s.evaluated.index(config_id) + 1 if config_id in s.evaluated else None for s in self.stages[dist]]

    def manifest(self) -> dict:
        return {dist: [{"stage": s.index, "documents": s.documents, "evaluated": len(s.evaluated), "kept": len(s.kept),
                        "best": s.evaluated[0], "best_accuracy": round(s.accuracy[s.evaluated[0]], 4)}
                       for s in stages] for dist, stages in self.stages.items()}


def _rank(outcomes: dict[str, list[DocumentOutcome]]) -> tuple[list[str], dict[str, float]]:
    """Best first: accuracy, then assertions passed, then the grid's order (never the measured latency, so the
    same corpus and grid always prune the same configurations)."""
    scores = {}
    for k, (cid, found) in enumerate(outcomes.items()):
        summary = Summary()
        for outcome in found:
            summary.add(outcome)
        scores[cid] = (summary.accuracy, summary.passed, -k)
    order = sorted(scores, key=lambda cid: scores[cid], reverse=True)
    return order, {cid: scores[cid][0] for cid in order}


def prefix(config_id: str) -> str:
    """The expensive, shared part of a configuration: its preprocessing and OCR variants."""
    return "|".join(config_id.split("|")[:2])


def keep(order: Sequence[str], eta: int) -> list[str]:
    """The best 1/eta of the configurations (`order`: best first), taken from the best 1/eta of their
    (preprocessing, OCR) prefixes — a prefix ranks as its best configuration. OCR is most of the work and a prefix
    is computed once for all the configurations under it, so pruning prefixes is what saves the work."""
    prefixes = list(dict.fromkeys(prefix(cid) for cid in order))
    top = set(prefixes[: max(1, -(-len(prefixes) // eta))])
    return [cid for cid in order if prefix(cid) in top][: max(1, -(-len(order) // eta))]


Evaluate = Callable[[dict[str, list[Configuration]], dict[str, list[DocumentRef]]],
                    dict[tuple[str, str], list[DocumentOutcome]]]


def run_halving(todo: dict[str, list[Configuration]], docs: dict[str, Sequence[DocumentRef]], params: SearchParams,
                batch_size: int, evaluate: Evaluate, on_stage: Callable[[str, StageRecord], None] | None = None
                ) -> HalvingResult:
    """Successive halving per distribution (all distributions' stage k computed together). `evaluate(todo, docs)`
    returns each (configuration id, distribution)'s outcomes on the given documents, in order."""
    result = HalvingResult()
    sizes = {dist: stage_sizes(len(docs[dist]), params.first_docs, params.eta, batch_size) for dist in todo}
    alive = {dist: [c.id for c in configs] for dist, configs in todo.items()}
    by_id = {c.id: c for configs in todo.values() for c in configs}
    seen = dict.fromkeys(todo, 0)
    for stage in range(max(len(s) for s in sizes.values())):
        step_todo, step_docs = {}, {}
        for dist in todo:
            if stage < len(sizes[dist]) and alive[dist]:
                step_todo[dist] = [by_id[cid] for cid in alive[dist]]
                step_docs[dist] = list(docs[dist][seen[dist]:sizes[dist][stage]])
        if not step_todo:
            break
        found = evaluate(step_todo, step_docs)
        for dist in step_todo:
            for cid in alive[dist]:
                result.outcomes.setdefault((cid, dist), []).extend(found[(cid, dist)])
                result.stopped[(cid, dist)] = stage
            seen[dist] = sizes[dist][stage]
            order, accuracy = _rank({cid: result.outcomes[(cid, dist)] for cid in alive[dist]})
            last = stage == len(sizes[dist]) - 1
            kept = order if last else keep(order, params.eta)
            record = StageRecord(stage, seen[dist], order, kept, accuracy)
            result.stages.setdefault(dist, []).append(record)
            if on_stage:
                on_stage(dist, record)
            alive[dist] = [] if last else kept
    return result
