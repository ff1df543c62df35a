"""Running the preprocess + OCR prefix of a pipeline over many documents on a process pool."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from corpus.records import DocumentRef
from steps.catalog import Catalog, default_catalog
from steps.modelstore import ModelStore
from steps.records import OcrResult, StepFailure
from steps.runner import decode

_WORKER: dict = {}


def _use(catalog: Catalog, preprocess_id: str, ocr_id: str) -> None:
    _WORKER["pre"], _WORKER["ocr"] = catalog.get(preprocess_id), catalog.get(ocr_id)
    _WORKER["pre"].load()
    _WORKER["ocr"].load()


def _init(preprocess_id: str, ocr_id: str, store_root: str) -> None:
    """A pool worker: its own catalog, once, over the caller's model store."""
    _use(default_catalog(ModelStore(Path(store_root))), preprocess_id, ocr_id)


def _ocr_chunk(docs: Sequence[DocumentRef]) -> list[OcrResult | StepFailure]:
    return _WORKER["ocr"].run(_WORKER["pre"].run([decode(doc) for doc in docs]))


def ocr_documents(docs: Sequence[DocumentRef], preprocess_id: str, ocr_id: str, workers: int, catalog: Catalog,
                  desc: str = "ocr") -> list[OcrResult | StepFailure]:
    """OCR results in document order (failures as StepFailure), computed on `workers` processes."""
    chunks = [list(docs[k : k + 4]) for k in range(0, len(docs), 4)]
    out: list[OcrResult | StepFailure] = []
    with tqdm(total=len(docs), desc=desc, unit="doc", leave=False) as bar:
        if workers <= 1:
            _use(catalog, preprocess_id, ocr_id)
            for chunk in chunks:
                out.extend(_ocr_chunk(chunk))
                bar.update(len(chunk))
        else:
            with ProcessPoolExecutor(workers, initializer=_init,
                                     initargs=(preprocess_id, ocr_id, str((catalog.store or ModelStore()).root))) as pool:
                for result in pool.map(_ocr_chunk, chunks):
                    out.extend(result)
                    bar.update(len(result))
    return out
