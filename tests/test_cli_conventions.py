"""The README's CLI conventions table is the typer app's (python -m fprt.cli_doc regenerates it)."""

from __future__ import annotations

from pathlib import Path

from fprt.cli_doc import END, START, conventions_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_table_matches_the_app():
    text = README.read_text(encoding="utf-8")
    assert START in text and END in text, "README.md lost its cli-conventions markers"
    found = text[text.index(START): text.index(END) + len(END)]
    assert found == conventions_table(), "README's CLI table is stale: run python -m fprt.cli_doc and paste it"


def test_every_command_is_in_the_readme_commands_list():
    text = README.read_text(encoding="utf-8")
    for line in conventions_table().splitlines()[4:-2]:
        command = line.split("`")[1]
        assert command in text
