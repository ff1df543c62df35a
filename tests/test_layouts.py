"""Issuer layouts: the committed file is what the corpus builds, the schema round-trips and refuses malformed
files by name and key, and the extractors and the keyword classifier are driven by the file (a made-up
issuer, plugged in through the model store, is read with its own labels and number pattern)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from corpus.extract_layouts import build, render
from corpus.fonts import mrz_font_name
from steps.classify import KeywordClassifier, KeywordParams
from steps.errors import StepError
from steps.extract import IssuerLayouts, LabelRules, LabelRulesParams, layouts_file, match_label, read_number
from steps.modelstore import ModelStore
from steps.records import Classification, ExtractInput, Extraction, Line, OcrResult, Word
from tests.conftest import ROOT

COMMITTED = ROOT / "configs" / "layouts" / "synthetic.json"


def _synthetic() -> dict:
    return json.loads(COMMITTED.read_text(encoding="utf-8"))


def test_the_committed_file_is_what_the_corpus_builds() -> None:
    assert mrz_font_name() == "OCR-B", "the MRZ ink ends are measured in OCR-B: install fonts-ocr-b (make test)"
    assert COMMITTED.read_text(encoding="utf-8") == render(build()), (
        "configs/layouts/synthetic.json is stale: python -m corpus.extract_layouts --out "
        "configs/layouts/synthetic.json")


def test_the_schema_round_trips() -> None:
    data = _synthetic()
    layouts = IssuerLayouts.from_json(data, "synthetic.json")
    assert layouts.to_json() == data
    assert IssuerLayouts.from_json(layouts.to_json()) == layouts
    assert layouts.codes == ("AUR", "NRV", "ESL", "VLM", "KSN")  # the file's order, kept
    assert layouts.l1_classes == ("id_card", "passport", "driving_licence")


def _write(tmp_path: Path, data: dict, name: str = "layouts.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_misspelt_key_is_refused_naming_the_file_and_the_key(tmp_path: Path) -> None:
    data = _synthetic()
    data["issuers"][1]["lables"] = data["issuers"][1].pop("labels")
    path = _write(tmp_path, data, "typo.json")
    with pytest.raises(StepError, match=r"typo\.json: key 'issuers\[1\]\.lables': unknown key"):
        IssuerLayouts.load(path)


def test_a_missing_or_mistyped_key_is_refused_naming_the_file_and_the_key(tmp_path: Path) -> None:
    data = _synthetic()
    del data["templates"][2]["mrz"]
    with pytest.raises(StepError, match=r"missing\.json: key 'templates\[2\]\.mrz': missing"):
        IssuerLayouts.load(_write(tmp_path, data, "missing.json"))
    data = _synthetic()
    data["templates"][0]["grid"]["pitch"] = "62"
    with pytest.raises(StepError, match=r"key 'templates\[0\]\.grid\.pitch': expected an integer"):
        IssuerLayouts.load(_write(tmp_path, data))
    data = _synthetic()
    del data["issuers"][0]["cap_bands"]["value"]["27"]
    with pytest.raises(StepError, match=r"bands\.json: key 'issuers\[0\]\.cap_bands\.value\.27': missing"):
        IssuerLayouts.load(_write(tmp_path, data, "bands.json"))
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(StepError, match=r"broken\.json: cannot be read as JSON"):
        IssuerLayouts.load(tmp_path / "broken.json")


def test_layout_names_are_plain_file_names() -> None:
    assert layouts_file("synthetic") == "extract/layouts/synthetic.json"
    with pytest.raises(StepError, match="not a plain file name"):
        layouts_file("../../etc/passwd")


# ── a made-up issuer, plugged in as just another layouts file ──────────────────────────────────────────


def _with_zedland() -> dict:
    """The synthetic layouts plus ZZZ: its own name, titles, labels and number patterns."""
    data = _synthetic()
    aur = data["issuers"][0]
    labels = {"surname": "Zunamo", "given_names": "Vornazo", "sex": "Zexo", "nationality": "Zitizo",
              "date_of_birth": "Naskazo", "document_number": "Numerazyx", "date_of_expiry": "Validazo"}
    data["issuers"].append(copy.deepcopy(aur) | {
        "code": "ZZZ", "name": "ZEDDIC REPUBLIC OF ZEDLAND",
        "titles": {"id_card": "ZEDCARD", "passport": "ZEDPASS", "driving_licence": "ZEDDRIVE"},
        "title_keywords": {"id_card": ["ZEDCARD"], "passport": ["ZEDPASS"], "driving_licence": ["ZEDDRIVE"]},
        "labels": [[name, label] for name, label in labels.items()],
        "doc_number": "LL999999", "id_number": "LL999999", "dl_number": "LLL9999", "personal_number": "",
        "extra_fields": {},
    })
    return data


@pytest.fixture()
def zedland_store(tmp_path: Path) -> ModelStore:
    store = ModelStore(tmp_path / "store")
    store.put(layouts_file("zedland"), _write(tmp_path, _with_zedland(), "zedland.json"), "test: synthetic + ZZZ")
    return store


def _phrase(text: str, x: int, bottom: int, height: int) -> Line:
    words, left = [], x
    for part in text.split():
        words.append(Word(part, 95.0, (left, bottom - height, left + int(len(part) * height * 0.6), bottom)))
        left = words[-1].box[2] + int(0.35 * height)
    box = (words[0].box[0], bottom - height, words[-1].box[2], bottom)
    return Line(text, 95.0, box, tuple(words))


def _zedland_card() -> OcrResult:
    """Two labels of a ZZZ identity card where the template puts them (row 0: surname; row 3, second column:
    the document number, as the OCR misread it), each value below its label."""
    lines = [_phrase("Zunamo", 285, 93, 12), _phrase("ZOLTANIK", 287, 124, 20),
             _phrase("Numerazyx", 625, 279, 12), _phrase("KM12345G", 627, 310, 20)]
    return OcrResult("zzz", tuple(lines), (1000, 630))


def _extract(variant: LabelRules) -> Extraction:
    [result] = variant.run([ExtractInput(_zedland_card(), Classification("zzz", "id_card", l2="ZZZ.id_card"))])
    assert isinstance(result, Extraction), result
    return result


def test_a_made_up_issuer_is_read_with_its_own_labels_and_number_pattern(zedland_store: ModelStore) -> None:
    zedland = LabelRules("v1", LabelRulesParams(layouts="zedland"), "", zedland_store)
    assert _extract(zedland).fields == {"surname": "ZOLTANIK", "document_number": "KM123456"}  # G → 6: LL999999
    synthetic = LabelRules("v1", LabelRulesParams(), "", zedland_store)
    assert _extract(synthetic).fields == {}  # the synthetic issuers have no such labels
    layouts = zedland.layouts
    assert match_label("Zunamo", 0.34, layouts.label_keys, "ZZZ") == ("surname", 0.0)
    assert match_label("Zunamo", 0.34, synthetic.layouts.label_keys, "ZZZ") is None
    assert read_number(["KM12345G"], "document_number", "id_card", "ZZZ", layouts) == "KM123456"
    assert zedland.fingerprint() != synthetic.fingerprint()  # the file's sha256 is part of it


def test_the_keyword_classifier_reads_the_same_file(zedland_store: ModelStore) -> None:
    keywords = KeywordClassifier("l2", KeywordParams(layouts="zedland"), "", zedland_store)
    result = keywords.run([OcrResult("zzz", (_phrase("ZEDDIC REPUBLIC OF ZEDLAND ZEDPASS", 30, 40, 19),),
                                     (1250, 880))])[0]
    assert isinstance(result, Classification)
    assert (result.l1, result.l2) == ("passport", "ZZZ.passport")
    assert list(result.l2_scores)[-3:] == ["ZZZ.id_card", "ZZZ.passport", "ZZZ.driving_licence"]


def test_importing_the_steps_builds_no_table_and_opens_no_file() -> None:
    """`import steps.extract` (and steps.classify) measures no font, reads no layouts file, imports no corpus."""
    code = """
import builtins, io, sys
opened = []
real_open = builtins.open
def spy(file, *args, **kwargs):
    opened.append(str(file))
    return real_open(file, *args, **kwargs)
builtins.open = io.open = spy
import steps.extract, steps.classify
from steps.extract.layouts import IssuerLayouts
print(opened)
print(sorted(m for m in sys.modules if m.split('.')[0] in ('corpus', 'PIL', 'matplotlib')))
print(sorted(k for k, v in vars(IssuerLayouts).items() if type(v).__name__ == "cached_property"))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    opened, modules, cached = done.stdout.splitlines()
    assert opened == "[]" and modules == "[]"
    assert "label_keys" in cached and "numbered" in cached  # built on first use, per layouts object


def test_the_projects_store_follows_a_regenerated_layouts_file_a_registered_store_does_not(tmp_path, monkeypatch):
    from steps import modelstore
    from steps.modelstore import ModelStore, sha256_file

    rel = "extract/layouts/synthetic.json"
    source = tmp_path / "synthetic.json"
    source.write_text('{"v": 1}\n')
    monkeypatch.setitem(modelstore.PACKAGED, rel, (lambda: source, "test layouts"))
    project, registered = ModelStore(tmp_path / "project"), ModelStore(tmp_path / "registered", follow_sources=False)
    for store in (project, registered):
        assert store.path(rel).read_text() == '{"v": 1}\n'
    source.write_text('{"v": 2}\n')  # regenerated: python -m corpus.extract_layouts
    assert project.path(rel).read_text() == '{"v": 2}\n'
    assert project.files()[rel]["sha256"] == sha256_file(source)
    assert registered.path(rel).read_text() == '{"v": 1}\n'  # what was registered stays
