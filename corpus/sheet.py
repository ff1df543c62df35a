"""Contact sheets: a grid of sample documents, one row per distribution."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from corpus.fonts import font
from corpus.records import Corpus

ROW_LABEL_WIDTH = 170


def contact_sheet(corpus: Corpus, out: Path, per_row: int = 4, thumb_height: int = 200) -> Path:
    """Write a PNG with up to `per_row` documents of each distribution (mixing document types)."""
    rows: dict[str, list] = {}
    for doc in corpus:
        picked = rows.setdefault(doc.distribution, [])
        if len(picked) >= per_row:
            continue
        # Prefer a document type not yet in the row, so each row shows the variety of templates.
        seen = {d.truth.l1 for d in picked if d.truth}
        if doc.truth is None or doc.truth.l1 not in seen or len(seen) >= 3:
            picked.append(doc)
    thumbs: dict[str, list[Image.Image]] = {}
    for dist, docs in rows.items():
        thumbs[dist] = []
        for doc in docs:
            img = Image.fromarray(doc.read_image())
            width = int(img.width * thumb_height / img.height)
            thumbs[dist].append(img.resize((width, thumb_height), Image.Resampling.LANCZOS))
    gap = 8
    sheet_w = ROW_LABEL_WIDTH + max(sum(t.width + gap for t in row) for row in thumbs.values())
    sheet_h = len(thumbs) * (thumb_height + gap) + gap
    sheet = Image.new("RGB", (sheet_w, sheet_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (dist, row) in enumerate(thumbs.items()):
        y = gap + r * (thumb_height + gap)
        draw.text((10, y + thumb_height / 2), dist, font=font("DejaVuSans-Bold.ttf", 22), fill=(30, 30, 30), anchor="lm")
        x = ROW_LABEL_WIDTH
        for thumb in row:
            sheet.paste(thumb, (x, y))
            x += thumb.width + gap
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, quality=85) if out.suffix.lower() in (".jpg", ".jpeg") else sheet.save(out)
    return out
