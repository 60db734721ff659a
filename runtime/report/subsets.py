"""The subsets part of the report: per predicted subset, the generated test images it is most sure
of beside their nearest real training images; the confusion matrix and per-class precision/recall
when labels exist (or metrics.json holds them)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fprt.runtime.report import pictures as P
from fprt.runtime.report.cells import Cell, ScoredRow, Thumbs, fmt, resolve
from fprt.runtime.report.run import ImageFile, ScoreRun

PIXEL_SIDE = 32  # side of the images compared when scores.csv names no real training image
PIXEL_CAP = 400  # at most this many real training images per subset in that comparison (evenly spaced)


@dataclass
class Example(ScoredRow):
    """One generated test image of a predicted subset: its row of scores.csv and its pictures."""

    generated: Cell
    nearest: list[Cell]
    path: Path | None = None  # the generated test image
    nearest_paths: list[Path] = field(default_factory=list)


@dataclass
class SubsetGroup:
    name: str
    count: int
    examples: list[Example]


@dataclass
class Confusion:
    labels: list[str]
    matrix: list[list[int]]
    precision: list[float | None]
    recall: list[float | None]
    source: str


@dataclass
class SubsetsSection:
    groups: list[SubsetGroup]
    nearest_by: str  # what "nearest" means on this page
    confusion: Confusion | None
    n: int
    score_name: str
    notes: list[str] = field(default_factory=list)


def natural(c: str):
    m = re.fullmatch(r"t(\d+)", c)
    return (0, int(m.group(1)), c) if m else (1, 0, c)


def build(run: ScoreRun, thumbs: Thumbs, *, per_class: int = 4, shown: int = 3) -> SubsetsSection:
    rows = run.rows
    scores = rows.score()
    decisions = rows.col("decision")
    index = run.image_index()
    reals = [f for files in index.values() for f in files if f.part == "real"]
    by_class: dict[str, list[int]] = {}
    for i, d in enumerate(decisions):
        by_class.setdefault(d, []).append(i)
    picked = {c: sorted(ix, key=lambda i: (-_finite(scores[i]), i))[:per_class] for c, ix in by_class.items()}
    named = _neighbours_are_real_files(run, index, [i for ix in picked.values() for i in ix])
    pixel = None if named else PixelNeighbours(reals, thumbs)
    nb_word = _short(run.summary.get("score", {}).get("neighbour_scores") or "score") if named else "pixel RMS Δ"
    groups = []
    for c in sorted(by_class, key=natural):
        examples = []
        for rank, i in enumerate(picked[c], start=1):
            path = run.test_path(i)
            gen = thumbs.cell(path if path.is_file() else None, path.name, "generated", float(scores[i]), "score", c)
            if pixel is not None:
                near = pixel.nearest(thumbs.image(path), shown)
            else:
                near = [(f, v) for f, v in ((resolve(index, n, ("real",), c), v) for n, v in rows.neighbours(i)) if f is not None][:shown]
            cells = [thumbs.cell(f.path, f.path.name, "real", v, nb_word, f.key) for f, v in near]
            examples.append(Example(rank, i, rows.col("image_id")[i], rows.col("file")[i], c, float(scores[i]),
                                    run.truth[i] if run.truth is not None else None, gen, cells, path,
                                    [f.path for f, _ in near]))
        groups.append(SubsetGroup(c, len(by_class[c]), examples))
    if named:
        nearest_by = f"scores.csv's neighbours ({run.summary.get('score', {}).get('neighbour_scores') or 'the method’s score'})"
    else:
        nearest_by = (f"pixels: root-mean-square difference of {PIXEL_SIDE}×{PIXEL_SIDE} thumbnails (0-255) over the real "
                      f"training images (scores.csv names no real training images for this method; at most {PIXEL_CAP} per subset)")
    return SubsetsSection(groups, nearest_by, confusion(run), len(scores), run.summary.get("score", {}).get("is") or "score")


def _finite(v: float) -> float:
    return float(v) if np.isfinite(v) else -np.inf


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "…"


def _neighbours_are_real_files(run: ScoreRun, index, rows: list[int]) -> bool:
    """True when the chosen rows' neighbour cells name real training image files (knn, auto) rather
    than subsets (centroid, classifier)."""
    for i in rows:
        for name, _ in run.rows.neighbours(i):
            if resolve(index, name, ("real",), run.rows.col("decision")[i]) is not None:
                return True
    return False


class PixelNeighbours:
    """Nearest real training images by the RMS pixel difference of small thumbnails — used only where the
    method's own neighbours are subsets, not files (stated on the page)."""

    def __init__(self, reals: list[ImageFile], thumbs: Thumbs) -> None:
        by_key: dict[str, list[ImageFile]] = {}
        for f in sorted(reals, key=lambda f: str(f.path)):
            by_key.setdefault(f.key, []).append(f)
        self.files: list[ImageFile] = []
        for key in sorted(by_key, key=natural):
            fs = by_key[key]
            if len(fs) > PIXEL_CAP:
                fs = [fs[j] for j in np.linspace(0, len(fs) - 1, PIXEL_CAP).round().astype(int)]
            self.files += fs
        feats = [self._feature(thumbs.image(f.path)) for f in self.files]
        keep = [j for j, v in enumerate(feats) if v is not None]
        self.files = [self.files[j] for j in keep]
        self.matrix = np.stack([feats[j] for j in keep]) if keep else np.zeros((0, PIXEL_SIDE * PIXEL_SIDE))

    @staticmethod
    def _feature(img: np.ndarray | None) -> np.ndarray | None:
        if img is None:
            return None
        return P.resize(img, PIXEL_SIDE).astype(np.float64).ravel()

    def nearest(self, img: np.ndarray | None, k: int) -> list[tuple[ImageFile, float]]:
        q = self._feature(img)
        if q is None or not len(self.files):
            return []
        rms = np.sqrt(((self.matrix - q) ** 2).mean(1))
        top = np.argsort(rms, kind="stable")[:k]
        return [(self.files[j], float(rms[j])) for j in top]


def confusion(run: ScoreRun) -> Confusion | None:
    """From the labels given to the report, else from metrics.json."""
    if run.truth is not None:
        from sklearn.metrics import confusion_matrix

        labels = sorted(set(run.truth) | set(run.rows.col("decision")), key=natural)
        cm = confusion_matrix(run.truth, run.rows.col("decision"), labels=labels)
        source = "the labels given to the report"
    elif run.metrics and run.metrics.get("confusion_matrix") and run.metrics.get("labels"):
        labels = [str(v) for v in run.metrics["labels"]]
        cm = np.asarray(run.metrics["confusion_matrix"], dtype=np.int64)
        source = "metrics.json"
    else:
        return None
    cm = np.asarray(cm)
    col, row = cm.sum(0), cm.sum(1)
    diag = np.diag(cm)
    precision = [float(diag[j] / col[j]) if col[j] else None for j in range(len(labels))]
    recall = [float(diag[j] / row[j]) if row[j] else None for j in range(len(labels))]
    return Confusion(labels, cm.tolist(), precision, recall, source)


def evidence_rows(section: SubsetsSection, thumbs: Thumbs, pairs: int = 2) -> list[tuple[str, list[P.Tile]]]:
    """Per subset, its first ``pairs`` examples: the generated image, then its nearest real training image."""
    out = []
    for g in section.groups:
        tiles: list[P.Tile] = []
        for ex in g.examples[:pairs]:
            if not ex.nearest_paths or ex.path is None:
                continue
            near = ex.nearest[0]
            tiles.append(P.Tile(f"gen {ex.generated.name} {fmt(ex.score)}", thumbs.image(ex.path)))
            tiles.append(P.Tile(f"real {near.group} {near.name}", thumbs.image(ex.nearest_paths[0])))
        if tiles:
            out.append((f"subset {g.name}", tiles))
    return out
