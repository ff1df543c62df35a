"""Corpus generation rate: 1 worker vs 2 workers on the same `clean` corpus, measured side by side.

Prints documents per second for each and their ratio. Run with `make bench-corpus`.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from corpus.generate import GenerateSpec, generate


def _rate(out: Path, n: int, workers: int, distribution: str) -> float:
    started = time.perf_counter()
    generate(GenerateSpec(out=out, n=n, seed=1, distributions=(distribution,)), workers=workers, progress=False)
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300, help="documents per measurement (default 300)")
    parser.add_argument("--distribution", default="clean", help="capture distribution (default clean)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cardflow-bench-"))
    try:
        one = _rate(tmp / "w1", args.n, 1, args.distribution)
        two = _rate(tmp / "w2", args.n, 2, args.distribution)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"corpus generation, {args.n} '{args.distribution}' documents (process start-up included)")
    print(f"  1 worker : {one:6.1f} docs/s")
    print(f"  2 workers: {two:6.1f} docs/s   ({two / one:.2f}x of 1 worker)")


if __name__ == "__main__":
    main()
