"""fprt's exceptions. Everything a user can cause derives from ``FprtError``; its message names the
file or option at fault and what was expected. The CLI prints it as one line (``fprt: error: …``) and exits
with the error's ``exit_code``: 2 when what the user asked for cannot be done (an unusable option, path, dataset
or model; a dependency or device it needs is missing), 1 when a run failed on the way (a parity bar missed). From Python it is an ordinary
exception (each one is also the matching built-in: ValueError, ...).
"""

from __future__ import annotations


class FprtError(Exception):
    """Base of every user-facing fprt error."""

    exit_code = 2


class DataError(FprtError, ValueError):
    """A dataset folder or image file is unusable (unknown or ambiguous layout, empty class, bad image)."""


class ModelError(FprtError, ValueError):
    """A checkpoint, ONNX file or engine is missing, corrupt, foreign or does not fit."""


class ParityError(FprtError, RuntimeError):
    """An exported model disagrees with its source beyond the stated tolerance."""

    exit_code = 1


class MissingDependencyError(FprtError, ImportError):
    """An optional dependency (TensorRT, onnxruntime-gpu, Ray, a GPU) is needed and absent; says how to get it."""


class InputError(FprtError, ValueError):
    """An array or argument passed to a library function is unusable (shape, NaN/Inf, empty, k out of range)."""
