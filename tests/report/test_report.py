"""fprt report: the page's content checked against scores.csv, the labels and independent computations."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fprt.errors import DataError
from fprt.runtime.report import write_report
from fprt.runtime.report.threshold import decision_threshold
from report_page import Page, decode_uri  # tests/report/report_page.py


def _scores(out: Path) -> list[dict]:
    with open(out / "scores.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _labels(path: Path) -> dict[str, str]:
    return dict(line.split(",") for line in path.read_text().split())


def _copy_run(src: Path, dst: Path) -> Path:
    """The score outputs only (earlier tests may have written a report into the shared run)."""
    import shutil

    return Path(shutil.copytree(src, dst, ignore=shutil.ignore_patterns("report.html", "evidence.png")))


def test_membership_page_lists_the_extremes_with_their_neighbours(membership_run):
    out, data, labels = membership_run
    r = write_report(out, top=5, labels=labels)
    page = Page(r.html.read_text())
    rows = _scores(out)
    order = sorted(rows, key=lambda x: -float(x["score"]))
    table = page.rows["membership-table"]
    assert len(table) == 10 == r.rows_shown
    shown = [row[2] for row in table]  # image column: 5 most likely, then 5 least likely
    top_scores = sorted((float(x["score"]) for x in rows), reverse=True)
    assert [float(row[4]) for row in table[:5]] == pytest.approx(top_scores[:5], rel=1e-4)
    assert [float(row[4]) for row in table[5:]] == pytest.approx(sorted(top_scores)[:5], rel=1e-4)
    assert set(shown[:5]) <= {x["image_id"] for x in order if float(x["score"]) >= top_scores[4]}
    # the nearest generated image of each listed row is scores.csv's first neighbour
    by_id = {x["image_id"]: x for x in rows}
    for row in table:
        assert row[7] == by_id[row[2]]["neighbours"].split(";")[0]
    # every picture decodes, and its alt text names the file and a score
    assert r.images == len(page.images) > 10
    for img in page.images:
        assert decode_uri(img["src"]).shape[:2] == (112, 112)
        assert ".png" in img["alt"] and any(w in img["alt"] for w in ("score", "match", "difference", "Hamming"))
    first = table[0][2]
    assert any(img["alt"].startswith(f"real {first}.png") for img in page.images)
    # the threshold separates the decisions exactly as run.csv has them
    t = float(page.ids["threshold"]["data-threshold"])
    for x in rows:
        assert (float(x["score"]) > t) == (x["decision"] == "1")
    assert "threshold-line" in page.ids
    # ROC AUC on the page: scikit-learn's on the labels
    from sklearn.metrics import roc_auc_score

    truth = _labels(labels)
    auc = roc_auc_score([int(truth[x["image_id"]]) for x in rows], [float(x["score"]) for x in rows])
    assert float(page.ids["roc-auc"]["data-auc"]) == pytest.approx(auc)
    assert json.loads((out / "metrics.json").read_text())["roc_auc"] == pytest.approx(auc)


def test_membership_overlay_is_the_difference_of_the_pair(membership_run, monkeypatch):
    """Without the geometry module the page shows the plain |real - generated| and says so."""
    from fprt.runtime.report import pictures

    monkeypatch.setattr(pictures, "_align_fn", lambda: None)
    out, data, _ = membership_run
    real = np.asarray(Image.open(data / "test" / "real_unknown" / "img_000.png"))
    gen = np.asarray(Image.open(data / "test" / "generated" / "gen_test_001.png"))
    a = pictures.align(real, gen)
    assert not a.aligned and "not aligned" in a.note
    np.testing.assert_array_equal(a.difference, np.abs(real.astype(int) - gen.astype(int)))
    assert a.match == pytest.approx(np.corrcoef(real.ravel(), gen.ravel())[0, 1])
    calls = []
    monkeypatch.setattr(pictures, "_align_fn", lambda: lambda r, g: calls.append(1) or (g, np.abs(r.astype(int) - g).astype(np.uint8), 0.5))
    a = pictures.align(real, gen)
    assert a.aligned and a.match == 0.5 and calls == [1]


def test_subsets_page_knn_shows_the_named_real_neighbours(subsets_runs):
    out = subsets_runs["knn"]
    r = write_report(out, per_class=2)
    page = Page(r.html.read_text())
    rows = _scores(out)
    counts: dict[str, int] = {}
    for x in rows:
        counts[x["decision"]] = counts.get(x["decision"], 0) + 1
    table = page.rows["subsets-table"]
    assert len(table) == sum(min(2, n) for n in counts.values()) == r.rows_shown
    by_id = {x["image_id"]: x for x in rows}
    real_names = {p.name: p.parent.name for p in (subsets_runs["data"] / "train" / "real").rglob("*.png")}
    for row in table:
        x = by_id[row[2]]
        assert row[0] == x["decision"]
        real_neighbours = [n for n in x["neighbours"].split(";") if n in real_names]
        assert row[5] == real_neighbours[0] and row[6] == real_names[row[5]]
    # each subset lists its surest images first
    for c in counts:
        shown = [float(row[4]) for row in table if row[0] == c]
        assert shown == sorted((float(x["score"]) for x in rows if x["decision"] == c), reverse=True)[: len(shown)]


def test_subsets_page_centroid_finds_pixel_neighbours_and_the_confusion_matrix(subsets_runs):
    from sklearn.metrics import confusion_matrix
    from sklearn.neighbors import NearestNeighbors

    out, data, labels = subsets_runs["centroid"], subsets_runs["data"], subsets_runs["labels"]
    r = write_report(out, per_class=3, labels=labels)
    text = r.html.read_text()
    page = Page(text)
    assert "root-mean-square difference" in text
    reals = sorted((data / "train" / "real").rglob("*.png"))
    thumbs = np.stack([np.asarray(Image.open(p).resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float64).ravel() for p in reals])
    nn = NearestNeighbors(n_neighbors=1).fit(thumbs)
    for row in page.rows["subsets-table"]:
        q = np.asarray(Image.open(data / row[3]).resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float64).ravel()
        dist, idx = nn.kneighbors(q[None])
        assert row[6] == reals[idx[0, 0]].name
        assert float(row[8]) == pytest.approx(dist[0, 0] / np.sqrt(q.size), rel=1e-3)
    rows = _scores(out)
    truth = _labels(labels)
    cm = confusion_matrix([truth[x["image_id"]] for x in rows], [x["decision"] for x in rows], labels=["t1", "t2", "t3"])
    body = page.rows["confusion"]
    assert [[int(v) for v in row[:3]] for row in body[:3]] == cm.tolist()
    recall = np.diag(cm) / cm.sum(1)
    assert [float(row[3]) for row in body[:3]] == pytest.approx(recall, abs=5e-4)


def test_evidence_table_and_header(membership_run, tmp_path):
    """The evidence table of --method auto is rendered from summary.json's "evidence" dict."""
    from fprt.runtime.evidence import EvidenceRow, EvidenceTable

    out = _copy_run(membership_run[0], tmp_path / "out")
    table = EvidenceTable("membership", fusion="logistic regression (5-fold CV)", folds=5, training_images=120)
    table.add(EvidenceRow("pixel_best_ncc", 0.71, "roc_auc", 0.8, "near-copies", "content"))
    table.add(EvidenceRow("fused", 0.83, "roc_auc", None, "", "fused", chosen=True))
    summary = json.loads((out / "summary.json").read_text())
    summary["evidence"] = table.to_dict()
    (out / "summary.json").write_text(json.dumps(summary))
    page = Page(write_report(out, top=3).html.read_text())
    assert page.rows["evidence-table"] == [
        ["pixel_best_ncc", "0.71", "0.8", "content", "near-copies", ""],
        ["fused", "0.83", "–", "fused", "", "✔ chosen"],
    ]
    facts = [row[0] for row in page.rows["facts"]]
    assert summary["model_sha256"] in facts and str(summary["data"]["root"]) in facts
    assert [row[0] for row in page.rows["method-params"]][:2] == ["22", "below min real x real"]


def test_failed_report_leaves_the_old_page(membership_run, tmp_path, monkeypatch):
    import fprt.runtime.report as R

    out = _copy_run(membership_run[0], tmp_path / "out")
    (out / "report.html").write_text("old page")

    def broken(context):
        raise RuntimeError("template exploded")

    monkeypatch.setattr(R, "_render", broken)
    with pytest.raises(RuntimeError):
        write_report(out, top=3)
    assert (out / "report.html").read_text() == "old page"
    assert not (out / "evidence.png").exists()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


def test_missing_or_broken_inputs_are_clear_errors(membership_run, tmp_path):
    with pytest.raises(DataError, match="summary.json"):
        write_report(tmp_path, top=3)
    out = _copy_run(membership_run[0], tmp_path / "out")
    (out / "scores.csv").write_text("image_id,file\n")
    with pytest.raises(DataError, match=r"scores.csv: missing column"):
        write_report(out, top=3)


def test_threshold_from_params_or_from_the_decisions():
    s = np.array([0.1, 0.4, 0.6, 0.9])
    d = ["0", "0", "1", "1"]
    t = decision_threshold({"method": {"name": "max-sigma", "params": {"threshold_closeness": 0.5}}}, s, d)
    assert t.value == 0.5 and "threshold_closeness" in t.source
    t = decision_threshold({"method": {"name": "phash", "params": {"threshold_bits": 14}}}, np.array([40.0, 49, 51, 60]), d)
    assert t.value == 50.0
    t = decision_threshold({"method": {"name": "vcmi-max", "params": {"threshold_closeness": 0.93}}}, s - 0.5, d)
    assert t.value == 0.0
    # params that do not split the decisions: the boundary the decisions draw
    t = decision_threshold({"method": {"name": "x", "params": {"threshold": 0.95}}}, s, d)
    assert t.value == pytest.approx(0.5) and "boundary" in t.source
    assert decision_threshold({"method": {"name": "x", "params": {}}}, s, ["1"] * 4).value is None


def test_cli_score_report_and_report(membership_run, tmp_path):
    from typer.testing import CliRunner

    from fprt.cli import app

    _, data, labels = membership_run
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["score", str(data), "--out", str(out), "--method", "phash", "--no-cache",
                                   "--labels", str(labels), "--report"])
    assert res.exit_code == 0, res.output
    assert "report: " in res.output and (out / "report.html").is_file() and (out / "evidence.png").is_file()
    first = (out / "report.html").read_text()
    (out / "report.html").unlink()
    res = CliRunner().invoke(app, ["report", str(out), "--top", "3", "--labels", str(labels)])
    assert res.exit_code == 0, res.output
    assert len(Page((out / "report.html").read_text()).rows["membership-table"]) == 6
    with Image.open(out / "evidence.png") as im:
        assert im.width > 300 and im.height > 100
    assert first.count("<tr>") > 0


def test_runs_without_labels(membership_run, subsets_runs, tmp_path):
    """Scored without --labels: no metrics.json, no plots; the page still has its lists and the threshold."""
    from fprt.runtime import score

    _, data, _ = membership_run
    out = tmp_path / "m"
    score(None, data, out, method="phash", use_cache=False, progress=False)
    assert not (out / "metrics.json").exists()
    page = Page(write_report(out, top=2).html.read_text())
    assert len(page.rows["membership-table"]) == 4 and "threshold-line" in page.ids
    assert "roc" not in page.ids and "metrics" not in page.ids
    out = tmp_path / "s"
    score(subsets_runs["knn"].parent / "m.onnx", subsets_runs["data"], out, method="knn", use_cache=False, progress=False)
    page = Page(write_report(out, per_class=1).html.read_text())
    assert "confusion" not in page.ids and "embedding-map" not in page.ids
    assert len(page.rows["subsets-table"]) == len({x["decision"] for x in _scores(out)})


def test_overlay_with_the_membership_geometry(membership_run):
    """With fprt.runtime.evidence.geometry installed, the overlay is its alignment (shape of the real image)."""
    geometry = pytest.importorskip("fprt.runtime.evidence.geometry", reason="fprt.runtime.evidence.geometry not in this tree")
    from fprt.runtime.report import pictures

    _, data, _ = membership_run
    real = np.asarray(Image.open(data / "test" / "real_unknown" / "img_000.png"))
    gen = np.roll(real, 2, axis=1)
    a = pictures.align(real, gen)
    warped, diff, match = geometry.align_for_display(real, gen)
    assert a.aligned and a.warped.shape == real.shape and a.match == pytest.approx(match)
    np.testing.assert_array_equal(a.difference, diff)
    np.testing.assert_array_equal(a.overlay[..., 1], warped)


def test_neighbour_names_resolve_without_guessing():
    from fprt.runtime.report.cells import resolve
    from fprt.runtime.report.run import ImageFile

    a, b = ImageFile(Path("r/t1/0001.png"), "real", "t1"), ImageFile(Path("r/t2/0001.png"), "real", "t2")
    g = ImageFile(Path("test/generated/0001.png"), "test_generated", "generated")
    index = {"0001.png": [a, b, g]}
    assert resolve(index, "0001.png", ("test_generated", "generated")) is g
    assert resolve(index, "0001.png", ("real",)) is None  # two real files of that name: no guess
    assert resolve(index, "0001.png", ("real",), "t2") is b  # the subset the method chose its neighbours in
    assert resolve(index, "0002.png", ("real",), "t2") is None


def test_data_moved_away_still_gives_a_page(membership_run, tmp_path):
    """The scored images are gone: the page lists the rows with 'file not found' and writes no evidence.png."""
    out = _copy_run(membership_run[0], tmp_path / "out")
    (out / "evidence.png").write_bytes(b"stale")
    summary = json.loads((out / "summary.json").read_text())
    summary["data"]["root"] = summary["data"]["reference"] = str(tmp_path / "gone")
    (out / "summary.json").write_text(json.dumps(summary))
    r = write_report(out, top=3)
    text = r.html.read_text()
    page = Page(text)
    assert r.evidence_png is None and not (out / "evidence.png").exists() and 'href="evidence.png"' not in text
    assert len(page.rows["membership-table"]) == 6 and [i.get("class") for i in page.images] == ["plot"]  # roc.png of score
    assert text.count("(file not found)") >= 6


def test_incomplete_run_is_flagged(membership_run, tmp_path):
    """summary.json saying run.csv lacks skipped test images (``--on-error skip``) puts a warning at the top."""
    out = _copy_run(membership_run[0], tmp_path / "out")
    summary = json.loads((out / "summary.json").read_text())
    summary.setdefault("run_csv", {}).update(complete=False, missing_ids=["img_999"])
    (out / "summary.json").write_text(json.dumps(summary))
    text = write_report(out, top=2).html.read_text()
    assert 'role="alert">INCOMPLETE: run.csv lacks 1 test image(s) skipped as bad files, e.g. img_999' in text
    complete = _copy_run(membership_run[0], tmp_path / "complete")
    assert "INCOMPLETE" not in write_report(complete, top=2).html.read_text()
