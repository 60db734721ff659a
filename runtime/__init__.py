"""fprt.runtime — ``fprt score``: backends, the scoring pipeline, the embedding cache, the scoring
methods, the outputs, and the similarity extension (``fprt.runtime.similarity``).

    from fprt.runtime import score
    result = score("model.onnx", "data/", "runs/score", labels="data/test/labels.csv")

Importing this package is light: backends and methods load on first use.
"""

from __future__ import annotations


def score(*args, **kwargs):
    """``fprt.runtime.api.score`` (see there): score a test split into run.csv + scores.csv + summary.json."""
    from fprt.runtime.api import score as _score

    return _score(*args, **kwargs)


def __getattr__(name: str):
    if name == "ScoreResult":
        from fprt.runtime.api import ScoreResult

        return ScoreResult
    raise AttributeError(f"module 'fprt.runtime' has no attribute {name!r}")
