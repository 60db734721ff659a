"""Pictures of the page as small records the template renders: one ``Cell`` per thumbnail (with
its alt text), thumbnails made once per file."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fprt.errors import FprtError
from fprt.runtime.report import pictures as P
from fprt.runtime.report.run import ImageFile

log = logging.getLogger("fprt.report")


@dataclass
class Cell:
    """A thumbnail and its caption; ``uri`` None = the file could not be found or read (caption says why)."""

    name: str
    caption: str
    alt: str
    uri: str | None = None
    role: str = ""  # real | generated | overlay | difference
    score: float | None = None
    group: str = ""  # subset / class of the file, when known


def fmt(v: float | None, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{digits}g}"


class Thumbs:
    """Decodes each file once, keeps the full image only for the pairs that are aligned."""

    def __init__(self, size: int = P.THUMB) -> None:
        self.size = size
        self._uri: dict[Path, str | None] = {}
        self.failed: dict[Path, str] = {}

    def image(self, path: Path) -> np.ndarray | None:
        try:
            return P.load_gray(path)
        except (FprtError, OSError) as exc:
            self.failed[path] = str(exc)
            log.warning("report: cannot read %s (%s)", path, exc)
            return None

    def uri(self, path: Path) -> str | None:
        if path not in self._uri:
            img = self.image(path)
            self._uri[path] = P.data_uri(img, self.size) if img is not None else None
        return self._uri[path]

    def cell(self, path: Path | None, name: str, role: str, score: float | None, score_word: str, group: str = "") -> Cell:
        what = f"{role} {name}" + (f" ({group})" if group else "")
        caption = name + (f" · {group}" if group and role == "real" else "") + (f" · {fmt(score)}" if score is not None else "")
        alt = f"{what}, {score_word} {fmt(score)}" if score is not None else what
        if path is None:
            return Cell(name, caption + " (file not found)", alt + " (file not found)", None, role, score, group)
        uri = self.uri(path)
        if uri is None:
            return Cell(name, caption + " (unreadable)", alt + " (unreadable)", None, role, score, group)
        return Cell(name, caption, alt, uri, role, score, group)


def resolve(index: dict[str, list[ImageFile]], name: str, parts: tuple[str, ...], prefer_key: str | None = None) -> ImageFile | None:
    """The file called ``name`` in the first of ``parts`` that holds one; where a part holds several files of that
    name, the one whose key (subset) is ``prefer_key``, else None (no guessing: the caption says not found)."""
    found = index.get(name, [])
    for part in parts:
        hits = [f for f in found if f.part == part]
        if len(hits) > 1 and prefer_key is not None:
            hits = [f for f in hits if f.key == prefer_key]
        if len(hits) == 1:
            return hits[0]
        if hits:
            return None
    return None


@dataclass
class ScoredRow:
    """What every listed test image shares: its place in the list and its row of scores.csv."""

    rank: int
    row: int
    image_id: str
    file: str
    decision: str
    score: float
    truth: str | None
