"""The corpus a run works on, from its parameters: a given corpus (checked to have the distributions asked
for) or one generated from (distributions, n, seed), made once and reused. Used by every entry point that
takes `corpus` / `distributions` / `n` / `seed` (sweep, run-config, profile, the registry's gates)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from common.params import ParameterError, is_default
from corpus.capture import get_preset
from corpus.errors import CorpusError
from corpus.generate import GenerateSpec, generate
from corpus.loaders import load
from corpus.records import Corpus

GENERATED_ROOT = Path("data/corpora")


def corpus_for(distributions: tuple[str, ...], n: int, seed: int, workers: int, root: Path = GENERATED_ROOT) -> Path:
    """The corpus generated for (distributions, n, seed), made once and reused."""
    out = root / f"n{n}-seed{seed}-{'-'.join(distributions)}"
    generate(GenerateSpec(out=out, n=n, seed=seed, distributions=distributions), workers=workers)
    return out


def resolve_corpus(corpus: str | Path | None, dists: tuple[str, ...], default_dists: Sequence[str], n: int, seed: int,
                   workers: int) -> tuple[Corpus, tuple[str, ...]]:
    """The corpus a run works on and its distributions: `corpus` loaded (all its distributions unless some
    are named, each of which it must have), else one generated from the named or default distributions."""
    if not is_default(corpus):
        path = Path(corpus)  # type: ignore[arg-type]
        if not path.exists():
            raise ParameterError(f"parameter corpus: {path} does not exist")
        loaded = load(path)
        dists = dists or loaded.distributions
        missing = [d for d in dists if d not in loaded.distributions]
        if missing:
            raise ParameterError(f"parameter distributions: corpus {path} has no {', '.join(missing)}; "
                                 f"it has: {', '.join(loaded.distributions)}")
        return loaded, tuple(dists)
    dists = dists or tuple(default_dists)
    for dist in dists:
        try:
            get_preset(dist)
        except CorpusError as exc:
            raise ParameterError(f"parameter distributions: {exc}") from exc
    return load(corpus_for(dists, n, seed, workers)), tuple(dists)
