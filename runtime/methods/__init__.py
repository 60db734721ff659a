"""Scoring methods (``fprt score --method``), one class each, registered by name.

==================  ==========  ============================================================
method              task        what it does (source)
==================  ==========  ============================================================
auto                subsets     best of the evidence below + pixel/fingerprint probes, chosen by CV on the training split
centroid            subsets     nearest class centroid (AIMultimediaLab 2025)
classifier          subsets     argmax of a classifier's logits (Medhastra 2025)
knn                 subsets     k-NN vote over labelled real+generated training images
auto                membership  evidence (pixels, geometry, SSIM, embedding) fused on the training split
max-sigma           membership  best similarity to generated > μ + α·σ (Medhastra 2025)
max-threshold       membership  best similarity to generated > the model's validation threshold
logreg              membership  logistic regression on two best scores, fitted on --reference (Medhastra 2025)
pair                membership  pair-scorer probability on the k nearest generated images (VIT Visioneers 2025)
vcmi-max            membership  best to generated > best real×real (VCMI 2023 threshold approach)
vcmi-std            membership  best to generated > mean + 3·std of real×real (fprt's variant; not in the papers)
vcmi-retrieval      membership  nearest real image of some generated image (VCMI 2023 retrieval approach)
ssim-max            membership  SSIM + vcmi-max, the 2023 winner (no model)
phash               membership  pHash Hamming distance (DMK 2023, no model)
==================  ==========  ============================================================

Defaults (``default_method``): whenever a training split is present (train/ or ``--reference``) →
``auto`` (both tasks, also without a model); else subsets → ``classifier`` for classifiers, ``centroid``
when the model stores centroids; membership → ``pair`` for pair scorers,
``max-threshold`` when the model stores a validation threshold, else ``max-sigma``.
"""

from __future__ import annotations

import difflib

from fprt.errors import FprtError
from fprt.runtime.methods.base import Context, ImageSet, Method, MethodOptions, MethodResult

__all__ = ["Context", "ImageSet", "Method", "MethodOptions", "MethodResult", "default_method", "get_method", "method_names"]


def _registry() -> dict[str, type[Method]]:
    from fprt.runtime.methods import membership, subsets

    return {cls.name: cls for cls in (*subsets.METHODS, *membership.METHODS)}


def _auto(task: str) -> Method:
    """``auto`` is one name with one class per task (``fprt.runtime.methods.auto_<task>``), imported only
    when asked for (its evidence code pulls in OpenCV and scikit-image)."""
    import importlib

    if task not in AUTO_TASKS:
        raise FprtError(f"--method auto needs the task (one of {list(AUTO_TASKS)}) to pick its evidence")
    return importlib.import_module(f"fprt.runtime.methods.auto_{task}").AUTO()


AUTO_TASKS = ("membership", "subsets")


ALIASES = {
    "nearest-centroid": "centroid",
    "centroids": "centroid",
    "argmax": "classifier",
    "k-nn": "knn",
    "threshold": "max-threshold",
    "mu-sigma": "max-sigma",
    "ssim": "ssim-max",
    "retrieval": "vcmi-retrieval",
    "logistic": "logreg",
}


def method_names(task: str | None = None) -> list[str]:
    autos = ["auto"] if task is None or task in AUTO_TASKS else []
    return autos + [n for n, cls in _registry().items() if task is None or cls.task == task]


def get_method(name: str, task: str | None = None) -> Method:
    """The method called ``name`` (aliases and ``_`` accepted); "did you mean" otherwise."""
    reg = _registry()
    key = name.strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key == "auto":
        return _auto(task)
    if key not in reg:
        close = difflib.get_close_matches(key, list(reg) + list(ALIASES), n=1, cutoff=0.5)
        hint = f" Did you mean {ALIASES.get(close[0], close[0])!r}?" if close else ""
        raise FprtError(f"--method {name!r} is not a scoring method; expected one of {sorted(reg)}.{hint}")
    method = reg[key]()
    if task is not None and method.task != task:
        raise FprtError(
            f"--method {method.name} is a {method.task} method but the data is a {task} test set; "
            f"{task} methods: {method_names(task)}"
        )
    return method


def default_method(task: str, meta, *, has_reference: bool) -> Method:
    """The method ``fprt score`` uses when ``--method`` is not given."""
    if task == "subsets":
        if has_reference:
            return get_method("auto", "subsets")  # a training split: validate the evidence there
        if meta.kind == "classifier":
            return get_method("classifier")
        if meta.centroids is not None:
            return get_method("centroid")
        raise FprtError(
            "no default subsets method for this model: it stores no class centroids; pass --reference with the "
            "training data (centroid, knn) or --method"
        )
    if has_reference:
        return get_method("auto", "membership")  # evidence fused on the training split
    if meta.kind == "pair":
        return get_method("pair")
    if meta.threshold is not None:
        return get_method("max-threshold")
    return get_method("max-sigma")

