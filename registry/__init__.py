"""CardFlow registry: step variants as versions of `cardflow.<step>.<model>` in the MLflow Model Registry,
aliases promoted through gates, and a loader that downloads, verifies and caches them.

    from registry import load
    ocr = load("ocr", "tesseract", alias="champion")

The names below are imported when first used (PEP 562), so a registered model loading its own code
(`registry.package`, `registry.pyfunc_model`) imports neither the registering code nor the generator it uses
for input examples.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"Loader": "registry.loader", "load": "registry.loader", "RegistryError": "registry.errors"}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'registry' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
