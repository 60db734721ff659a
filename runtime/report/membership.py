"""The membership part of the report: the real images most likely used, each beside its nearest
generated images (the nearest aligned onto it), the least likely for contrast, the score histogram
with the decision threshold, and the ROC with its AUC when labels exist."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fprt.runtime.report import pictures as P
from fprt.runtime.report import plots
from fprt.runtime.report.cells import Cell, ScoredRow, Thumbs, fmt, resolve
from fprt.runtime.report.run import ScoreRun
from fprt.runtime.report.threshold import Threshold, decision_threshold

GENERATED_PARTS = ("test_generated", "generated")


@dataclass
class Match(ScoredRow):
    """One real test image in a list: its row of scores.csv and its pictures."""

    real: Cell
    neighbours: list[Cell]
    overlay: Cell | None = None
    difference: Cell | None = None
    match_note: str = ""
    match: float | None = None
    arrays: dict = field(default_factory=dict, repr=False)  # full images of the top pair, for evidence.png


@dataclass
class MembershipSection:
    top: list[Match]
    bottom: list[Match]
    threshold: Threshold
    histogram_svg: str
    roc_svg: str | None
    roc_auc: float | None
    n: int
    score_name: str
    neighbour_score_name: str
    align_notes: list[str] = field(default_factory=list)  # how the overlays were made, when the same for every pair


def rank_order(scores: np.ndarray) -> np.ndarray:
    """Row indices, largest score first, NaN last; ties keep file order (stable)."""
    key = np.where(np.isfinite(scores), -scores, np.inf)
    return np.argsort(key, kind="stable")


def pick(order: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``top`` and (distinct from them) the last ``top`` rows of the order."""
    head = order[:top]
    tail = order[max(len(head), len(order) - top):][::-1]
    return head, tail


def build(run: ScoreRun, thumbs: Thumbs, *, top: int, shown: int = 4, align_top: int | None = None) -> MembershipSection:
    rows = run.rows
    scores = rows.score()
    decisions = rows.col("decision")
    order = rank_order(scores)
    head, tail = pick(order, top)
    nb_word = _short(run.summary.get("score", {}).get("neighbour_scores") or "score")
    align_top = top if align_top is None else align_top
    top_matches = [_match(run, thumbs, int(i), r + 1, shown, nb_word, align=r < align_top) for r, i in enumerate(head)]
    bottom_matches = [_match(run, thumbs, int(i), len(order) - r, min(shown, 2), nb_word, align=False) for r, i in enumerate(tail)]
    threshold = decision_threshold(run.summary, scores, decisions)
    score_name = run.summary.get("score", {}).get("is") or "score"
    groups = _groups(run, decisions)
    t_label = f"decision threshold {fmt(threshold.value)}" if threshold.value is not None else ""
    svg = plots.score_histogram(scores, groups, threshold.value, f"score: {score_name}", t_label)
    roc_svg = auc = None
    if run.truth is not None and len(set(run.truth)) == 2:
        roc_svg, auc = plots.roc_curve_svg([int(t) for t in run.truth], scores, run.summary["method"]["name"])
    notes = sorted({m.match_note for m in top_matches if m.match_note})
    return MembershipSection(top_matches, bottom_matches, threshold, svg, roc_svg, auc, len(scores), score_name, nb_word,
                             notes if len(notes) == 1 else [])


def _groups(run: ScoreRun, decisions: list[str]) -> dict[str, np.ndarray]:
    if run.truth is not None:
        t = np.array(run.truth)
        return {"truly used (1)": t == "1", "truly not used (0)": t == "0"}
    d = np.array(decisions)
    return {"decided used (1)": d == "1", "decided not used (0)": d == "0"}


def _match(run: ScoreRun, thumbs: Thumbs, i: int, rank: int, shown: int, nb_word: str, *, align: bool) -> Match:
    rows = run.rows
    index = run.image_index()
    score = _score(rows, i)
    path = run.test_path(i)
    name = path.name
    real = thumbs.cell(path if path.is_file() else None, name, "real", score, "score")
    cells, first = [], None
    for n, (nb, value) in enumerate(rows.neighbours(i)[:shown]):
        f = resolve(index, nb, GENERATED_PARTS)
        cells.append(thumbs.cell(f.path if f else None, nb, "generated", value, nb_word))
        if n == 0 and f is not None:
            first = f
    m = Match(rank, i, rows.col("image_id")[i], rows.col("file")[i], rows.col("decision")[i], score,
              run.truth[i] if run.truth is not None else None, real, cells)
    if align and first is not None and real.uri is not None:
        _add_alignment(m, thumbs, path, first.path)
    return m


def _add_alignment(m: Match, thumbs: Thumbs, real_path, gen_path) -> None:
    real, gen = thumbs.image(real_path), thumbs.image(gen_path)
    if real is None or gen is None:
        return
    a = P.align(real, gen)
    word = "aligned" if a.aligned else "unaligned"
    m.overlay = Cell(gen_path.name, f"overlay ({word}; match {a.match:.3f})",
                     f"overlay of real {m.real.name} (magenta) and generated {gen_path.name} (green), {word}, match {a.match:.3f}",
                     P.data_uri(a.overlay, thumbs.size), "overlay", a.match)
    m.difference = Cell(gen_path.name, f"|difference| ({word})",
                        f"absolute difference of real {m.real.name} and generated {gen_path.name}, {word}",
                        P.data_uri(a.difference, thumbs.size), "difference", a.match)
    m.match, m.match_note = a.match, a.note
    m.arrays = {"real": real, "generated": a.warped, "overlay": a.overlay, "difference": a.difference}


def _score(rows, i: int) -> float:
    try:
        return float(rows.col("score")[i])
    except ValueError:
        return float("nan")


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "…"


def evidence_rows(section: MembershipSection, n: int = 6) -> list[tuple[str, list[P.Tile]]]:
    out = []
    for m in section.top[:n]:
        if not m.arrays:
            continue
        nb = m.neighbours[0]
        out.append((f"#{m.rank} score {fmt(m.score)}", [
            P.Tile(f"real {m.real.name}", m.arrays["real"]),
            P.Tile(f"gen {nb.name} {fmt(nb.score)}", m.arrays["generated"]),
            P.Tile(f"overlay, match {m.match:.3f}", m.arrays["overlay"]),
            P.Tile("|difference|", m.arrays["difference"]),
        ]))
    return out
