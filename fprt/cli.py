"""The ``fprt`` command line: thin typer wrappers, each one a call into the Python API.

Heavy modules (torch, onnxruntime) are imported inside the commands, never at module level, so
``fprt --help`` is instant.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="fprt",
    help="fprt, the fingerprint runtime: audit synthetic medical images for traces of their training images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """fprt, the fingerprint runtime: audit synthetic medical images for traces of their training images."""


@app.command()
def checks() -> None:
    """Show what this machine offers fprt: torch/CUDA, GPU, nvcc, ONNX Runtime, TensorRT, extension."""
    from fprt.checks import print_checks, run_checks

    print_checks(run_checks())


def main() -> None:
    import sys

    from fprt.errors import FprtError

    try:
        app()
    except FprtError as exc:
        print(f"fprt: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
