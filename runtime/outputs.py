"""What ``fprt score`` writes into ``--out DIR`` — every file atomically (``fprt.io``).

- ``run.csv``: the submission. Default: no header, one line ``image_id,label`` per test image, id =
  file name without extension, every test image exactly once, no blank lines; membership label
  1 = used / 0 = not used (the labels of the 2023 overview's confusion matrices); subsets label =
  subset name. These are fprt's own rules (the papers in shared/papers do not describe a submission
  format or validator); check them against the edition's instructions before submitting.
  ``RunCsvFormat`` holds the variants later editions and teams used (a header line, ids with their
  extension, subset labels as 1..K). ``validate_run_csv`` re-reads the written file and checks it
  against those rules; ``fprt score`` fails rather than report success on a file that breaks them.
- ``scores.csv``: per image the decision, the continuous score, method-specific score columns and
  the top-k neighbours (file names and scores).
- ``metrics.json`` + plots (with ``--labels``): ``fprt.metrics`` on the decisions and scores;
  confusion matrix, ROC curve, score histograms per true class, 2-D PCA of the embeddings.
- ``summary.json``: counts, per-stage timings, images/s, backend, model hash, fprt version.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fprt.errors import DataError, FprtError
from fprt.io import atomic_write_bytes, atomic_write_json, atomic_write_text

SUBSET_LABEL_MODES = ("names", "index")


@dataclass(frozen=True)
class RunCsvFormat:
    """How run.csv is spelled (default: no header, ids without extension, subset names; see the module docstring)."""

    header: str | None = None  # e.g. "image_path,predicted_class"; None = no header line
    keep_extension: bool = False  # ids as file names with their extension
    subset_labels: str = "names"  # "names" (t1..tK) or "index" (1..K)

    def __post_init__(self) -> None:
        if self.subset_labels not in SUBSET_LABEL_MODES:
            import difflib

            close = difflib.get_close_matches(str(self.subset_labels), SUBSET_LABEL_MODES, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise FprtError(f"--subset-labels {self.subset_labels!r}: expected one of {list(SUBSET_LABEL_MODES)}.{hint}")
        if self.header is not None:
            names = self.header.split(",")
            if len(names) != 2 or not all(n.strip() and n == n.strip() for n in names):
                raise FprtError(
                    f"--csv-header {self.header!r}: expected two column names separated by one comma, "
                    "e.g. 'image_path,predicted_class'"
                )

    def to_dict(self) -> dict[str, Any]:
        return {"header": self.header, "keep_extension": self.keep_extension, "subset_labels": self.subset_labels}


def subset_index(name: str, classes: Sequence[str]) -> int:
    """The 1-based number of a subset: the N of ``tN``, else its position in ``classes``."""
    m = re.fullmatch(r"t(\d+)", str(name))
    return int(m.group(1)) if m else list(classes).index(name) + 1


def run_label(task: str, decision: str, classes: Sequence[str], fmt: RunCsvFormat) -> str:
    """The label column of run.csv for one decision."""
    if task == "membership":
        if decision not in ("0", "1"):
            raise ValueError(f"membership decision must be '0' or '1', got {decision!r}")
        return decision
    if decision not in classes:
        raise ValueError(f"subsets decision {decision!r} is not one of {list(classes)}")
    return str(subset_index(decision, classes)) if fmt.subset_labels == "index" else decision


def run_id(path: Path, fmt: RunCsvFormat) -> str:
    from fprt.data import image_id

    return path.name if fmt.keep_extension else image_id(path)


def render_run_csv(ids: Sequence[str], labels: Sequence[str], fmt: RunCsvFormat) -> str:
    lines = [fmt.header] if fmt.header else []
    lines += [f"{i},{lab}" for i, lab in zip(ids, labels)]
    return "\n".join(lines) + "\n"


def shown(path: Path | str) -> str:
    """``path`` as text that can always be printed: bytes that are not UTF-8 appear as ``\\xNN``."""
    import os

    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def check_ids(paths: Sequence[Path], fmt: RunCsvFormat, *, classes: Sequence[str] | None = None) -> list[str]:
    """Ids of the test images as run.csv will spell them; DataError when two collide or one cannot be
    written (comma, quote, line break, edge spaces, a file name that is not UTF-8). With ``classes``,
    the class names are checked too (``check_class_names``). Called before any work."""
    from fprt.modelmeta import csv_unsafe

    check_file_names(paths, "test image")
    if classes is not None:
        check_class_names(classes)
    ids = [run_id(p, fmt) for p in paths]
    seen: dict[str, Path] = {}
    clashes, bad = [], []
    for i, p in zip(ids, paths):
        if i in seen:
            clashes.append(f"{seen[i].name} and {p.name} → {i!r}")
        seen[i] = p
        if csv_unsafe(i):
            bad.append(p.name)
    if clashes:
        raise DataError(
            "two test images would get the same run.csv id (file name without extension): "
            + "; ".join(clashes[:10])
            + (" ..." if len(clashes) > 10 else "")
            + ". Rename them, or pass --keep-extension"
        )
    if bad:
        raise DataError(f"file names that cannot be written as run.csv ids (comma, quote, newline or edge spaces): {bad[:10]}")
    return ids


def check_file_names(paths: Sequence[Path], what: str = "image") -> None:
    """``DataError`` listing every file whose name is not valid UTF-8 (run.csv, scores.csv and
    summary.json are UTF-8 and name the files): before any work, not while writing the results."""
    bad = []
    for p in paths:
        try:
            str(p).encode("utf-8")
        except UnicodeEncodeError:
            bad.append(shown(p))
    if bad:
        raise DataError(
            f"{len(bad)} {what} file name(s) are not valid UTF-8, so fprt's CSV and JSON outputs cannot name them: "
            + "; ".join(bad[:10]) + (" ..." if len(bad) > 10 else "") + ". Rename them (e.g. convmv -f latin1 -t utf8)"
        )


def check_class_names(classes: Sequence[str], source: str = "the class names") -> None:
    """``DataError`` when a class name cannot be one CSV field of run.csv/scores.csv (comma, quote,
    line break, edge spaces, empty, not UTF-8) or appears twice."""
    from fprt.modelmeta import csv_unsafe

    problems = [f"{shown(c)!r} {why}" for c in classes if (why := csv_unsafe(str(c)))]
    dupes = sorted({str(c) for c in classes if list(classes).count(c) > 1})
    if dupes:
        problems.append(f"duplicates {dupes}")
    if problems:
        raise DataError(f"{source}: class names cannot be written to run.csv: {'; '.join(problems)}")


def validate_run_csv(path: Path, *, expected_ids: Sequence[str], task: str, classes: Sequence[str], fmt: RunCsvFormat) -> None:
    """Re-read run.csv and check it against the submission rules; FprtError listing every problem."""
    text = Path(path).read_bytes().decode("utf-8")
    problems: list[str] = []
    if not text.endswith("\n"):
        problems.append("the file does not end with a newline")
    if "\r" in text:
        problems.append("the file has carriage returns (Windows line endings)")
    lines = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
    if fmt.header:
        if not lines or lines[0] != fmt.header:
            problems.append(f"line 1 is not the header {fmt.header!r}")
        body = lines[1:]
        first = 2
    else:
        body = lines
        first = 1
    if task == "membership":
        allowed = {"0", "1"}
    elif fmt.subset_labels == "index":
        allowed = {str(subset_index(c, classes)) for c in classes}
    else:
        allowed = set(classes)
    seen: set[str] = set()
    for n, line in enumerate(body, start=first):
        if not line.strip():
            problems.append(f"line {n} is blank")
            continue
        parts = line.split(",")
        if len(parts) != 2:
            problems.append(f"line {n} has {len(parts)} fields, expected 2: {line!r}")
            continue
        image, label = parts
        if not image or image != image.strip() or label != label.strip():
            problems.append(f"line {n}: empty id or stray spaces: {line!r}")
        if label not in allowed:
            problems.append(f"line {n}: label {label!r} is not one of {sorted(allowed)}")
        if image in seen:
            problems.append(f"line {n}: id {image!r} appears twice")
        seen.add(image)
        if len(problems) > 20:
            break
    expected = set(expected_ids)
    missing, extra = expected - seen, seen - expected
    if missing:
        problems.append(f"{len(missing)} test image(s) missing, e.g. {sorted(missing)[:5]}")
    if extra:
        problems.append(f"{len(extra)} id(s) that are not test images, e.g. {sorted(extra)[:5]}")
    if problems:
        raise FprtError(f"{path}: run.csv breaks the submission format: " + "; ".join(problems[:20]))


def write_run_csv(path: Path, ids: Sequence[str], labels: Sequence[str], *, task: str, classes: Sequence[str], fmt: RunCsvFormat) -> Path:
    atomic_write_text(path, render_run_csv(ids, labels, fmt))
    validate_run_csv(path, expected_ids=ids, task=task, classes=classes, fmt=fmt)
    return path


# ---------------------------------------------------------------------------------------- scores.csv
def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return "nan"
        return f"{v:.7g}"
    if isinstance(v, (np.integer,)):
        return str(int(v))
    return str(v)


def write_scores_csv(path: Path, rows: dict[str, Sequence[Any]]) -> Path:
    """Columns in ``rows`` order; lists inside a cell are joined with ';'. A file name that is not
    UTF-8 (a reference image named in ``neighbours``) is written with its odd bytes as ``\\xNN``."""
    names = list(rows)
    n = len(rows[names[0]]) if names else 0
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(names)
    for i in range(n):
        out = []
        for name in names:
            v = rows[name][i]
            if isinstance(v, (list, tuple, np.ndarray)):
                out.append(";".join(_fmt(x) for x in v))
            else:
                out.append(_fmt(v))
        w.writerow(out)
    return atomic_write_text(path, shown(buf.getvalue()))


# ---------------------------------------------------------------------------------------- metrics + plots
def load_truth(labels_file: Path, ids: Sequence[str], task: str, classes: Sequence[str]) -> list[str]:
    """The true label of every test id, from a labels file in run.csv format; DataError naming what is missing."""
    from fprt.data import read_labels

    truth = {str(k): str(v) for k, v in read_labels(labels_file).items()}
    keys = list(ids)
    missing = [i for i in keys if i not in truth]
    if missing and any(i.rsplit(".", 1)[0] in truth for i in missing):  # ids written with --keep-extension
        keys = [i if i in truth else i.rsplit(".", 1)[0] for i in keys]
        missing = [i for i in keys if i not in truth]
    if missing:
        raise DataError(f"{labels_file}: no label for {len(missing)} test image(s), e.g. {missing[:5]}")
    out = [truth[i] for i in keys]
    allowed = {"0", "1"} if task == "membership" else set(classes)
    wrong = sorted({v for v in out if v not in allowed})
    if wrong:
        raise DataError(f"{labels_file}: labels {wrong[:5]} are not {sorted(allowed)}")
    return out


def compute_metrics(task: str, truth: Sequence[str], decisions: Sequence[str], scores, classes: Sequence[str]) -> dict:
    from fprt.metrics import binary_metrics, multiclass_metrics

    if task == "membership":
        return binary_metrics([int(t) for t in truth], [int(d) for d in decisions], scores)
    return multiclass_metrics(list(truth), list(decisions), labels=list(classes))


def _save_fig(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


@dataclass
class PlotInputs:
    task: str
    classes: Sequence[str]
    truth: Sequence[str]
    decisions: Sequence[str]
    scores: np.ndarray
    score_label: str
    embeddings: np.ndarray | None = None
    class_scores: np.ndarray | None = None  # M×G per-class scores (subsets), larger = more likely
    extra: dict[str, Any] = field(default_factory=dict)


def write_plots(out: Path, p: PlotInputs) -> list[Path]:
    """confusion_matrix.png, roc.png, score_hist.png, pca.png (when embeddings are given)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix, roc_curve

    written = []
    labels = ["0", "1"] if p.task == "membership" else list(p.classes)
    names = ["not used (0)", "used (1)"] if p.task == "membership" else list(p.classes)
    cm = confusion_matrix(list(p.truth), list(p.decisions), labels=labels)
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(labels), 1.0 + 0.8 * len(labels)))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
    ax.set_xticks(range(len(labels)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix")
    written.append(_save_fig(fig, out / "confusion_matrix.png"))

    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    if p.task == "membership":
        y = np.array([int(t) for t in p.truth])
        if len(np.unique(y)) == 2:
            fpr, tpr, _ = roc_curve(y, p.scores)
            ax.plot(fpr, tpr, label=p.score_label)
    elif p.class_scores is not None:
        for g, c in enumerate(p.classes):
            y = np.array([t == c for t in p.truth], dtype=int)
            if 0 < y.sum() < len(y):
                fpr, tpr, _ = roc_curve(y, p.class_scores[:, g])
                ax.plot(fpr, tpr, label=f"{c} vs rest")
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    written.append(_save_fig(fig, out / "roc.png"))

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    if p.task == "subsets" and p.class_scores is not None:
        # similarity of each image to its own subset against its similarity to the other subsets
        cs = np.asarray(p.class_scores, dtype=np.float64)
        own = np.array([[t == c for c in labels] for t in p.truth])
        groups = [("own subset", cs[own]), ("other subsets", cs[~own])]
        xlabel, title = "per-subset score (larger = more alike)", "scores to the true subset vs the others"
    else:
        groups = [(f"true {name}", p.scores[np.array([t == lab for t in p.truth])]) for lab, name in zip(labels, names)]
        xlabel, title = p.score_label, "scores by true class"
    values = np.concatenate([v for _, v in groups]) if groups else np.zeros(0)
    values = values[np.isfinite(values)]
    bins = np.histogram_bin_edges(values, bins=40) if values.size else 10
    for name, v in groups:
        v = v[np.isfinite(v)]
        if v.size:
            ax.hist(v, bins=bins, alpha=0.55, label=f"{name} (n={v.size})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(title)
    ax.legend(fontsize=8)
    written.append(_save_fig(fig, out / "score_hist.png"))

    if p.embeddings is not None and len(p.embeddings) >= 3 and np.asarray(p.embeddings).ndim == 2:
        from sklearn.decomposition import PCA

        xy = PCA(n_components=2, random_state=0).fit_transform(np.asarray(p.embeddings, dtype=np.float64))
        fig, ax = plt.subplots(figsize=(5.0, 4.5))
        for lab, name in zip(labels, names):
            sel = np.array([t == lab for t in p.truth])
            if sel.any():
                ax.scatter(xy[sel, 0], xy[sel, 1], s=6, alpha=0.7, label=name)
        ax.set_title("PCA of the embeddings (coloured by true class)")
        ax.legend(fontsize=8, markerscale=2)
        written.append(_save_fig(fig, out / "pca.png"))
    return written


def write_json(path: Path, obj: Any) -> Path:
    return atomic_write_json(path, _plain(obj))


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj
