"""configs/prices.yaml, typed, and the cost of profiled work: cores × wall time × the price per core-hour."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from common.config import PositiveFloat, load_file

PRICES = Path(__file__).resolve().parent.parent / "configs" / "prices.yaml"


@dataclass(frozen=True)
class Prices:
    """configs/prices.yaml: what one core costs for an hour, in which currency, and where that figure comes from."""

    price_per_core_hour: PositiveFloat
    currency: str
    source: str = ""


def load_prices(path: Path = PRICES) -> Prices:
    """The prices file, typed and checked (a ConfigError names the file and the key)."""
    prices = load_file(Prices, path)
    return dataclasses.replace(prices, source=" ".join(prices.source.split()))


def cost_per_1k_docs(cores: int, wall_s: float, documents: int, price_per_core_hour: float) -> float:
    """cores × wall time × price per core-hour, per 1,000 documents."""
    return cores * (wall_s / documents) * 1000.0 / 3600.0 * price_per_core_hour
