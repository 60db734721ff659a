"""`fprt cache info|clear` over a cache root with files in its parts (and one folder that is not a part)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from fprt.cli import app
from fprt.runtime.cache_admin import PARTS, cache_info, cache_root


def _fill(root):
    (root / "embeddings" / "m" / "out").mkdir(parents=True)
    (root / "embeddings" / "m" / "out" / "a.shard").write_bytes(b"x" * 100)
    (root / "engines").mkdir()
    (root / "engines" / "e.plan").write_bytes(b"y" * 50)
    (root / "mine").mkdir()
    (root / "mine" / "keep.txt").write_text("not fprt's")


def test_info_counts_files_and_bytes(tmp_path):
    _fill(tmp_path)
    info = cache_info(tmp_path)
    assert info["parts"]["embeddings"]["files"] == 1 and info["parts"]["embeddings"]["bytes"] == 100
    assert info["parts"]["engines"]["bytes"] == 50 and info["bytes"] == 150 and set(info["parts"]) == set(PARTS)
    result = CliRunner().invoke(app, ["cache", "info", "--cache", str(tmp_path), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["files"] == 2


def test_clear_removes_only_named_parts(tmp_path):
    _fill(tmp_path)
    result = CliRunner().invoke(app, ["cache", "clear", "engines", "--cache", str(tmp_path)])
    assert result.exit_code == 0 and "cleared 1 files" in result.output
    assert not (tmp_path / "engines").exists() and (tmp_path / "embeddings").exists()
    result = CliRunner().invoke(app, ["cache", "clear", "--cache", str(tmp_path)])
    assert result.exit_code == 0 and not (tmp_path / "embeddings").exists()
    assert (tmp_path / "mine" / "keep.txt").read_text() == "not fprt's"  # never anything but the parts


def test_unknown_part_and_default_root(tmp_path, monkeypatch, capsys):
    from fprt.cli import main

    monkeypatch.setenv("FPRT_CACHE_DIR", str(tmp_path))
    assert cache_root() == tmp_path
    try:
        main(["cache", "clear", "embedings"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "Did you mean 'embeddings'" in capsys.readouterr().err
