"""Tests of corpus.loaders: CardFlow's own format (round trip, verification, corrupt inputs), plain
folders, and the real MIDV-2020 / MIDV-500 / PassportEye samples under ../shared/data/real-dev."""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from corpus.errors import CorpusError
from corpus.format import FORMAT_NAME, dumps_line, image_relpath, label_record, manifest_sha256, sha256_file
from corpus.loaders import FORMATS, iso_date, load, mrz_date
from corpus.records import GroundTruth

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-dev"
MIDV2020 = REAL / "midv2020_templates_sidtd"
MIDV500 = REAL / "midv500_sample"
PASSPORTEYE = REAL / "passporteye_testdata"
# The real samples must be there (CI has ../shared beside the clone): a missing folder fails, never skips.
real = pytest.mark.usefixtures("real_dev")

# (distribution, index, (width, height), suffix, colour)
SPECS = [
    ("clean", 0, (40, 30), ".png", (200, 10, 10)),
    ("clean", 1, (36, 24), ".jpg", (10, 200, 10)),
    ("hard", 0, (50, 20), ".jpg", (10, 10, 200)),
]


def _truth(index: int, width: int, height: int) -> GroundTruth:
    return GroundTruth(
        l1="id_card",
        l2="AAA.id_card",
        issuer="AAA",
        fields={"surname": f"DOE{index}", "given_names": "JANE", "date_of_birth": "1990-01-02"},
        mrz_lines=("I<AAA" + "<" * 25, "9001027F3001011AAA" + "<" * 12, "DOE<<JANE" + "<" * 21),
        corners=((1.0, 2.0), (width - 1.0, 2.5), (width - 1.5, height - 1.0), (0.5, height - 2.0)),
    )


def _write_corpus(root: Path) -> Path:
    """A 3-document corpus in CardFlow's own format, written by hand."""
    lines, files = [], {}
    for dist, index, (w, h), suffix, colour in SPECS:
        rel = image_relpath(dist, index, suffix)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (w, h), colour).save(root / rel)
        files[rel] = sha256_file(root / rel)
        record = label_record(distribution=dist, index=index, file=rel, truth=_truth(index, w, h),
                              capture={"blur": 0.5}, width=w, height=h)
        lines.append(dumps_line(record))
    (root / "labels.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    files["labels.jsonl"] = sha256_file(root / "labels.jsonl")
    manifest = {"format": FORMAT_NAME, "seed": 7, "files": files, "manifest_sha256": manifest_sha256(files)}
    (root / "corpus.json").write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    return root


@pytest.fixture
def own(tmp_path: Path) -> Path:
    return _write_corpus(tmp_path / "corpus")


def _labels(root: Path) -> list[str]:
    return (root / "labels.jsonl").read_text(encoding="utf-8").splitlines()


# --------------------------------------------------------------------------------------------- own format
def test_own_format_round_trip(own: Path) -> None:
    corpus = load(own)
    assert corpus.format == "cardflow"
    assert load(own, format="cardflow").documents == corpus.documents
    assert [d.doc_id for d in corpus] == ["clean-000000", "clean-000001", "hard-000000"]
    assert corpus.distributions == ("clean", "hard")
    assert [d.distribution for d in corpus] == ["clean", "clean", "hard"]
    manifest = json.loads((own / "corpus.json").read_text(encoding="utf-8"))
    assert dict(corpus.manifest) == manifest
    assert corpus.manifest_hash == manifest["manifest_sha256"]
    for doc, (_, index, (w, h), suffix, colour) in zip(corpus, SPECS, strict=True):
        assert doc.truth == _truth(index, w, h)
        assert doc.truth.corners == ((1.0, 2.0), (w - 1.0, 2.5), (w - 1.5, h - 1.0), (0.5, h - 2.0))
        assert dict(doc.truth.fields) == {"surname": f"DOE{index}", "given_names": "JANE",
                                          "date_of_birth": "1990-01-02"}
        assert doc.path.suffix == suffix
        assert doc.meta == {"index": index, "width": w, "height": h, "capture": {"blur": 0.5}}
        image = doc.read_image()
        assert image.shape == (h, w, 3) and image.dtype == np.uint8
        assert np.abs(image.reshape(-1, 3).mean(axis=0) - colour).max() < 8
    assert [d.doc_id for d in corpus.select(distribution="hard")] == ["hard-000000"]


def test_verify_passes_then_names_a_tampered_image(own: Path) -> None:
    assert len(load(own, verify=True)) == 3
    tampered = own / image_relpath("clean", 1, ".jpg")
    Image.new("RGB", (36, 24), (0, 0, 0)).save(tampered)
    assert len(load(own)) == 3  # without verify the content is not checked
    with pytest.raises(CorpusError, match="sha256 mismatch") as err:
        load(own, verify=True)
    assert str(tampered) in str(err.value)


def test_verify_names_an_image_not_listed_in_the_manifest(own: Path) -> None:
    manifest = json.loads((own / "corpus.json").read_text(encoding="utf-8"))
    del manifest["files"]["images/hard/hard-000000.jpg"]
    (own / "corpus.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(CorpusError, match="hard-000000.jpg: not listed"):
        load(own, verify=True)


def test_malformed_json_line_names_file_and_line(own: Path) -> None:
    lines = _labels(own)
    lines[1] = lines[1][:-5]
    (own / "labels.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="malformed JSON") as err:
        load(own)
    assert f"{own / 'labels.jsonl'}:2" in str(err.value)


def test_line_missing_a_key_names_file_line_and_key(own: Path) -> None:
    lines = _labels(own)
    record = json.loads(lines[2])
    del record["truth"]
    lines[2] = dumps_line(record)
    (own / "labels.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"labels\.jsonl:3: missing key\(s\) truth"):
        load(own)


@pytest.mark.parametrize(
    ("change", "message"),
    [({"file": 5}, r"labels\.jsonl:2: invalid record"),
    ({"truth": {"corners": [[0, 0], [1, 1], [2, 2]]}}, r"labels\.jsonl:2: invalid 'truth' \('corners' must be four"),
     ({"id": "clean-000000"}, r"labels\.jsonl:2: duplicate document id 'clean-000000'"),
     ({"file": "../elsewhere.jpg"}, r"labels\.jsonl:2: file .*elsewhere\.jpg lies outside the corpus")],
    ids=["file-not-string", "three-corners", "duplicate-id", "outside-root"],
)
def test_invalid_record_names_file_and_line(own: Path, change: dict[str, object], message: str) -> None:
    lines = _labels(own)
    lines[1] = dumps_line({**json.loads(lines[1]), **change})
    (own / "labels.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=message):
        load(own)


def test_listed_image_absent_names_line_and_file(own: Path) -> None:
    gone = own / image_relpath("clean", 1, ".jpg")
    gone.unlink()
    with pytest.raises(CorpusError, match=r"labels\.jsonl:2: image file not found") as err:
        load(own)
    assert str(gone) in str(err.value)


def test_truncated_jpeg_raises_on_read_naming_the_file(own: Path) -> None:
    path = own / image_relpath("hard", 0, ".jpg")
    path.write_bytes(path.read_bytes()[:200])
    doc = load(own).documents[2]
    assert doc.path == path
    with pytest.raises(CorpusError) as err:
        doc.read_image()
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda root: (root / "corpus.json").unlink(), r"corpus\.json: manifest not found"),
        (lambda root: (root / "labels.jsonl").unlink(), r"labels\.jsonl: labels file not found"),
        (lambda root: (root / "labels.jsonl").write_text("\n\n"), r"labels\.jsonl: labels file is empty"),
        (lambda root: (root / "corpus.json").write_text("{not json"), r"corpus\.json: malformed JSON"),
        (lambda root: (root / "corpus.json").write_text("[1, 2]"), r"corpus\.json: expected a JSON object"),
    ],
    ids=["no-manifest", "no-labels", "empty-labels", "malformed-manifest", "manifest-not-object"],
)
def test_broken_own_format_names_the_file(own: Path, damage: Callable[[Path], object], message: str) -> None:
    damage(own)
    with pytest.raises(CorpusError, match=message):
        load(own, format="cardflow")


def test_without_manifest_an_own_corpus_is_detected_as_a_plain_folder(own: Path) -> None:
    (own / "corpus.json").unlink()
    corpus = load(own)
    assert corpus.format == "folder"
    assert [d.doc_id for d in corpus] == ["images/clean/clean-000000", "images/clean/clean-000001",
                                          "images/hard/hard-000000"]


def test_bad_paths_and_formats(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist") as err:
        load(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value)
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    with pytest.raises(CorpusError, match="is a file"):
        load(tmp_path / "file.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    expected = re.escape(f"no documents found in {empty}; expected one of: cardflow")
    with pytest.raises(CorpusError, match=expected):
        load(empty)
    with pytest.raises(CorpusError, match="valid formats: " + ", ".join(FORMATS)):
        load(empty, format="coco")


# --------------------------------------------------------------------------------------------- plain folder
def test_plain_folder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (8, 6), (255, 255, 255)).save(tmp_path / "sub" / "b.jpg")
    Image.new("L", (5, 4), 128).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not an image", encoding="utf-8")
    corpus = load(tmp_path)
    assert corpus.format == "folder"
    assert [d.doc_id for d in corpus] == ["a", "sub/b"]
    assert [d.truth for d in corpus] == [None, None]
    assert corpus.distributions == ("unknown",)
    assert corpus.documents[0].read_image().shape == (4, 5, 3)


# --------------------------------------------------------------------------------------------- helpers
def test_date_conversions() -> None:
    assert iso_date("14.08.1994") == "1994-08-14"
    assert iso_date("20-11-1991") == "1991-11-20"
    assert iso_date("31.02.1991") == "31.02.1991"  # not a date: kept as given
    assert mrz_date("740812", birth=True) == "1974-08-12"
    assert mrz_date("050101", birth=True) == "2005-01-01"
    assert mrz_date("991231", birth=True) == "1999-12-31"
    assert mrz_date("740812", birth=False) == "2074-08-12"
    assert mrz_date("12O415", birth=False) == "12O415"


# --------------------------------------------------------------------------------------------- MIDV-2020
ALB_00 = {
    "surname": "Agani", "given_names": "Adnan", "date_of_birth": "1991-11-20", "document_number": "367253746",
    "personal_number": "J11120296E", "date_of_issue": "2019-04-13", "date_of_expiry": "2029-04-13",
    "place_of_birth": "Bulçar, ALB", "nationality": "Shqiptare/Albanian", "sex": "M", "authority": "MB",
}  # fmt: skip
AZE_00_MRZ = ("PCAZEABDULLAYEV<<DIL<<<<<<<<<<<<<<<<<<<<<<<<", "C193895647AZE9408148M28081525188L2V<<<<<<<42")


@real
def test_midv2020_sample_loads_the_present_images(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="corpus.loaders"):
        corpus = load(MIDV2020, format="midv2020", strict=False)
    assert corpus.format == "midv2020"
    assert [d.doc_id for d in corpus] == ["alb_id/00", "alb_id/01", "aze_passport/00", "aze_passport/01"]
    assert [d.path.name for d in corpus] == ["alb_id_00.jpg", "alb_id_01.jpg", "aze_passport_00.jpg",
                                            "aze_passport_01.jpg"]
    missing = corpus.manifest["missing_images"]
    annotated = sum(len(json.loads(p.read_text())["_via_img_metadata"])
                    for p in (MIDV2020 / "annotations_via").glob("*.json"))
    assert annotated == 200 and len(missing) == annotated - 4 == 196
    assert missing[:2] == ["images/alb_id_02.jpg", "images/alb_id_03.jpg"]
    assert "images/aze_passport_99.jpg" in missing
    assert "196 of 200 annotated images are missing" in caplog.text

    alb = corpus.documents[0]
    assert (alb.truth.l1, alb.truth.issuer, alb.truth.l2) == ("id_card", "ALB", "ALB.id_card")
    assert dict(alb.truth.fields) == ALB_00 and alb.truth.mrz_lines == ()
    assert alb.meta["regions"]["surname"] == [703, 242, 190, 55]
    assert {"photo", "signature", "face"} <= set(alb.meta["regions"]) and "photo" not in alb.truth.fields

    aze = corpus.documents[2]
    assert (aze.truth.l1, aze.truth.issuer, aze.truth.l2) == ("passport", "AZE", "AZE.passport")
    assert aze.truth.mrz_lines == AZE_00_MRZ
    assert aze.truth.fields["date_of_birth"] == "1994-08-14"
    assert aze.truth.fields["document_number"] == "C19389564"
    assert "mrz_line0" not in aze.truth.fields

    image = alb.read_image()  # a CMYK JPEG, converted to RGB (not inverted)
    assert image.shape == (1360, 2167, 3) and image.dtype == np.uint8
    assert 150 < image.mean() < 230
    assert image[:20, :20].mean() > 240 and image[-20:, -20:].mean() > 240  # white paper corners


@real
def test_midv2020_strict_names_the_missing_images() -> None:
    with pytest.raises(CorpusError, match="196 of 200 annotated images are missing") as err:
        load(MIDV2020, format="midv2020")
    assert "images/alb_id_02.jpg" in str(err.value)


@real
def test_midv2020_folder_is_detected_as_gt_json_with_the_same_fields() -> None:
    gt = load(MIDV2020)
    via = load(MIDV2020, format="midv2020", strict=False)
    assert gt.format == "gt-json" and len(gt) == 4 and gt.manifest["missing_images"] == []
    by_path = {d.path: d for d in gt}
    for doc in via:
        twin = by_path[doc.path].truth
        assert (twin.l1, twin.issuer, twin.l2, twin.mrz_lines) == (
            doc.truth.l1, doc.truth.issuer, doc.truth.l2, doc.truth.mrz_lines)
        # gt-json adds the MRZ-derived fields the visual zone lacks; the visual ones are the same
        assert {k: twin.fields[k] for k in doc.truth.fields} == dict(doc.truth.fields)
        if doc.truth.l1 == "id_card":
            assert dict(twin.fields) == dict(doc.truth.fields)
    assert dict(by_path[via.documents[0].path].truth.fields) == ALB_00
    aze = by_path[via.documents[2].path]
    assert aze.truth.fields["nationality"] == "AZE" and aze.truth.fields["document_type"] == "PC"
    assert aze.meta["mrz_format"] == "TD3" and aze.meta["regions"]["surname"] == [651, 291, 322, 37]


# --------------------------------------------------------------------------------------------- MIDV-500
@real
def test_midv500_sample() -> None:
    corpus = load(MIDV500)
    assert corpus.format == "midv500"
    assert [d.doc_id for d in corpus] == ["43_tur_id/CA/CA43_01"]
    doc = corpus.documents[0]
    assert doc.path == MIDV500 / "43_tur_id" / "images" / "CA" / "CA43_01.tif"
    assert (doc.truth.l1, doc.truth.issuer, doc.truth.l2) == ("id_card", "TUR", "TUR.id_card")
    quad = json.loads((MIDV500 / "43_tur_id" / "ground_truth" / "CA" / "CA43_01.json").read_text())["quad"]
    assert doc.truth.corners == tuple((float(x), float(y)) for x, y in quad)
    assert doc.truth.corners == ((139.0, 678.0), (940.0, 689.0), (966.0, 1180.0), (88.0, 1167.0))
    with Image.open(doc.path) as im:
        width, height = im.size
    assert (width, height) == (1080, 1920)
    assert doc.read_image().shape == (height, width, 3) == (1920, 1080, 3)
    quads = len(list(MIDV500.glob("*/ground_truth/*/*.json")))
    assert corpus.manifest["annotations_without_image"] == quads - 1 == 89
    assert corpus.manifest["images_without_annotation"] == []
    one = load(MIDV500 / "43_tur_id")  # one type folder
    assert [d.doc_id for d in one] == ["43_tur_id/CA/CA43_01"]
    assert one.manifest["annotations_without_image"] == 59


def _midv500_tree(root: Path) -> Path:
    tdir = root / "07_esp_drvlic"
    for clip, frame in (("TS", "TS07_01"), ("TS", "TS07_02")):
        (tdir / "images" / clip).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (12, 10)).save(tdir / "images" / clip / f"{frame}.tif")
    (tdir / "ground_truth" / "TS").mkdir(parents=True)
    quad = {"quad": [[-5, 1], [11, 1], [11, 9], [0, 9]]}  # corners may fall outside the frame
    (tdir / "ground_truth" / "TS" / "TS07_01.json").write_text(json.dumps(quad))
    template = {"surname": {"value": "GARCIA", "quad": [[0, 0], [1, 0], [1, 1], [0, 1]]},
                "birth_date": {"value": "01.02.1980", "quad": []}, "field07": {"value": "B", "quad": []},
                "photo": {"value": "", "quad": []}}
    (tdir / "ground_truth" / "07_esp_drvlic.json").write_text(json.dumps(template))
    return tdir


def test_midv500_image_without_quad(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _midv500_tree(tmp_path)
    with pytest.raises(CorpusError, match="1 of 2 images have no quad file") as err:
        load(tmp_path)
    assert "07_esp_drvlic/images/TS/TS07_02.tif" in str(err.value)
    with caplog.at_level(logging.WARNING, logger="corpus.loaders"):
        corpus = load(tmp_path, strict=False)
    assert "TS07_02.tif" in caplog.text
    assert corpus.manifest["images_without_annotation"] == ["07_esp_drvlic/images/TS/TS07_02.tif"]
    first, second = corpus.documents
    assert first.truth.corners == ((-5.0, 1.0), (11.0, 1.0), (11.0, 9.0), (0.0, 9.0))
    assert second.truth.corners is None
    assert (first.truth.l1, first.truth.l2) == ("driving_licence", "ESP.driving_licence")
    assert dict(first.truth.fields) == {"surname": "GARCIA", "date_of_birth": "1980-02-01", "field07": "B"}


def test_midv500_malformed_quad_names_the_file(tmp_path: Path) -> None:
    tdir = _midv500_tree(tmp_path)
    bad = tdir / "ground_truth" / "TS" / "TS07_01.json"
    bad.write_text('{"quad": [[1, 2], [3, 4]]}')
    with pytest.raises(CorpusError, match="expected") as err:
        load(tmp_path, strict=False)
    assert str(bad) in str(err.value)


# --------------------------------------------------------------------------------------------- gt-json
@real
def test_passporteye_gt_json() -> None:
    corpus = load(PASSPORTEYE)
    items = json.loads((PASSPORTEYE / "ground_truth.json").read_text())["items"]
    assert corpus.format == "gt-json" and len(corpus) == len(items) == 38
    assert corpus.distributions == ("passporteye_testdata",)
    with_mrz = [d for d in corpus if d.truth.mrz_lines]
    assert len(with_mrz) == 4
    for doc in with_mrz:
        assert len(doc.truth.mrz_lines) in (2, 3) and len({len(line) for line in doc.truth.mrz_lines}) == 1
    doc_class = {PASSPORTEYE / it["file"]: it["doc_class"] for it in items}
    for doc in corpus:
        assert doc.truth.l1 == doc_class[doc.path]
    passports = [d for d in corpus if doc_class[d.path] == "passport"]
    assert len(passports) == 25 and {d.truth.l1 for d in passports} == {"passport"}
    by_id = {d.doc_id: d for d in corpus}
    td3 = by_id["images/test_passport-td3.png"]  # .jpg and .png share a stem: the ids keep the suffix
    assert dict(td3.truth.fields) == {
        "document_type": "P", "country": "UTO", "document_number": "L898902C3", "date_of_birth": "1974-08-12",
        "date_of_expiry": "2012-04-15", "nationality": "UTO", "sex": "F", "surname": "ERIKSSON",
        "given_names": "ANNA MARIA", "personal_number": "ZE184226B",
    }  # fmt: skip
    assert (td3.truth.issuer, td3.truth.l2) == ("UTO", "UTO.passport")
    assert "personal_number" not in by_id["images/test_passport-td2.png"].truth.fields
    esp = by_id["images/0_id-esp"]
    assert (esp.truth.l1, esp.truth.issuer, esp.truth.mrz_lines) == ("id_card", "ESP", ())
    assert dict(esp.truth.fields) == {}
    assert esp.meta["expected_valid_score"] == 0 and esp.meta["country_hint"] == "esp"


def test_gt_json_missing_image(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    items = [{"file": "a.png", "doc_class": "visa", "mrz_lines": None},
             {"file": "b.png", "doc_class": "passport", "mrz_lines": None}]
    (tmp_path / "ground_truth.json").write_text(json.dumps({"dataset": {}, "items": items}))
    with pytest.raises(CorpusError, match="1 of 2 listed images are missing") as err:
        load(tmp_path)
    assert "b.png" in str(err.value)
    corpus = load(tmp_path, strict=False)
    assert [d.doc_id for d in corpus] == ["a"] and corpus.manifest["missing_images"] == ["b.png"]
    assert corpus.documents[0].truth == GroundTruth(l1="visa")
    shutil.copy(tmp_path / "a.png", tmp_path / "b.png")
    (tmp_path / "ground_truth.json").write_text('{"items": [{"file": "a.png"}, {"nofile": 1}]}')
    with pytest.raises(CorpusError, match=r"ground_truth\.json: item 1 has no 'file'"):
        load(tmp_path)


def test_midv2020_standard_layout_with_polygons(tmp_path: Path) -> None:
    """images/<type>/<file> next to annotations/<type>.json (no ground_truth.json): detected as midv2020."""
    (tmp_path / "images" / "srb_passport").mkdir(parents=True)
    Image.new("CMYK", (10, 8), (0, 0, 0, 0)).save(tmp_path / "images" / "srb_passport" / "07.jpg")
    regions = [
        {"shape_attributes": {"name": "polygon", "all_points_x": [1, 5, 5], "all_points_y": [2, 2, 6]},
         "region_attributes": {"field_name": "issue_date", "value": "01.03.2015"}},
        {"shape_attributes": {"name": "rect", "x": 0, "y": 7, "width": 9, "height": 1},
         "region_attributes": {"field_name": "mrz_line1", "value": "BBB"}},
        {"shape_attributes": {"name": "rect", "x": 0, "y": 6, "width": 9, "height": 1},
         "region_attributes": {"field_name": "mrz_line0", "value": "AAA"}},
        {"shape_attributes": {"name": "rect", "x": 0, "y": 0, "width": 3, "height": 3},
         "region_attributes": {"field_name": "signature", "value": ""}},
    ]
    via = {"_via_img_metadata": {"07.jpg123": {"filename": "07.jpg", "size": 123, "regions": regions}}}
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "srb_passport.json").write_text(json.dumps(via))
    corpus = load(tmp_path)
    assert corpus.format == "midv2020" and corpus.manifest["missing_images"] == []
    doc = corpus.documents[0]
    assert doc.doc_id == "srb_passport/07" and doc.truth.l2 == "SRB.passport"
    assert dict(doc.truth.fields) == {"date_of_issue": "2015-03-01"} and doc.truth.mrz_lines == ("AAA", "BBB")
    assert doc.meta["regions"]["issue_date"] == [[1, 2], [5, 2], [5, 6]]
    assert doc.meta["regions"]["signature"] == [0, 0, 3, 3]
    assert doc.read_image()[0, 0].tolist() == [255, 255, 255]  # CMYK (0, 0, 0, 0) is white paper
