"""The CLI's one error path (issue 13): expected failures print one line `fprt: error: …` naming the file or
option; exit 2 for unusable input, 1 for a failed run; --debug / FPRT_DEBUG=1 add the traceback; bugs keep theirs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
import typer

from fprt.errors import DataError, ParityError
from fprt.errors_cli import run_cli


def _toy_app():
    toy = typer.Typer()

    @toy.command()
    def fail(kind: str) -> None:
        if kind == "data":
            raise DataError("/d/x.png: truncated PNG")
        if kind == "parity":
            raise ParityError("INT8 export refused by the accuracy gate")
        if kind == "oserror":
            open("/nonexistent-dir/run.csv", "w")
        if kind == "bug":
            raise ZeroDivisionError("a bug")
        if kind == "warn":
            logging.getLogger("fprt.runtime").warning("careful")

    @toy.command()
    def other() -> None:
        pass

    return toy


@pytest.mark.parametrize("kind, code, line", [
    ("data", 2, "fprt: error: /d/x.png: truncated PNG"),
    ("parity", 1, "fprt: error: INT8 export refused by the accuracy gate"),
    ("oserror", 1, "fprt: error: No such file or directory: /nonexistent-dir/run.csv"),
])
def test_expected_failures_are_one_line(kind, code, line, capsys):
    assert run_cli(_toy_app(), ["fail", kind]) == code
    assert capsys.readouterr().err == line + "\n"


def test_debug_adds_the_traceback(capsys):
    assert run_cli(_toy_app(), ["fail", "data"], debug=True) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.rstrip().endswith("fprt: error: /d/x.png: truncated PNG")


def test_a_bug_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        run_cli(_toy_app(), ["fail", "bug"])


def _fprt(*args, env=None):
    return subprocess.run([sys.executable, "-m", "fprt", *map(str, args)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_real_commands_exit_codes(tmp_path):
    missing = tmp_path / "missing"
    p = _fprt("info", "--data", missing)
    assert p.returncode == 2 and p.stderr == f"fprt: error: {missing}: no such folder\n"
    p = _fprt("info", "--data", missing, "--debug")  # global flag after the command
    assert p.returncode == 2 and "Traceback" in p.stderr and p.stderr.rstrip().endswith("no such folder")
    p = _fprt("info", "--data", missing, env={"FPRT_DEBUG": "1"})
    assert p.returncode == 2 and "Traceback" in p.stderr
    p = _fprt("score", "--data", missing)  # a required option missing: a usage error
    assert p.returncode == 2 and p.stderr == "fprt: error: --out: missing\n"
    p = _fprt("score", "--data", missing, "--out", tmp_path / "o", "--top-k", "0")
    assert p.returncode == 2 and p.stderr.startswith("fprt: error: --top-k: ") and p.stderr.count("\n") == 1
    not_a_folder = tmp_path / "f.txt"
    not_a_folder.write_text("x")
    p = _fprt("cache", "info", "--cache", not_a_folder)
    assert p.returncode == 2 and p.stderr == f"fprt: error: cache root {not_a_folder}: not a folder (check --cache / FPRT_CACHE_DIR)\n"


def test_warnings_carry_the_prefix_and_v_q(capsys):
    from fprt.log import setup_logging

    setup_logging(0, False)
    logging.getLogger("fprt.runtime").warning("careful")
    logging.getLogger("fprt.runtime").info("detail")
    assert capsys.readouterr().err == "fprt: warning: careful\n"
    setup_logging(1, False)
    logging.getLogger("fprt.trainer").info("detail")
    assert capsys.readouterr().err == "fprt: detail\n"
    setup_logging(0, True)
    logging.getLogger("fprt").warning("hidden")
    assert capsys.readouterr().err == ""
    setup_logging(0, False)
    import warnings

    warnings.warn("fprt export: the dynamo exporter failed; TorchScript used")
    assert capsys.readouterr().err == "fprt: warning: export: the dynamo exporter failed; TorchScript used\n"
