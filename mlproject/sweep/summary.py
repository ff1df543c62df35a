"""What a finished sweep prints: the best configuration per distribution, the most robust configurations,
where the report is and how to browse the runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from analysis.sweep import best_per_distribution, load_sweep, robustness
from tracking.edge import client_for, tracking_uri

if TYPE_CHECKING:
    from mlproject.sweep import SweepResult


def print_summary(result: SweepResult, rows: int = 12) -> None:
    data = load_sweep(result.parent_run_id, client_for())
    print(f"\nsweep: {result.logged} runs logged, {result.skipped} already finished (skipped), "
          f"{result.wall_s:.0f} s; parent run {result.parent_run_id}")
    if result.search is not None:
        for dist, stages in result.search.stages.items():
            trail = " → ".join(f"{len(s.evaluated)} on {s.documents} docs" for s in stages)
            ranks = result.search.ranks(stages[-1].evaluated[0], dist)
            print(f"search halving, {dist}: {trail}; the winner ranked "
                  f"{', '.join('-' if r is None else str(r) for r in ranks)} at the stages")
        print(f"  {len(result.pruned)} pruned runs logged too (tag cardflow.search=pruned, with the stage and the "
              f"documents they saw); {sum(result.node_docs.values())} document-step computations")
    again = result.remeasured
    if again.chosen:
        verdicts = list(result.verdicts.values())
        print(f"latency: {len(again.chosen)} runs (uncertain or on a Pareto front) re-measured in {again.windows} "
              f"window{'s' * (again.windows != 1)}, {again.seconds:.0f} s, {len(again.settled)} settled; verdicts "
              + ", ".join(f"{verdicts.count(v)} {v}" for v in ("met", "uncertain", "missed")))
    print("\nBest configuration per distribution (surely within the SLA: its p95 interval under the budget):")
    print(best_per_distribution(data.runs).to_string(index=False))
    print("\nMost robust configurations (worst case across distributions):")
    print(robustness(data.runs).head(rows).to_string())
    if result.report_dir:
        print(f"\nReport: {result.report_dir / 'report.md'} (and report.html)")
    uri = tracking_uri()
    print(f"Browse the runs: mlflow ui --backend-store-uri {uri}" if not uri.startswith("http")
          else f"Browse the runs: {uri}")
    print("  (expand the parent run, group by cardflow.distribution, and compare accuracy vs latency_ms.p95 in the "
          "chart view: README, 'Comparing configurations in the MLflow UI')")
