"""Real documents in a sweep: what the swept corpus is, and per (configuration, distribution) how many MRZs were
read exactly and how many documents had every field right, from each run's predictions.jsonl.

One definition, shared with bench/bench_real.py: a document's MRZ is exact when steps/scoring.py's `mrz_lines`
assertion passed (every line read exactly); its fields are all exact when every `field.<name>` assertion of a
field the extract step can produce (steps/extract/layouts.FIELDS) passed.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.sweep import SweepData
from corpus.errors import CorpusError
from corpus.format import MANIFEST
from corpus.loaders import detect, load
from corpus.mrz_cards import KIND as RENDERED_KIND
from steps.extract.layouts import FIELDS

SYNTHETIC = "synthetic"
SYNTHETIC_TEXT = ("synthetic documents of 5 fictional issuers × 3 types (identity card with a TD1 zone, one issuer's "
                  "TD2; TD3 passport; driving licence) with exact ground truth; the same documents under every "
                  "distribution.")


@dataclass(frozen=True)
class CorpusInfo:
    """What a swept corpus holds: `synthetic` (the generator's), `rendered-real-mrz` (real MRZ strings printed by
    corpus/mrz_cards.py), `real` (a dataset's own images) or `unreadable` (gone since the sweep), and a sentence."""

    kind: str
    text: str

    @property
    def real_mrz(self) -> bool:
        """Whether its MRZ ground truth comes from real documents (so the report shows the MRZ figures)."""
        return self.kind != SYNTHETIC


def describe_corpus(path: str | Path) -> CorpusInfo:
    """The kind of corpus at `path` and a sentence for the report's data section."""
    root = Path(path)
    try:
        layout = detect(root)
        if layout == "cardflow":
            manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
            if manifest.get("kind") == RENDERED_KIND:
                return CorpusInfo(RENDERED_KIND, f"{manifest.get('description', 'real MRZ strings')}; ground truth: "
                                                 "the MRZ lines as given and the fields parsed from them.")
            return CorpusInfo(SYNTHETIC, SYNTHETIC_TEXT)
        corpus = load(root, strict=False)
    except (CorpusError, OSError, json.JSONDecodeError) as exc:
        return CorpusInfo("unreadable", f"a corpus no longer readable where the sweep read it ({exc}).")
    dataset = corpus.manifest.get("dataset") or {}
    with_mrz = sum(1 for d in corpus if d.truth and d.truth.mrz_lines)
    source = ", ".join(f"{key} {dataset[key]}" for key in ("source_repo", "license") if dataset.get(key))
    return CorpusInfo("real", f"{len(corpus)} real document images ({layout} layout"
                              + (f"; {source}" if source else "") + f"), {with_mrz} of them with full MRZ ground truth.")


def missed_fields(assertions: Mapping[str, bool], fields: Iterable[str] = FIELDS) -> list[str] | None:
    """The ground-truth fields the extract step can produce that were not read exactly, sorted (None: the
    document has none of them)."""
    producible = set(fields)
    checked = {name.removeprefix("field."): ok for name, ok in assertions.items()
               if name.startswith("field.") and name.removeprefix("field.") in producible}
    return sorted(name for name, ok in checked.items() if not ok) if checked else None


def all_fields_exact(assertions: Mapping[str, bool], fields: Iterable[str] = FIELDS) -> bool | None:
    """Every ground-truth field the extract step can produce read exactly (None: the document has none)."""
    missed = missed_fields(assertions, fields)
    return None if missed is None else not missed


def run_figures(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Counts over one run's prediction rows (documents without MRZ ground truth are left out)."""
    out = {"documents": 0, "mrz_exact": 0, "fields_scored": 0, "fields_exact": 0, "mrz_valid": 0, "failures": 0}
    for row in rows:
        assertions = row.get("assertions") or {}
        if "mrz_lines" not in assertions:
            continue
        out["documents"] += 1
        out["mrz_exact"] += bool(assertions["mrz_lines"])
        out["mrz_valid"] += bool(assertions.get("mrz_valid"))
        out["failures"] += row.get("failure") is not None
        exact = all_fields_exact(assertions)
        if exact is not None:
            out["fields_scored"] += 1
            out["fields_exact"] += exact
    return out


def _predictions(client, run_id: str) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(client.download_artifacts(run_id, "predictions.jsonl", tmp))
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _count(count: int, total: int) -> str:
    return f"{count} / {total} ({count / total:.1%})" if total else "–"


def mrz_table(data: SweepData, client=None) -> pd.DataFrame:
    """Per (configuration, distribution) with MRZ ground truth: MRZ exact, all fields exact, MRZ valid, failures,
    latency; sorted by distribution, then most MRZs exact, most documents with every field right, lower p95."""
    from mlflow.tracking import MlflowClient

    client = client or MlflowClient()
    rows = []
    for _, run in data.runs.iterrows():
        if pd.isna(run.get("assert.mrz_lines")):
            continue
        f = run_figures(_predictions(client, run["run_id"]))
        rows.append({"configuration": run["label"], "distribution": run["distribution"],
                     "documents with MRZ": f["documents"], "MRZ exact": _count(f["mrz_exact"], f["documents"]),
                     "all fields exact": _count(f["fields_exact"], f["fields_scored"]),
                     "MRZ check digits valid": _count(f["mrz_valid"], f["documents"]), "failures": f["failures"],
                     "p50 ms": round(run["latency_p50"]), "p95 ms": round(run["latency_p95"]),
                     "SLA met": "yes" if run["sla_met"] else "no",
                     "_mrz": f["mrz_exact"], "_fields": f["fields_exact"], "_p95": run["latency_p95"]})
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows).sort_values(["distribution", "_mrz", "_fields", "_p95"],
                                           ascending=[True, False, False, True])
    return table.drop(columns=["_mrz", "_fields", "_p95"]).reset_index(drop=True)


def best_by_mrz(table: pd.DataFrame) -> pd.DataFrame:
    """The first row of each distribution in `mrz_table`'s order."""
    return table.groupby("distribution", sort=False).head(1)[["distribution", "configuration", "MRZ exact",
                                                              "all fields exact", "p95 ms", "SLA met"]]
