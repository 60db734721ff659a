"""The evidence table: what each feature scored on the training split, and how the fused model used it.

One row per feature and one for the fused model. ``cv_score`` is the cross-validated score on the
labelled training split (membership: ROC AUC of used vs not used; subsets: accuracy), never on the test
split. ``weight`` is the feature's weight in the fused model (None where the fusion has no single weight,
e.g. a feature that was not selected). ``rests_on`` says whether the feature reads the real image's
*content* or the *generator*'s own trace (subsets fingerprints), so an auditor knows which one decided.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class EvidenceRow:
    feature: str  # e.g. "pixel_best_ncc", "geometric_patch_ncc", "fused"
    cv_score: float | None  # cross-validated on the training split
    cv_metric: str  # "roc_auc" (membership) | "accuracy" (subsets)
    weight: float | None = None  # weight in the fused model
    catches: str = ""  # what kind of trace this feature catches
    rests_on: str = "content"  # "content" | "generator" | "fused"
    chosen: bool = False  # the fused model / the decision rule applied to the test split


@dataclass
class EvidenceTable:
    task: str
    rows: list[EvidenceRow] = field(default_factory=list)
    fusion: str = ""  # how the rows were fused, e.g. "logistic regression (5-fold CV)"
    folds: int = 0
    training_images: int = 0
    note: str = ""  # e.g. why the unsupervised fallback was used

    def add(self, row: EvidenceRow) -> EvidenceRow:
        self.rows.append(row)
        return row

    @property
    def chosen(self) -> EvidenceRow | None:
        return next((r for r in self.rows if r.chosen), None)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "fusion": self.fusion, "folds": self.folds,
                "training_images": self.training_images, "note": self.note,
                "rows": [asdict(r) for r in self.rows]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvidenceTable":
        return cls(task=d["task"], rows=[EvidenceRow(**r) for r in d.get("rows", [])], fusion=d.get("fusion", ""),
                   folds=d.get("folds", 0), training_images=d.get("training_images", 0), note=d.get("note", ""))

    def to_text(self) -> str:
        """The lines ``fprt score`` prints at the end."""
        metric = self.rows[0].cv_metric if self.rows else ""
        head = f"evidence ({self.fusion}; {self.folds}-fold CV on {self.training_images} training images; {metric}):"
        width = max([len(r.feature) for r in self.rows] + [7])
        lines = [head, f"  {'feature':<{width}}  {'CV':>6}  {'weight':>7}  rests on   catches"]
        for r in self.rows:
            cv = f"{r.cv_score:.3f}" if r.cv_score is not None else "–"
            w = f"{r.weight:+.3f}" if r.weight is not None else "–"
            mark = " *" if r.chosen else ""
            lines.append(f"  {r.feature:<{width}}  {cv:>6}  {w:>7}  {r.rests_on:<9}  {r.catches}{mark}")
        if self.note:
            lines.append(f"  note: {self.note}")
        return "\n".join(lines)
