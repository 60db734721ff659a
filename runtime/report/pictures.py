"""The report's pictures: small thumbnails as data URIs, the aligned overlay / difference of a real
image and a generated one, and evidence.png (a one-image montage of the top matches)."""

from __future__ import annotations

import base64
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, features

log = logging.getLogger("fprt.report")

THUMB = 112  # px, the side of a thumbnail in the page
_WEBP = features.check("webp")


def load_gray(path: Path) -> np.ndarray:
    """The image as fprt decodes it (8-bit gray, H×W)."""
    from fprt.data import decode_image

    return decode_image(path)


def resize(img: np.ndarray, size: int) -> np.ndarray:
    if img.shape == (size, size):
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BILINEAR))


def data_uri(img: np.ndarray, size: int = THUMB) -> str:
    """A small WebP (PNG where PIL lacks WebP) of a gray or RGB array, as a data: URI."""
    im = Image.fromarray(img)
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    if _WEBP:
        im.save(buf, format="WEBP", quality=82, method=2)
        mime = "image/webp"
    else:
        im.save(buf, format="PNG", optimize=True)
        mime = "image/png"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


@dataclass
class Alignment:
    """A generated image put onto a real one: overlay (real magenta, generated green, gray where they
    agree), |difference|, the match score and how it was made."""

    warped: np.ndarray
    overlay: np.ndarray
    difference: np.ndarray
    match: float
    aligned: bool  # True: geometry.align_for_display registered them; False: a plain difference
    note: str


def _align_fn():
    try:
        from fprt.runtime.evidence.geometry import align_for_display
    except ImportError:
        return None
    return align_for_display


def align(real: np.ndarray, generated: np.ndarray) -> Alignment:
    """``fprt.runtime.evidence.geometry.align_for_display`` where it exists, else the unaligned |difference|."""
    fn = _align_fn()
    gen = resize_to(generated, real.shape)
    if fn is None:
        note = "not aligned (fprt.runtime.evidence.geometry is not installed): plain difference"
    else:
        try:
            warped, diff, match = fn(real, generated)
        except Exception as exc:  # one pair that will not register must not sink the report; the page says so
            log.warning("report: alignment failed (%s); showing the plain difference", exc)
            note = f"alignment failed ({type(exc).__name__}: {exc}); plain difference"
        else:
            return Alignment(warped, overlay(real, warped), diff, float(match), True, "aligned by fprt.runtime.evidence.geometry.align_for_display (match: its match score)")
    diff = np.abs(real.astype(np.int16) - gen.astype(np.int16)).astype(np.uint8)
    return Alignment(gen, overlay(real, gen), diff, ncc(real, gen), False, note)


def resize_to(img: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if img.shape == shape:
        return img
    return np.asarray(Image.fromarray(img).resize((shape[1], shape[0]), Image.Resampling.BILINEAR))


def overlay(real: np.ndarray, other: np.ndarray) -> np.ndarray:
    """RGB: red and blue from the real image, green from the other — gray where they agree."""
    return np.stack([real, other, real], axis=-1)


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two same-shape images (Pearson r of the pixels)."""
    x = a.astype(np.float64).ravel()
    y = b.astype(np.float64).ravel()
    x -= x.mean()
    y -= y.mean()
    d = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / d) if d > 0 else 0.0


# ------------------------------------------------------------------------------------------ evidence.png
@dataclass
class Tile:
    caption: str
    image: np.ndarray | None  # gray or RGB; None = empty cell


def montage(rows: list[tuple[str, list[Tile]]], title: str, size: int = 128) -> bytes:
    """A PNG contact sheet: one row per match, a label on the left, a caption under every tile."""
    label_w, cap_h, head_h, gap = 110, 26, 24, 6
    ncol = max((len(cells) for _, cells in rows), default=1)
    w = label_w + ncol * (size + gap)
    h = head_h + max(1, len(rows)) * (size + cap_h + gap)
    sheet = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), title, fill=(0, 0, 0))
    for r, (label, cells) in enumerate(rows):
        y = head_h + r * (size + cap_h + gap)
        draw.text((4, y + size // 2 - 6), label, fill=(0, 0, 0))
        for c, tile in enumerate(cells):
            x = label_w + c * (size + gap)
            if tile.image is not None:
                im = Image.fromarray(tile.image).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
                sheet.paste(im, (x, y))
            for n, line in enumerate(_wrap(tile.caption, size)):
                draw.text((x + 1, y + size + 1 + 12 * n), line, fill=(0, 0, 0))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _wrap(text: str, width: int) -> list[str]:
    per_line = max(8, width // 6)
    return [text[i : i + per_line] for i in range(0, len(text), per_line)][:2]
