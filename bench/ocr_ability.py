"""Legibility of the generated documents: how often Tesseract (tesserocr, standard English LSTM model)
reads the printed document number of clean TD1 and TD3 documents exactly (as one word of its output).

    python bench/ocr_ability.py [--seeds 3,7,21] [--per-seed 30]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import tesserocr
from PIL import Image

from corpus.generate import DEFAULT_DISTRIBUTIONS, document_class, make_document
from steps.modelstore import ModelStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="3,7,21")
    parser.add_argument("--per-seed", type=int, default=30)
    args = parser.parse_args()
    tessdata = ModelStore().path("tessdata/standard/eng.traineddata").parent
    hits = total = 0
    misses = []
    with tesserocr.PyTessBaseAPI(path=str(tessdata) + "/", lang="eng") as api:
        for seed in (int(s) for s in args.seeds.split(",")):
            index = done = 0
            while done < args.per_seed:
                code, l1 = document_class(seed, index)
                if l1 in ("id_card", "passport"):
                    data, record = make_document(seed, index, "clean", Path(DEFAULT_DISTRIBUTIONS))
                    api.SetImage(Image.open(io.BytesIO(data)))
                    number = record["truth"]["fields"]["document_number"]
                    ok = number in api.GetUTF8Text().split()
                    hits += ok
                    total += 1
                    done += 1
                    if not ok:
                        misses.append(f"{record['id']} (seed {seed}, {code}.{l1}): {number}")
                index += 1
    print(f"document number read exactly: {hits}/{total} = {hits / total:.1%} (seeds {args.seeds}, clean TD1/TD3)")
    for miss in misses:
        print(f"  missed {miss}")


if __name__ == "__main__":
    main()
