"""The parity check: ONNX Runtime against PyTorch on the same images, with stated bars.

It runs on every export and cannot be switched off: ``export_onnx`` writes nothing unless every
check passes, and the figures are printed and stored beside the model (``<out>.parity.json``).

Bars (``BARS``; per output, at every batch size checked):

==========  ==========================================================================================
precision   bar
==========  ==========================================================================================
fp32        ``embedding`` and ``probability``: max |ONNX − PyTorch| ≤ 1e-4;
            ``logits``: max |Δ| ≤ 1e-4 × max(1, max |logit|) (logits are not normalised)
fp16        every row's cosine to PyTorch fp32 ≥ 0.999 (``embedding``, ``logits``);
            ``probability``: max |Δ| ≤ 5e-3
int8        every row's cosine to PyTorch fp32 ≥ 0.98 (``embedding``, ``logits``);
            ``probability``: max |Δ| ≤ 0.05 — and the accuracy gate of ``fprt.export.quantize``
==========  ==========================================================================================

The fp16 and int8 bars are minima over rows (the worst image), not means. They were set from what
fprt's models measure on demo images (worst row over batches 1 and 16): fp16 0.9999998 (Siamese CNN
at 256², trained 4 epochs on demo data) and 0.9999997 (ResNet-18 classifier at 224²); INT8 QDQ
0.99966 (that Siamese CNN) and 0.99919 (ResNet-18, untrained weights). The bars leave room for other
models and data, not for bugs: a wrong normalisation or channel order drops cosine far below them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class Bars:
    precision: str
    max_abs: float | None
    """fp32: the max |Δ| allowed on embeddings and probabilities (logits: × max(1, max |logit|))."""
    min_cosine: float | None
    """fp16/int8: the lowest row cosine to the fp32 reference allowed on 2-D outputs."""
    prob_max_abs: float
    """The max |Δ| allowed on a pair model's probability."""


BARS: dict[str, Bars] = {
    "fp32": Bars("fp32", max_abs=1e-4, min_cosine=None, prob_max_abs=1e-4),
    "fp16": Bars("fp16", max_abs=None, min_cosine=0.999, prob_max_abs=5e-3),
    "int8": Bars("int8", max_abs=None, min_cosine=0.98, prob_max_abs=0.05),
}
DEFAULT_BATCHES = (1, 16)


def row_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine between matching rows of two N×D arrays; two all-zero rows count as identical (1)."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    dot = (a * b).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = dot / (na * nb)
    both_zero = (na < 1e-12) & (nb < 1e-12)
    cos = np.where(both_zero, 1.0, np.where((na < 1e-12) | (nb < 1e-12), 0.0, cos))
    return np.clip(cos, -1.0, 1.0)


def compare_output(name: str, ref: np.ndarray, got: np.ndarray, bars: Bars) -> dict:
    """Figures for one output and whether they pass ``bars``."""
    ref = np.asarray(ref, np.float32)
    got = np.asarray(got, np.float32)
    if ref.shape != got.shape:
        return {"output": name, "passed": False, "problem": f"shape {list(got.shape)} != PyTorch {list(ref.shape)}"}
    if not np.isfinite(got).all():
        return {"output": name, "passed": False, "problem": "non-finite values (NaN/Inf) in the ONNX output"}
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    fig = {
        "output": name,
        "shape": list(got.shape),
        "max_abs_err": float(diff.max()) if diff.size else 0.0,
        "mean_abs_err": float(diff.mean()) if diff.size else 0.0,
        "max_abs_ref": float(np.abs(ref).max()) if ref.size else 0.0,
    }
    if ref.ndim >= 2:
        cos = row_cosine(ref, got)
        fig["min_cosine"] = float(cos.min())
        fig["mean_cosine"] = float(cos.mean())
        if name == "logits":
            fig["argmax_agreement"] = float((ref.argmax(1) == got.argmax(1)).mean())
    if ref.ndim == 1:  # probability
        bar = bars.prob_max_abs
        fig["bar"] = f"max|Δ| ≤ {bar:g}"
        fig["passed"] = fig["max_abs_err"] <= bar
    elif bars.max_abs is not None:
        bar = bars.max_abs * (max(1.0, fig["max_abs_ref"]) if name == "logits" else 1.0)
        fig["bar"] = f"max|Δ| ≤ {bar:.3g}"
        fig["passed"] = fig["max_abs_err"] <= bar
    else:
        fig["bar"] = f"min cos ≥ {bars.min_cosine:g}"
        fig["passed"] = fig["min_cosine"] >= bars.min_cosine
    return fig


@dataclass
class ParityReport:
    """The parity of one graph (``main`` or a pair model's ``embed``) at one precision."""

    graph: str
    precision: str
    images: str
    synthetic: bool
    bars: dict
    batches: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.batches) and all(o["passed"] for b in self.batches for o in b["outputs"])

    @property
    def failures(self) -> list[str]:
        out = []
        for b in self.batches:
            for o in b["outputs"]:
                if not o["passed"]:
                    what = o.get("problem") or _figures(o)
                    out.append(f"{self.graph} graph, {self.precision}, batch {b['batch']}, {o['output']}: {what} (bar {o.get('bar', '?')})")
        return out

    def to_dict(self) -> dict:
        data = asdict(self)
        data["passed"] = self.passed
        return data

    def lines(self) -> list[str]:
        """Human-readable figures, one line per batch and output."""
        out = []
        for b in self.batches:
            for o in b["outputs"]:
                status = "ok" if o["passed"] else "FAIL"
                what = o.get("problem") or _figures(o)
                out.append(
                    f"  {self.graph:<5} {self.precision:<4} batch {b['batch']:>3}  {o['output']:<11} {what}  [{o.get('bar', '')}] {status}"
                )
        return out


def _figures(o: dict) -> str:
    text = f"max|Δ| {o['max_abs_err']:.2e}"
    if "min_cosine" in o:
        text += f"  min cos {o['min_cosine']:.6f}"
    if "argmax_agreement" in o:
        text += f"  argmax agree {o['argmax_agreement']:.3f}"
    return text


def check_parity(session, reference, imageset, preprocess, *, precision: str, graph: str = "main", batch_sizes=DEFAULT_BATCHES) -> ParityReport:
    """Compare ``session`` (ONNX Runtime) with ``reference(pixels) -> {output: array}`` (PyTorch fp32).

    Each batch size ``b`` runs the first ``b`` images of ``imageset`` (cycled when there are fewer) in
    one call, so batch 1 and a real batch both go through the graph's dynamic batch axis.
    """
    from fprt.export.ort import run

    bars = BARS[precision]
    report = ParityReport(graph=graph, precision=precision, images=imageset.source, synthetic=imageset.synthetic, bars=asdict(bars))
    for b in batch_sizes:
        pixels = imageset.take(b)
        ref = reference(pixels)
        got = run(session, pixels, preprocess)
        outputs = [compare_output(name, ref[name], got.get(name, np.zeros(0)), bars) if name in got else
                   {"output": name, "passed": False, "problem": "missing from the ONNX outputs"} for name in ref]
        report.batches.append({"batch": int(b), "outputs": outputs})
    return report
