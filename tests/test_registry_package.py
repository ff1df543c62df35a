"""What a registered version holds, without a server: every catalog variant's variant.json, written as
`register` writes it (JSON), builds back into the same variant from its staged store."""

from __future__ import annotations

import json
from pathlib import Path

from registry.package import build_variant, stage_store, variant_spec
from steps.catalog import default_catalog
from steps.modelstore import ModelStore


def test_every_catalog_variant_builds_back_from_its_registered_spec(trained_store: ModelStore, tmp_path: Path) -> None:
    """Tuple parameters (the band readers' crops, engines and kernels) come back from JSON as lists: that is not
    a different variant (it once refused ocr/tesseract:band-ensemble: 'Register it again from this code')."""
    catalog = default_catalog(trained_store)
    tupled = []
    for k, variant in enumerate(catalog):
        staged = tmp_path / f"v{k}"
        spec = json.loads(json.dumps(variant_spec(variant, stage_store(variant, trained_store, staged))))
        built = build_variant(spec, staged)
        assert built.id == variant.id and built.fingerprint() == variant.fingerprint(), variant.id
        if json.loads(json.dumps(variant.params_dict())) != variant.params_dict():
            tupled.append(variant.id)
    assert "ocr/tesseract:band-ensemble" in tupled  # the case this test is for is in the catalog
    spec = json.loads(json.dumps(variant_spec(catalog.get("ocr/tesseract:band-ensemble"), {})))
    spec["params"]["crops"] = ["gray@36"]
    try:
        build_variant(spec, tmp_path / "v0")
    except Exception as exc:  # noqa: BLE001 — asserted below
        assert "this code makes the variant with parameters" in str(exc) and "Register it again" in str(exc)
    else:
        raise AssertionError("a version whose parameters differ from the code's was accepted")
