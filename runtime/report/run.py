"""What a report reads: the folder ``fprt score`` wrote (summary.json, scores.csv, metrics.json, plots),
the true labels when given, and an index of the data's image files by name (scores.csv names the
neighbours by file name only).
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fprt.errors import DataError, FprtError

log = logging.getLogger("fprt.report")


@dataclass(frozen=True)
class ImageFile:
    """One image of the scored data: where it is and which part of the layout it belongs to."""

    path: Path
    part: str  # real | generated | test_real | test_generated
    key: str  # class / subset / folder key within the part


@dataclass
class ScoredRows:
    """scores.csv as columns; the list cells (neighbours, neighbour_scores) stay raw until asked for."""

    columns: dict[str, list[str]]

    def __len__(self) -> int:
        return len(self.columns.get("image_id", []))

    def col(self, name: str) -> list[str]:
        return self.columns[name]

    def score(self) -> np.ndarray:
        return np.array([_float(v) for v in self.columns["score"]], dtype=np.float64)

    def neighbours(self, i: int) -> list[tuple[str, float | None]]:
        names = _split(self.columns.get("neighbours", [""] * len(self))[i])
        values = _split(self.columns.get("neighbour_scores", [""] * len(self))[i])
        return [(n, _float(values[j]) if j < len(values) else None) for j, n in enumerate(names)]


@dataclass
class ScoreRun:
    """A scored run folder, read once."""

    out: Path
    summary: dict[str, Any]
    rows: ScoredRows
    metrics: dict[str, Any] | None = None
    truth: list[str] | None = None  # true label per scores.csv row (with labels)
    _index: dict[str, list[ImageFile]] | None = field(default=None, repr=False)

    @property
    def task(self) -> str:
        return self.summary["task"]

    @property
    def data_root(self) -> Path:
        return Path(self.summary["data"]["root"])

    def image_index(self) -> dict[str, list[ImageFile]]:
        """Every image file of the data root and the reference, by file name (built on first use)."""
        if self._index is None:
            self._index = index_images(self.summary["data"])
        return self._index

    def test_path(self, i: int) -> Path:
        file = Path(self.rows.col("file")[i])
        return file if file.is_absolute() else self.data_root / file


def load_run(out: str | Path, *, labels: str | Path | None = None) -> ScoreRun:
    """Read ``out`` (a ``fprt score`` output folder); DataError naming what is missing or broken."""
    out = Path(out)
    if not out.is_dir():
        raise DataError(f"{out}: no such folder (expected the --out folder of `fprt score`)")
    summary = _read_json(out / "summary.json", required=True)
    for key in ("task", "data", "method", "counts"):
        if key not in summary:
            raise DataError(f"{out / 'summary.json'}: no {key!r} entry; was it written by `fprt score`?")
    rows = read_scores_csv(out / "scores.csv")
    metrics = _read_json(out / "metrics.json", required=False)
    run = ScoreRun(out=out, summary=summary, rows=rows, metrics=metrics)
    if labels is not None:
        run.truth = read_truth(Path(labels), rows.col("image_id"))
    return run


def read_scores_csv(path: Path) -> ScoredRows:
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected the scores.csv of `fprt score`)")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path}: empty file; expected a header line image_id,file,decision,score,...") from None
        missing = [c for c in ("image_id", "file", "decision", "score") if c not in header]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing}; expected image_id,file,decision,score,...")
        cols: list[list[str]] = [[] for _ in header]
        for n, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise DataError(f"{path}: line {n} has {len(row)} fields, the header has {len(header)}")
            for c, v in zip(cols, row):
                c.append(v)
    return ScoredRows(dict(zip(header, cols)))


def read_truth(labels: Path, ids: list[str]) -> list[str]:
    """The true label of every scores.csv id (ids may carry their extension, labels may not)."""
    from fprt.data import read_labels

    if not labels.is_file():
        raise DataError(f"--labels {labels}: no such file")
    truth = {str(k): str(v) for k, v in read_labels(labels).items()}
    out, missing = [], []
    for i in ids:
        v = truth.get(i, truth.get(i.rsplit(".", 1)[0]))
        if v is None:
            missing.append(i)
        out.append(v)
    if missing:
        raise DataError(f"{labels}: no label for {len(missing)} scored image(s), e.g. {missing[:5]}")
    return out


def index_images(data: dict[str, Any]) -> dict[str, list[ImageFile]]:
    """File name → every image of that name in the data root and the reference (names can repeat
    across folders; the caller decides which part it wants)."""
    from fprt.data import discover

    index: dict[str, list[ImageFile]] = {}
    roots = [r for r in (data.get("root"), data.get("reference")) if r]
    seen: set[Path] = set()
    for root in dict.fromkeys(roots):
        try:
            layout = discover(root)
        except (FprtError, OSError) as exc:
            log.warning("report: cannot list the images of %s (%s); their thumbnails are left out", root, exc)
            continue
        for part, key, path in layout.iter_files():
            if path in seen:
                continue
            seen.add(path)
            index.setdefault(path.name, []).append(ImageFile(path, part, key))
    return index


def _read_json(path: Path, *, required: bool) -> dict | None:
    if not path.is_file():
        if required:
            raise DataError(f"{path}: no such file (expected the output folder of `fprt score`)")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def _split(cell: str) -> list[str]:
    return [v for v in cell.split(";") if v != ""] if cell else []


def _float(v: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")
