"""OCR variants that find the machine-readable zone on the image and read it apart, at full resolution.

The page is read as by `tesseract:lstm-fast` (the classifier and the visual-zone readers need its text); the MRZ
is then located on the OCR input image itself (steps/mrz_band.py: morphology at several scales, groups of
parallel lines), each of its lines cut out level, scaled to a line height Tesseract reads well, and read as
one line with the MRZ alphabet only. The reading goes to `OcrResult.mrz`, one word per character with that
character's confidence, so the extractor knows which characters it may correct.

- `tesseract:band-fast` reads the lines with tessdata_fast's LSTM (digits and letters well, long filler runs
  badly), `tesseract:band-legacy` with the legacy engine (filler runs well, O / 0 and 5 / S worse).
- `tesseract:band-ensemble` reads every line with several (crop preprocessing × engine) readers and keeps, per
  line, the reading whose check digits pass, then the one most readers agree with, then the most confident
  (steps/mrz_vote.py): the cost of every extra reader is visible in its latency.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from common.icao import MRZ_ALPHABET
from steps.modelstore import ModelStore
from steps.mrz_band import Band, BandParams, line_crop, mrz_groups, text_lines
from steps.mrz_vote import LineReading, checks_pass, mrz_likeness, mrz_line_like, vote
from steps.ocr import TesseractOcr, TesseractParams
from steps.records import ImageRecord, Line, OcrResult, Word

ENGINES = {"lstm-fast": ("lstm-fast", 1), "lstm-standard": ("standard", 1), "legacy": ("standard", 0)}
CROPS = ("gray", "otsu", "clahe")


@dataclass(frozen=True)
class BandOcrParams(TesseractParams):
    engines: tuple[str, ...] = ("lstm-fast",)  # MRZ line readers: lstm-fast | lstm-standard | legacy
    # How a line is cut for each reader: "<preparation>@<line height px>", preparation gray | otsu | clahe (the
    # height defaults to band.line_height). Readers differ most by the scale they see the line at.
    crops: tuple[str, ...] = ("gray",)
    band: BandParams = field(default_factory=BandParams)
    page_max_side: int = 2000  # the page pass reads a larger image scaled down to this (px; 0: never)

    def __post_init__(self) -> None:
        unknown = [e for e in self.engines if e not in ENGINES]
        for crop in self.crops:
            how, _, height = crop.partition("@")
            if how not in CROPS or (height and not (height.isdigit() and 12 <= int(height) <= 200)):
                unknown.append(crop)
        if unknown or not self.engines or not self.crops:
            raise ValueError(f"MRZ band readers: unknown or no engines / crops {unknown}; engines: "
                             f"{', '.join(ENGINES)}; crops: <{' | '.join(CROPS)}>[@<height 12-200 px>]")

    def crop_spec(self, crop: str) -> tuple[str, int]:
        """A crop's preparation and line height."""
        how, _, height = crop.partition("@")
        return how, int(height) if height else self.band.line_height


def prepare(crop: np.ndarray, how: str) -> np.ndarray:
    """A line crop prepared for a reader: as cut (gray), binarised (Otsu) or contrast-equalised (CLAHE)."""
    if how == "otsu":
        return cv2.threshold(cv2.GaussianBlur(crop, (3, 3), 0), 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[1]
    if how == "clahe":
        return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(2, 16)).apply(crop)
    return crop


class TesseractBand(TesseractOcr):
    """The page as `tesseract:<data>`, and the MRZ located on the image and read line by line at full
    resolution (`OcrResult.mrz`)."""

    def __init__(self, version: str, params: BandOcrParams, description: str, store: ModelStore | None = None):
        super().__init__(version, params, description, store)

    def model_files(self):
        files = super().model_files()
        for engine in self.params.engines:
            data = ENGINES[engine][0]
            files[f"mrz/{data}/eng.traineddata"] = self.store.root / f"tessdata/{data}/eng.traineddata"
        return files

    def _thread_setup(self) -> None:
        import tesserocr

        super()._thread_setup()
        readers = {}
        for engine in self.params.engines:
            data, oem = ENGINES[engine]
            tessdata = self.store.path(f"tessdata/{data}/eng.traineddata").parent
            api = tesserocr.PyTessBaseAPI(path=str(tessdata) + os.sep, lang="eng", oem=oem,
                                          psm=tesserocr.PSM.SINGLE_LINE)
            api.SetVariable("tessedit_char_whitelist", MRZ_ALPHABET)
            api.SetVariable("load_system_dawg", "0")
            api.SetVariable("load_freq_dawg", "0")
            readers[engine] = api
        self._local.readers = readers

    def _engines(self) -> list:
        return [*super()._engines(), *self._readers().values()]

    def _readers(self) -> dict:
        if getattr(self._local, "readers", None) is None:
            self._thread_setup()
        return self._local.readers

    def _read_line(self, crop: np.ndarray, engine: str) -> tuple[str, tuple[float, ...]]:
        """One line crop read by one engine: its characters (no spaces) and each one's confidence."""
        import tesserocr

        api = self._readers()[engine]
        api.SetImage(Image.fromarray(crop))
        api.Recognize()
        chars, confs = [], []
        level = tesserocr.RIL.SYMBOL
        for symbol in tesserocr.iterate_level(api.GetIterator(), level):
            try:
                text = symbol.GetUTF8Text(level)
            except RuntimeError:  # "No text returned": nothing readable in the crop
                continue
            if text and text.strip():
                for char in text.strip():
                    chars.append(char)
                    confs.append(float(symbol.Confidence(level)))
        api.Clear()
        return "".join(chars), tuple(confs)

    def _readers_in_order(self) -> list[tuple[str, str]]:
        """(crop, engine) pairs: every engine on the first crop first."""
        return [(crop, engine) for crop in self.params.crops for engine in self.params.engines]

    def read_mrz(self, image: np.ndarray) -> tuple[list[Band], list[LineReading]]:
        """The MRZ's line bands and the chosen reading of each (empty when no group of bands reads as one).

        Candidate groups are scouted with the first reader until one reads as an MRZ format; the group that
        reads most like an MRZ keeps its lines that look like MRZ lines. Those are read by the other readers,
        one crop at a time, and voted on; once every check digit of the vote passes, the rest of the readers
        are not run, nor once a crop's readers left the vote as it was (the ensemble costs more only where
        the MRZ is hard)."""
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        readers = self._readers_in_order()
        best: tuple[tuple[int, int], list[tuple[Band, LineReading]]] | None = None
        for group in mrz_groups(text_lines(gray, self.params.band), gray.shape[0], self.params.band):
            scouted = [(band, self._reading(gray, band, *readers[0])) for band in group]
            score = mrz_likeness([r.text for _, r in scouted])
            if score > (0, 0) and (best is None or score > best[0]):
                best = (score, scouted)
            if score[0]:
                break
        if best is None:
            return [], []
        kept = [(band, known) for band, known in best[1] if mrz_line_like(known.text)]
        readings = [[known] for _, known in kept]
        chosen = vote(readings)
        before: list[str] | None = None  # the vote after the crop before the last
        for k, (crop, engine) in enumerate(readers[1:], start=1):
            if crop != readers[k - 1][0]:  # a crop's readers are all in: enough?
                texts = [r.text for r in chosen]
                if checks_pass(chosen) or texts == before:
                    break
                before = texts
            for per_line, (band, _) in zip(readings, kept, strict=True):
                per_line.append(self._reading(gray, band, crop, engine))
            chosen = vote(readings)
        return [band for band, _ in kept], chosen

    def _reading(self, gray: np.ndarray, band: Band, crop: str, engine: str) -> LineReading:
        how, height = self.params.crop_spec(crop)
        text, confs = self._read_line(prepare(_cut(gray, band, height), how), engine)
        return LineReading(text, confs, f"{crop}/{engine}")


    def process(self, item: ImageRecord) -> OcrResult:
        page = self._page(item)
        bands, chosen = self.read_mrz(item.image)
        lines = tuple(_as_line(band, reading) for band, reading in zip(bands, chosen, strict=True) if reading.text)
        return OcrResult(page.doc_id, page.lines, page.image_size, lines)


    def _page(self, item: ImageRecord) -> OcrResult:
        """The page pass, on the image scaled down to `page_max_side` if larger (its boxes scaled back): the MRZ
        is read at full resolution anyway, and the rest of a page reads as well at that size."""
        longest = max(item.image.shape[:2])
        limit = self.params.page_max_side
        if not limit or longest <= limit:
            return super().process(item)
        factor = limit / longest
        small = cv2.resize(item.image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        page = super().process(ImageRecord(item.doc_id, small, item.applied))
        height, width = item.image.shape[:2]
        return OcrResult(page.doc_id, tuple(_scaled(line, 1 / factor) for line in page.lines), (width, height))


def _scaled(line: Line, factor: float) -> Line:
    def box(b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        return (round(b[0] * factor), round(b[1] * factor), round(b[2] * factor), round(b[3] * factor))

    return Line(line.text, line.confidence, box(line.box), tuple(Word(w.text, w.confidence, box(w.box))
                                                                 for w in line.words))


def _cut(gray: np.ndarray, band: Band, height: int) -> np.ndarray:
    return line_crop(gray, band, height)


def _as_line(band: Band, reading: LineReading) -> Line:
    """A chosen reading as a Line: one word per character, boxes spread evenly along the band's box."""
    x0, y0, x1, y1 = band.box()
    n = max(len(reading.text), 1)
    words = tuple(Word(char, round(conf, 2), (int(x0 + (x1 - x0) * k / n), y0, int(x0 + (x1 - x0) * (k + 1) / n), y1))
                  for k, (char, conf) in enumerate(zip(reading.text, reading.confidences, strict=True)))
    mean = float(np.mean(reading.confidences)) if reading.confidences else 0.0
    return Line(reading.text, round(mean, 2), (x0, y0, x1, y1), words)  # rounded as the wire writes them


def variants(store: ModelStore | None = None) -> list[TesseractBand]:
    """The MRZ-band OCR variants."""
    return [
        TesseractBand("band-fast", BandOcrParams(data="lstm-fast", engines=("lstm-fast",)),
                      "tessdata_fast LSTM page; MRZ located at full resolution, each line read by LSTM fast", store),
        TesseractBand("band-legacy", BandOcrParams(data="lstm-fast", engines=("legacy",)),
                      "tessdata_fast LSTM page; MRZ located at full resolution, each line read by the legacy "
                      "engine", store),
        TesseractBand("band-ensemble", BandOcrParams(data="lstm-fast", engines=("lstm-fast", "legacy"),
                                                     crops=("gray@36", "gray@44", "otsu@36", "otsu@44")),
                      "tessdata_fast LSTM page; MRZ lines read by 4 readers (gray / Otsu × LSTM fast / legacy), "
                      "the reading whose check digits pass wins", store),
    ]
