"""Evidence features for ``--method auto``: every trace fprt can measure between real and generated
images, each validated on the labelled training split before the fused decision touches the test split.

- ``table``: the evidence table (per feature: cross-validated score on the training split, weight in the
  fused model, what it catches, whether it rests on content or on the generator) — printed by
  ``fprt score`` and stored in summary.json under ``"evidence"``.
- ``membership`` / ``geometry``: per real image against the generated set (and against the other real images).
- ``subsets`` / ``fingerprint``: per generated image against the labelled training subsets.
"""

from fprt.runtime.evidence.table import EvidenceRow, EvidenceTable

__all__ = ["EvidenceRow", "EvidenceTable"]
