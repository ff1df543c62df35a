"""Every variant's accuracy and mean latency on one corpus: the default configuration with one step
swapped at a time (one `cardflow sweep` per step, so every number is an MLflow run).

    python bench/variant_table.py --corpus data/eval-clean-200 [--workers 2]
"""

from __future__ import annotations

import argparse

from tabulate import tabulate

from mlproject.sweep import build_request, run_sweep
from steps.base import STEPS
from steps.catalog import default_catalog
from steps.spec import load_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    catalog = default_catalog()
    spec = load_spec(catalog)
    default = spec.default
    rows = []
    for step in STEPS:
        grid = {s: getattr(default, s) for s in STEPS}
        grid[step] = ",".join(catalog.ids(step))
        request = build_request(catalog=catalog, spec=spec, corpus=args.corpus, distributions=None,
                                workers=args.workers, name=f"variants-{step}", **grid)
        result = run_sweep(request, catalog, write_report=False)
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        for (config_id, _), run_id in sorted(result.runs.items()):
            m = client.get_run(run_id).data.metrics
            variant = config_id.split("|")[STEPS.index(step)]
            rows.append([variant, f"{m['accuracy'] * 100:.1f}", f"{m.get('l1_accuracy', 0) * 100:.1f}",
                         f"{m.get('l2_accuracy', 0) * 100:.1f}", f"{m.get('field.document_number.exact', 0) * 100:.1f}",
                         f"{m.get('assert.mrz_lines', 0) * 100:.1f}", f"{m.get('cer', 0):.3f}",
                         f"{m[f'step.{step}.latency_ms.p50'] / request.batch_size:.1f}",
                         f"{m['latency_ms.p50'] / request.batch_size:.0f}"])
    print(tabulate(rows, headers=["variant (others: default)", "accuracy %", "L1 %", "L2 %", "doc no. %", "MRZ lines %",
                                  "CER", "step ms/doc", "e2e ms/doc"]))


if __name__ == "__main__":
    main()
