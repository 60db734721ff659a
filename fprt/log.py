"""fprt's one logger: every message of the library goes through ``logging.getLogger("fprt")`` (or a child,
``fprt.runtime``, ``fprt.trainer``, ...). The CLI calls ``setup_logging`` once: warnings and errors print
as ``fprt: warning: …`` on stderr, ``-v`` adds information (``fprt: …``), ``-vv`` debug lines, ``-q`` keeps
only errors. Python ``warnings`` raised while a command runs are shown the same way.
"""

from __future__ import annotations

import logging
import sys
import warnings

LOGGER = "fprt"


class _Prefix(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and record.levelno >= logging.ERROR:
            message += "\n" + self.formatException(record.exc_info)
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"fprt: {level}{message}"


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def level_for(verbose: int = 0, quiet: bool = False) -> int:
    if quiet:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)


def setup_logging(verbose: int = 0, quiet: bool = False) -> logging.Logger:
    """Route the ``fprt`` logger (and Python warnings) to one stderr handler with the ``fprt:`` prefix."""
    logger = logging.getLogger(LOGGER)
    for handler in [h for h in logger.handlers if getattr(h, "_fprt_cli", False)]:
        logger.removeHandler(handler)
    handler = _Stderr()
    handler._fprt_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(_Prefix())
    level = level_for(verbose, quiet)
    handler.setLevel(level)  # -q filters here, so records still reach other handlers (test capture, an app's own)
    logger.addHandler(handler)
    logger.setLevel(level if level < logging.WARNING else logging.NOTSET)
    warnings.showwarning = _show_warning
    return logger


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    origin = "" if "fprt" in str(filename) or category is UserWarning else f" ({category.__name__}, {filename}:{lineno})"
    text = str(message)
    text = text[len("fprt "):] if text.startswith("fprt ") else text  # "fprt export: …" → "fprt: warning: export: …"
    logging.getLogger(LOGGER).warning("%s%s", text, origin)
