"""A contact sheet of a demo dataset, to look at what was drawn (``make_montage(root, "montage.png")``).

subsets: one row per subset — real training images on the left, generated ones on the right.
membership: one row per example — a used image, then generated images that carry its trace
(near-copies, blends), then for contrast a not-used image and a novel generated image.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..io import atomic_write_bytes

_GAP = 6


def _tile(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("L")
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(im)


def _sheet(rows: list[tuple[str, list[tuple[str, Path | None]]]], size: int, title: str) -> Image.Image:
    label_w, cap_h, head_h = 70, 14, 22
    ncol = max(len(r[1]) for r in rows)
    w = label_w + ncol * (size + _GAP)
    h = head_h + len(rows) * (size + cap_h + _GAP)
    sheet = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), title, fill=0)
    for r, (label, cells) in enumerate(rows):
        y = head_h + r * (size + cap_h + _GAP)
        draw.text((4, y + size // 2), label, fill=0)
        for c, (cap, path) in enumerate(cells):
            x = label_w + c * (size + _GAP)
            if path is not None:
                sheet.paste(Image.fromarray(_tile(path, size)), (x, y))
            draw.text((x + 2, y + size + 1), cap, fill=0)
    return sheet


def make_montage(root: str | os.PathLike, out: str | os.PathLike, *, per_class: int = 3, examples: int = 4,
                 size: int = 160) -> Path:
    """Write a PNG contact sheet of the demo dataset at ``root`` to ``out``; returns ``out``."""
    root, out = Path(root), Path(out)
    meta = json.loads((root / "demo.json").read_text())
    rows: list[tuple[str, list[tuple[str, Path | None]]]] = []
    if meta["task"] == "subsets":
        gen_dirs = {p.name.removeprefix("gen_"): p for p in (root / "train" / "generated").iterdir() if p.is_dir()}
        for c in sorted((p.name for p in (root / "train" / "real").iterdir()), key=lambda s: int(s[1:])):
            real = sorted((root / "train" / "real" / c).glob("*.png"))[:per_class]
            gen = sorted(gen_dirs[c].glob("*.png"))[:per_class]
            rows.append((c, [(f"real {p.stem}", p) for p in real] + [(f"generated {p.stem}", p) for p in gen]))
        title = "fprt demo, subsets: real training images (left) and generated images of the same subset (right)"
    else:
        with open(root / "sources.csv", newline="") as fh:
            src = [r for r in csv.DictReader(fh) if r["split"] == "train"]
        used_dir, not_dir, gen_dir = (root / "train" / "real" / "used", root / "train" / "real" / "not_used",
                                      root / "train" / "generated")
        by_source: dict[str, list[tuple[str, str]]] = {}
        for r in src:
            for s in filter(None, r["sources"].split(";")):
                by_source.setdefault(s, []).append((r["kind"], r["image_id"]))
        picked = sorted(by_source, key=lambda s: (-len(by_source[s]), s))[:examples]
        novel = [r["image_id"] for r in src if r["kind"] == "novel"]
        nots = sorted(not_dir.glob("*.png"))
        for i, s in enumerate(picked):
            cells: list[tuple[str, Path | None]] = [(f"used {s}", used_dir / f"{s}.png")]
            cells += [(f"{kind} {g}", gen_dir / f"{g}.png") for kind, g in by_source[s][:3]]
            cells += [("", None)] * (4 - len(cells))
            if i < len(nots):
                cells.append((f"not used {nots[i].stem}", nots[i]))
            if i < len(novel):
                cells.append((f"novel {novel[i]}", gen_dir / f"{novel[i]}.png"))
            rows.append((s.replace("used_", "#"), cells))
        title = ("fprt demo, membership: a used image, generated images carrying its trace (copy / blend), "
                 "then a not-used image and a novel generated image")
    sheet = _sheet(rows, size, title)
    import io

    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    atomic_write_bytes(out, buf.getvalue())
    return out


__all__ = ["make_montage"]
