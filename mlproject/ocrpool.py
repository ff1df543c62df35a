"""Running the preprocess + OCR prefix of a pipeline over many documents on a process pool."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from tqdm import tqdm

from corpus.records import DocumentRef
from steps.catalog import default_catalog
from steps.records import OcrResult, StepFailure
from steps.runner import decode

_WORKER: dict = {}


def _init(preprocess_id: str, ocr_id: str) -> None:
    catalog = default_catalog()
    _WORKER["pre"], _WORKER["ocr"] = catalog.get(preprocess_id), catalog.get(ocr_id)
    _WORKER["pre"].load()
    _WORKER["ocr"].load()


def _ocr_chunk(docs: Sequence[DocumentRef]) -> list[OcrResult | StepFailure]:
    return _WORKER["ocr"].run(_WORKER["pre"].run([decode(doc) for doc in docs]))


def ocr_documents(docs: Sequence[DocumentRef], preprocess_id: str, ocr_id: str, workers: int,
                  desc: str = "ocr") -> list[OcrResult | StepFailure]:
    """OCR results in document order (failures as StepFailure), computed on `workers` processes."""
    chunks = [list(docs[k : k + 4]) for k in range(0, len(docs), 4)]
    out: list[OcrResult | StepFailure] = []
    with tqdm(total=len(docs), desc=desc, unit="doc", leave=False) as bar:
        if workers <= 1:
            _init(preprocess_id, ocr_id)
            for chunk in chunks:
                out.extend(_ocr_chunk(chunk))
                bar.update(len(chunk))
        else:
            with ProcessPoolExecutor(workers, initializer=_init, initargs=(preprocess_id, ocr_id)) as pool:
                for result in pool.map(_ocr_chunk, chunks):
                    out.extend(result)
                    bar.update(len(result))
    return out
