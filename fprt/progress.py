"""Progress bars for long work: one tqdm wrapper so every part of fprt behaves the same.

Bars go to stderr. They are off when ``FPRT_NO_PROGRESS=1`` (the test suite sets it) or when
``disable=True`` is passed; tqdm itself hides them when stderr is not a terminal only if asked
(``disable=None``), which is the default here so logs of batch jobs stay clean.
"""

from __future__ import annotations

import os


def progress_enabled() -> bool:
    return os.environ.get("FPRT_NO_PROGRESS", "0") not in ("1", "true", "yes")


def progress(iterable=None, *, desc: str | None = None, total: int | None = None, unit: str = "it", disable: bool | None = None, **kwargs):
    """``tqdm(iterable, ...)`` honouring ``FPRT_NO_PROGRESS``; ``disable=None`` hides it off a terminal."""
    from tqdm.auto import tqdm

    if not progress_enabled():
        disable = True
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=disable, dynamic_ncols=True, **kwargs)
