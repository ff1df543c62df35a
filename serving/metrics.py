"""CardFlow's Prometheus metrics, defined once (KServe's own `request_*_seconds` histograms stay beside them).

Names follow the Prometheus conventions: prefix `cardflow_`, base units (seconds), `_total` on counters, and
low fixed label sets — `step` (preprocess, ocr, classify, extract, or `pipeline` for the router), `model`
(the registered model), `version`, `alias`, `code` (HTTP status). Never a request or document id.

| metric | type | labels | what |
|---|---|---|---|
| cardflow_requests_total | counter | step, model, version, alias, code | requests answered, by status |
| cardflow_request_duration_seconds | histogram | step, model, version, alias | a request at its server (queue + compute + codec) |
| cardflow_step_duration_seconds | histogram | step | each step as the router saw it (HTTP included) |
| cardflow_queue_duration_seconds | histogram | step, model, version, alias | a request's wait for its batch |
| cardflow_compute_duration_seconds | histogram | step, model, version, alias | one `run(batch)` call |
| cardflow_batch_size | histogram | step, model, version, alias | documents per `run(batch)` call |
| cardflow_in_flight_requests | gauge | step | requests being served now |
| cardflow_sla_violations_total | counter | step | requests slower than the step's budget (`pipeline`: end to end) |
| cardflow_sla_budget_seconds | gauge | step | the budget a server counts violations against (alerts compare p95 to it) |
| cardflow_model_info | gauge (1) | step, model, version, alias | what is served |
| cardflow_documents_total | counter | step, model, version, alias, outcome | documents out: ok / failed |
| cardflow_mrz_checks_total | counter | step, model, version, alias, result | extracted MRZs: valid / invalid / absent |
| cardflow_field_format_valid_ratio | histogram | step, model, version, alias | share of format-valid fields per document |
| cardflow_ocr_confidence | histogram | step, model, version, alias | mean OCR confidence per document (0–1) |
| cardflow_classifier_confidence | histogram | step, model, version, alias | top class score per document (0–1) |

Latency buckets hold every SLA budget (configs/pipeline.yaml `sla:`) as a bucket edge, so "over budget" is
an exact bucket boundary in `histogram_quantile` and in the alert rules.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

SERVED = ("step", "model", "version", "alias")
BASE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# The SLA budgets of configs/pipeline.yaml (50 ms classify … 3 s end to end) as bucket edges; a test checks
# that every budget of the spec is one.
SLA_BUDGETS_S = (0.05, 0.25, 0.4, 2.5, 3.0)
UNIT_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


def latency_buckets(budgets_s: Iterable[float] = SLA_BUDGETS_S) -> tuple[float, ...]:
    return tuple(sorted(set(BASE_BUCKETS) | set(budgets_s)))


BUCKETS = latency_buckets()

REQUESTS = Counter("cardflow_requests", "Requests answered, by HTTP status code", [*SERVED, "code"])
REQUEST_SECONDS = Histogram("cardflow_request_duration_seconds", "A request at its server: queue, compute and codec",
                            SERVED, buckets=BUCKETS)
STEP_SECONDS = Histogram("cardflow_step_duration_seconds", "Each step of the pipeline as the router saw it "
                         "(HTTP included)", ["step"], buckets=BUCKETS)
QUEUE_SECONDS = Histogram("cardflow_queue_duration_seconds", "A request's wait before its batch ran", SERVED,
                          buckets=BUCKETS)
COMPUTE_SECONDS = Histogram("cardflow_compute_duration_seconds", "One run(batch) call of the step's variant",
                            SERVED, buckets=BUCKETS)
BATCH_SIZE = Histogram("cardflow_batch_size", "Documents per run(batch) call", SERVED,
                       buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64))
IN_FLIGHT = Gauge("cardflow_in_flight_requests", "Requests being served now", ["step"])
SLA_VIOLATIONS = Counter("cardflow_sla_violations", "Requests slower than their budget (a step server: its step's; "
                         "the router: `pipeline`, end to end)", ["step"])
SLA_BUDGET = Gauge("cardflow_sla_budget_seconds", "The SLA budget this server counts violations against", ["step"])
MODEL_INFO = Gauge("cardflow_model_info", "The version served (1 for the one being served)", SERVED)
DOCUMENTS = Counter("cardflow_documents", "Documents out of a step, by outcome (ok / failed)", [*SERVED, "outcome"])
MRZ_CHECKS = Counter("cardflow_mrz_checks", "Extracted MRZs by check-digit result (valid / invalid / absent)",
                     [*SERVED, "result"])
FIELD_FORMAT = Histogram("cardflow_field_format_valid_ratio", "Share of a document's fields in a valid format",
                         SERVED, buckets=UNIT_BUCKETS)
OCR_CONFIDENCE = Histogram("cardflow_ocr_confidence", "Mean OCR confidence of a document (0-1)", SERVED,
                           buckets=UNIT_BUCKETS)
CLASSIFIER_CONFIDENCE = Histogram("cardflow_classifier_confidence", "Top class score of a document (0-1)", SERVED,
                                  buckets=UNIT_BUCKETS)


def set_model_info(step: str, model: str, version: str, alias: str, previous: tuple[str, ...] | None = None) -> None:
    """Mark the served version (1) and drop the one it replaces."""
    if previous:
        with contextlib.suppress(KeyError):
            MODEL_INFO.remove(*previous)
    MODEL_INFO.labels(step, model, version, alias).set(1)


def initialise(step: str, labels: tuple[str, ...]) -> None:
    """Create the outcome series of a newly served version at 0, so a ratio over them (valid MRZs, failed documents)
    is 0 rather than absent until the first document of each kind."""
    for outcome in ("ok", "failed"):
        DOCUMENTS.labels(*labels, outcome)
    if step == "extract":
        for result in ("valid", "invalid", "absent"):
            MRZ_CHECKS.labels(*labels, result)
