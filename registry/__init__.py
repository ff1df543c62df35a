"""CardFlow registry: step variants as versions of `cardflow.<step>.<model>` in the MLflow Model Registry,
aliases promoted through gates, and a loader that downloads, verifies and caches them.

    from registry import load
    ocr = load("ocr", "tesseract", alias="champion")
"""

from registry.loader import Loader, load
from registry.register import RegistryError

__all__ = ["Loader", "RegistryError", "load"]
