"""Every closed set of values the ``fprt`` command line accepts, in one place.

Each set is a ``str`` Enum, so typer lists it in ``--help``, validates it, completes it in the shell,
and the CLI's "did you mean" error (``nearest_choice``) has the full list to search. The values are the
library's own names (tests check each Enum against the library constant it mirrors), so a command hands
``choice.value`` straight to the library function.

Importing this module is light: the method names come from the method registry
(``fprt.runtime.methods.method_names``), which imports NumPy but neither torch nor onnxruntime.
"""

from __future__ import annotations

import difflib
from enum import Enum


class Choice(str, Enum):
    """A CLI choice: prints as its value."""

    def __str__(self) -> str:
        return self.value


def _enum(name: str, values, doc: str) -> type[Choice]:
    members = {v.replace("-", "_"): v for v in values}
    cls = Choice(name, members)  # type: ignore[call-overload]
    cls.__doc__ = doc
    return cls


Task = _enum("Task", ("subsets", "membership"), "The ImageCLEFmedical GANs task of a dataset or model.")
Device = _enum("Device", ("auto", "cpu", "cuda"), "Where the model runs; auto = cuda when usable, else cpu.")
Family = _enum("Family", ("siamese", "pair", "classifier", "features"), "Model family of `fprt train`.")
Head = _enum("Head", ("svm", "logreg", "kmeans", "agglomerative"), "scikit-learn head of the features family.")
Miner = _enum("Miner", ("hard", "none"), "Siamese pair mining.")
TrainOn = _enum("TrainOn", ("all", "real"), "Which training images a classifier learns from.")
InfoCheck = _enum("InfoCheck", ("decode", "sample", "none"), "`fprt info`: decode every file, a sample, or none.")
ScoreCheck = _enum("ScoreCheck", ("verify", "decode"), "`fprt score`: screen headers + checksums, or decode fully.")
OnError = _enum("OnError", ("stop", "skip"), "What a bad image does to a run.")
Backend = _enum("Backend", ("onnx", "torch", "tensorrt"), "Model formats / runtime backends (fprt.formats).")
Precision = _enum("Precision", ("fp32", "int8", "fp16", "bf16"), "Numeric precisions `fprt bench` times.")
Exporter = _enum("Exporter", ("auto", "dynamo", "torchscript"), "torch.onnx exporter.")
SubsetLabels = _enum("SubsetLabels", ("names", "index"), "subsets run.csv labels: t1..tK or 1..K.")
GeneratedNaming = _enum("GeneratedNaming", ("gen_t", "t"), "Demo data: generated folders gen_t1.. or t1..")


def method_choices() -> list[str]:
    """Every ``--method`` name of both tasks, ``auto`` first (it is the default where a training split exists)."""
    from fprt.runtime.methods import method_names

    names = method_names()
    return names if "auto" in names else ["auto", *names]


Method = _enum("Method", method_choices(), "Scoring method of `fprt score` (fprt.runtime.methods).")

# Old or informal spellings → the choice they mean; named in the "did you mean" hint, never accepted silently.
ALIASES = {
    "gpu": "cuda",
    "all": "decode",
    "full": "decode",
    "onnxruntime": "onnx",
    "ort": "onnx",
    "trt": "tensorrt",
    "pytorch": "torch",
    "membershp": "membership",
    "subset": "subsets",
}


def nearest_choice(value: str, choices: list[str]) -> str | None:
    """The choice a mistyped ``value`` most likely meant (aliases first, then difflib), or None."""
    key = str(value).strip().lower().replace("_", "-")
    for name in (key, key.replace("-", "_")):
        if ALIASES.get(name) in choices:
            return ALIASES[name]
    normalised = {c.lower().replace("_", "-"): c for c in choices}
    if key in normalised:
        return normalised[key]
    close = difflib.get_close_matches(key, list(normalised), n=1, cutoff=0.5)
    return normalised[close[0]] if close else None
