"""Every closed choice of the CLI: listed in --help, checked against the library's own names, and a typo in any
of them ends as one line naming the option and the nearest choice (exit 2)."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from fprt import __version__
from fprt.cli import app, main
from fprt.cli_doc import _commands

COMMANDS = dict(_commands(typer.main.get_command(app)))


def _choice_params():
    for name, cmd in COMMANDS.items():
        for p in cmd.params:
            choices = p.type_descriptor.choices
            if choices and not getattr(p, "hidden", False):
                yield name, p, [c.value for c in choices]


CHOICE_PARAMS = list(_choice_params())
IDS = [f"{c}:{p.name}" for c, p, _ in CHOICE_PARAMS]


def _help(command: str) -> str:
    result = CliRunner().invoke(app, [*command.split(), "--help"], terminal_width=400, env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    return result.output


def test_every_choice_option_of_the_documented_kinds_exists():
    names = {(c, p.name) for c, p, _ in CHOICE_PARAMS}
    for expected in [("train", "family"), ("train", "task"), ("train", "device"), ("train", "head"), ("train", "miner"),
                     ("score", "method"), ("score", "device"), ("score", "check"), ("score", "on_error"),
                     ("score", "backend"), ("info", "check"), ("bench", "backend"), ("bench", "precision"),
                     ("bench", "device"), ("make-demo-data", "task"), ("export-onnx", "exporter")]:
        assert expected in names


@pytest.mark.parametrize("command, param, choices", CHOICE_PARAMS, ids=IDS)
def test_help_lists_the_choices(command, param, choices):
    text = _help(command)
    for choice in choices:
        assert re.search(rf"(?<![\w-]){re.escape(choice)}(?![\w-])", text), (choice, text)


@pytest.mark.parametrize("command, param, choices", CHOICE_PARAMS, ids=IDS)
def test_a_typo_names_the_option_and_the_nearest_choice(command, param, choices, capsys):
    target = max(choices, key=len)
    typo = target[:-1] + ("x" if target[-1] != "x" else "y")  # one letter off
    flag = [o for o in param.opts if o.startswith("--")]
    argv = [*command.split(), *(flag[:1] if flag else []), typo]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fprt: error: ")
    name = flag[0] if flag else (param.metavar or param.name.upper())
    assert name in err and f"Did you mean {target!r}" in err, err


def test_aliases_are_named_not_accepted(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["score", "--data", "x", "--out", "y", "--device", "gpu"])
    assert exc.value.code == 2
    assert "Did you mean 'cuda'" in capsys.readouterr().err


def test_enum_values_are_the_library_names():
    from fprt import choices as C
    from fprt.data.summary import CHECKS
    from fprt.formats import FORMATS
    from fprt.runtime.api import CHECK_LEVELS, ON_ERROR
    from fprt.runtime.methods import method_names
    from fprt.runtime.outputs import SUBSET_LABEL_MODES
    from fprt.trainer.heads import HEADS
    from fprt.trainer.models.registry import FAMILIES
    from fprt.trainer.training import MINERS, TRAIN_ON

    values = lambda e: [m.value for m in e]  # noqa: E731
    assert values(C.Family) == list(FAMILIES)
    assert values(C.Head) == list(HEADS)
    assert values(C.Miner) == list(MINERS) and values(C.TrainOn) == list(TRAIN_ON)
    assert values(C.OnError) == list(ON_ERROR) and values(C.ScoreCheck) == list(CHECK_LEVELS)
    assert set(values(C.InfoCheck)) - {"decode"} == set(CHECKS) - {"all"}
    assert values(C.SubsetLabels) == list(SUBSET_LABEL_MODES)
    assert set(values(C.Backend)) == {f.name for f in FORMATS}
    assert set(values(C.Precision)) == {p for f in FORMATS for p in f.precisions}
    assert set(values(C.Method)) == set(method_names()) | {"auto"}


def test_version_and_short_help():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"fprt {__version__}"
    assert "Usage" in CliRunner().invoke(app, ["-h"]).output
    assert "--install-completion" in CliRunner().invoke(app, ["--help"]).output  # completion is on


def test_help_keeps_square_brackets():
    assert "[gpu]" in _help("")
    assert "[gpu]" in _help("build-engine") and "fprt[ray]" in _help("score").replace("'", "")


def test_one_spelling_per_concept():
    """An option spelled in several commands has the same short form everywhere (--out/-o, --data/-d, --model/-m)."""
    shorts: dict[str, set[str]] = {}
    for cmd in COMMANDS.values():
        for p in cmd.params:
            if p.param_type_name == "option" and not getattr(p, "hidden", False):
                long = [o for o in p.opts if o.startswith("--")][0]
                shorts.setdefault(long, set()).add(tuple(o for o in p.opts if not o.startswith("--")))
    assert {k: v for k, v in shorts.items() if len(v) > 1} == {}
    assert shorts["--out"] == {("-o",)} and shorts["--data"] == {("-d",)} and shorts["--model"] == {("-m",)}
    for name, cmd in COMMANDS.items():  # no visible positional data / model / output folder left
        visible = [p.name for p in cmd.params if p.param_type_name == "argument" and not getattr(p, "hidden", False)]
        assert set(visible) <= {"family", "part"}, (name, visible)
