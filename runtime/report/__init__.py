"""``fprt report OUT``: one self-contained HTML page (``OUT/report.html``) that shows why fprt decided
what it did, plus ``OUT/evidence.png``, a one-image montage of the top matches for slides and issues.

    from fprt.runtime.report import write_report
    result = write_report("runs/score", top=24, labels="data/test/labels.csv")
    print(result.html, result.evidence_png)

The page reads the folder ``fprt score`` wrote (summary.json, scores.csv, metrics.json, plots) and the
scored images themselves (scores.csv names neighbours by file name; the data root and the reference are
indexed by name). It shows the top of each list — never every row — so it opens fast for 100,000 images;
scores.csv keeps the rest. Thumbnails are small WebP data URIs, charts inline SVG: no network, no
scripts from elsewhere, one file. Both files are written atomically (temporary file + rename) after
everything has been computed, so a failed report leaves no half page.

- membership: the ``top`` real images most likely used, each beside its nearest generated images and,
  for the nearest one, the aligned overlay and |difference| (``fprt.runtime.evidence.geometry.
  align_for_display`` where installed, else a plain difference, said so on the page); the ``top`` least
  likely for contrast; the score histogram with the decision threshold; ROC + AUC with labels.
- subsets: per predicted subset, the generated images it is surest of beside their nearest real
  training images; the confusion matrix and per-class precision/recall; the 2-D embedding map.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from fprt.io import atomic_write_bytes, atomic_write_text
from fprt.runtime.report import header as H
from fprt.runtime.report import membership as M
from fprt.runtime.report import subsets as S
from fprt.runtime.report.cells import Thumbs, fmt
from fprt.runtime.report.pictures import montage
from fprt.runtime.report.run import ScoreRun, load_run

log = logging.getLogger("fprt.report")

__all__ = ["ReportResult", "write_report"]

PLOTS = {"roc": "roc.png", "pca": "pca.png", "confusion": "confusion_matrix.png"}


@dataclass
class ReportResult:
    html: Path
    evidence_png: Path | None
    task: str
    rows_shown: int  # rows of the page's tables
    images: int  # thumbnails embedded
    seconds: float

    def describe(self) -> str:
        extra = f" and {self.evidence_png}" if self.evidence_png else ""
        return (f"report: {self.html}{extra} ({self.task}, {self.rows_shown} rows shown, {self.images} thumbnails, "
                f"{self.seconds:.1f} s)")


def write_report(out: str | Path, *, top: int = 24, labels: str | Path | None = None, per_class: int = 4,
                 neighbours: int = 4, html_name: str = "report.html") -> ReportResult:
    """Write ``out/report.html`` and ``out/evidence.png`` for the ``fprt score`` folder ``out``."""
    from fprt.errors import FprtError

    for name, value in (("--top", top), ("--per-class", per_class), ("--neighbours", neighbours)):
        if value < 1:
            raise FprtError(f"{name} must be >= 1, got {value}")
    t0 = time.perf_counter()
    run = load_run(out, labels=labels)
    thumbs = Thumbs()
    context = {"run": run, "head": H.build(run.summary, run.metrics), "fmt": fmt, "plots": _plots(run),
               "membership": None, "subsets": None, "labels": str(labels) if labels else None}
    if run.task == "membership":
        section = M.build(run, thumbs, top=top, shown=neighbours)
        context["membership"] = section
        evidence = M.evidence_rows(section)
        rows_shown = len(section.top) + len(section.bottom)
        title = f"fprt membership: the {len(evidence)} real images most likely used beside their nearest generated image (overlay, |difference|)"
    else:
        section = S.build(run, thumbs, per_class=per_class, shown=min(neighbours, 3))
        context["subsets"] = section
        evidence = S.evidence_rows(section, thumbs)
        rows_shown = sum(len(g.examples) for g in section.groups)
        title = "fprt subsets: generated test images beside their nearest real training images"
    png = montage(evidence, title) if evidence else None
    context["evidence_png"] = png is not None
    html = _render(context)
    out = Path(out)
    if png is not None:
        evidence_png = atomic_write_bytes(out / "evidence.png", png)
    else:  # nothing to show (no neighbour found on disk): an older evidence.png would belong to another run
        evidence_png = None
        (out / "evidence.png").unlink(missing_ok=True)
    html_path = atomic_write_text(out / html_name, html)
    images = html.count("<img ")
    return ReportResult(html_path, evidence_png, run.task, rows_shown, images, time.perf_counter() - t0)


def _plots(run: ScoreRun) -> dict[str, str]:
    """The PNG plots ``fprt score`` wrote (with --labels), as data URIs for the page."""
    found = {}
    for key, name in PLOTS.items():
        p = run.out / name
        if p.is_file():
            found[key] = "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode("ascii")
    return found


def _render(context: dict) -> str:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("fprt.runtime.report", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2").render(**context)
