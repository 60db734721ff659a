"""The CLI's one error path: how ``fprt`` ends when something goes wrong.

- usage errors (typer/click: an unknown option, a missing one, a value outside its choices) print one line
  ``fprt: error: --task: 'membershp' is not one of subsets, membership. Did you mean 'membership'?`` → exit 2;
- ``FprtError`` (what a user can cause: an option, a path, data or a model that is unusable, a missing GPU or
  optional dependency) prints its one line → exit ``error.exit_code`` (2; 1 for a run that failed on the way,
  e.g. a parity bar missed);
- ``OSError`` (a file that cannot be read or written, a full disk) prints ``strerror: filename`` → exit 1;
- ``KeyboardInterrupt`` → ``fprt: interrupted`` → exit 130;
- anything else is a bug in fprt: its traceback is printed as Python prints it, exit 1.

With ``debug`` (``--debug`` or ``FPRT_DEBUG=1``) every error also prints its traceback.
"""

from __future__ import annotations

import re
import sys
import traceback

from fprt.errors import FprtError


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def choice_error(exc) -> str | None:
    """``--opt: 'value' is not one of a, b. Did you mean 'x'?`` for a typo in an Enum choice, else None."""
    from fprt.choices import nearest_choice

    param = getattr(exc, "param", None)
    descriptor = getattr(param, "type_descriptor", None)
    choices = getattr(descriptor, "choices", None) if descriptor is not None else None
    if not choices:
        return None
    names = [getattr(c, "value", str(c)) for c in choices]
    value = _bad_value(exc)
    if value is None:
        return None
    hint = nearest_choice(value, names)
    did_you_mean = f". Did you mean {hint!r}?" if hint else ""
    return f"{_param_name(exc)}: {value!r} is not one of {', '.join(names)}{did_you_mean}"


def _bad_value(exc) -> str | None:
    cause = exc.__cause__
    errors = getattr(cause, "errors", None)
    if callable(errors):
        try:
            found = errors()[0].get("input")
            if found is not None:
                return str(found)
        except Exception:  # pydantic's error layout is not ours to rely on: fall back to the message
            pass
    match = re.search(r"'(.*?)' is not one of", str(getattr(exc, "message", exc)))
    return match.group(1) if match else None


def _param_name(exc) -> str:
    param = getattr(exc, "param", None)
    if getattr(param, "param_type_name", None) == "argument":
        return str(param.metavar or param.name).upper()
    hint = getattr(exc, "param_hint", None)
    if hint:
        return hint if isinstance(hint, str) else " / ".join(hint)
    opts = [o for o in getattr(param, "opts", []) or [] if o.startswith("--")] or list(getattr(param, "opts", []) or [])
    if opts:
        return opts[0]
    metavar = getattr(param, "metavar", None) or getattr(param, "name", None)
    return str(metavar).upper() if metavar else "value"


def usage_message(exc) -> str:
    from typer._click.exceptions import BadParameter

    if isinstance(exc, BadParameter):
        found = choice_error(exc)
        if found is not None:
            return found
        if getattr(exc, "param", None) is not None or getattr(exc, "param_hint", None) is not None:
            message = getattr(exc, "message", "") or exc.format_message()
            if type(exc).__name__ == "MissingParameter":
                return f"{_param_name(exc)}: missing"
            return f"{_param_name(exc)}: {message}"
    return exc.format_message()


def _print_error(message: str) -> None:
    print(f"fprt: error: {_one_line(message)}", file=sys.stderr, flush=True)


def run_cli(app, argv: list[str], *, debug: bool = False) -> int:
    """Run the typer ``app`` on ``argv``; return the process exit code (see the module docstring)."""
    from typer import Abort, Exit
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    try:
        result = app(args=argv, prog_name="fprt", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except Exit as exc:
        return exc.exit_code
    except NoArgsIsHelpError as exc:
        print(exc.format_message(), flush=True)
        return 2
    except UsageError as exc:
        if debug:
            traceback.print_exc()
        _print_error(usage_message(exc))
        return 2
    except ClickException as exc:
        if debug:
            traceback.print_exc()
        _print_error(exc.format_message())
        return exc.exit_code
    except FprtError as exc:
        if debug:
            traceback.print_exc()
        _print_error(str(exc))
        return int(getattr(exc, "exit_code", 2))
    except OSError as exc:
        if debug:
            traceback.print_exc()
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        also = f" → {exc.filename2}" if getattr(exc, "filename2", None) else ""
        _print_error(f"{exc.strerror or exc}{where}{also}")
        return 1
    except (KeyboardInterrupt, Abort):
        print("fprt: interrupted", file=sys.stderr, flush=True)
        return 130
