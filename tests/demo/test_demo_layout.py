"""make-demo-data writes the official layouts, labels that match them, and names that leak nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from demo_testkit import MEMBERSHIP_SMALL, SUBSETS_SMALL, read_labels_csv
from PIL import Image

import fprt
from fprt.demo import make_demo_data

OPAQUE = re.compile(r"^img_\d{6}$")


def _pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png"))


def test_subsets_layout_counts_and_labels(subsets_root: Path):
    k, nr, ng, nt = (SUBSETS_SMALL[x] for x in ("classes", "n_real", "n_generated", "n_test"))
    root = subsets_root
    assert sorted(p.name for p in (root / "train" / "real").iterdir()) == [f"t{i}" for i in range(1, k + 1)]
    assert sorted(p.name for p in (root / "train" / "generated").iterdir()) == [f"gen_t{i}" for i in range(1, k + 1)]
    for i in range(1, k + 1):
        assert len(_pngs(root / "train" / "real" / f"t{i}")) == nr
        assert len(_pngs(root / "train" / "generated" / f"gen_t{i}")) == ng
    test = _pngs(root / "test" / "generated_unknown")
    assert len(test) == k * nt
    labels = read_labels_csv(root / "test" / "labels.csv")
    assert set(labels) == {p.stem for p in test}  # every test image exactly once, nothing else
    assert sorted(labels.values()) == sorted([f"t{i}" for i in range(1, k + 1)] * nt)
    assert all(OPAQUE.match(p.stem) for p in test)
    # the shuffled ids carry no class order: neighbours in id order are not sorted by label
    order = [labels[s] for s in sorted(labels)]
    assert order != sorted(order)
    first = (root / "test" / "labels.csv").read_text().splitlines()[0]
    assert re.match(r"^img_\d{6},t\d+$", first)  # no header


def test_membership_layout_counts_and_labels(membership_root: Path):
    nu, nn, ng = (MEMBERSHIP_SMALL[x] for x in ("n_used", "n_not_used", "n_generated"))
    root = membership_root
    assert len(_pngs(root / "train" / "real" / "used")) == nu
    assert len(_pngs(root / "train" / "real" / "not_used")) == nn
    assert len(_pngs(root / "train" / "generated")) == ng
    real = _pngs(root / "test" / "real_unknown")
    gen = _pngs(root / "test" / "generated")
    assert len(real) == nu + nn and len(gen) == ng
    labels = read_labels_csv(root / "test" / "labels.csv")
    assert set(labels) == {p.stem for p in real}
    assert sorted(labels.values()) == ["0"] * nn + ["1"] * nu
    assert all(OPAQUE.match(p.stem) for p in real + gen)
    assert not {p.stem for p in real} & {p.stem for p in gen}  # ids unique across the test split


def test_membership_sources_only_point_at_used_images(membership_root: Path):
    rows = [line.split(",") for line in (membership_root / "sources.csv").read_text().splitlines()[1:]]
    labels = read_labels_csv(membership_root / "test" / "labels.csv")
    train_used = {p.stem for p in _pngs(membership_root / "train" / "real" / "used")}
    kinds = {"novel": 0, "near-copy": 0, "moved-copy": 0, "restyled-copy": 0, "blend": 0}
    traced = {"train": set(), "test": set()}
    for split, image_id, kind, sources in rows:
        kinds[kind] += 1
        srcs = [s for s in sources.split(";") if s]
        assert len(srcs) == {"novel": 0, "blend": 2}.get(kind, 1)
        for s in srcs:
            # a trace always comes from an image the generator was trained on: never a not-used one
            assert (s in train_used) if split == "train" else (labels[s] == "1")
            traced[split].add(s)
    meta = json.loads((membership_root / "demo.json").read_text())
    n_gen = MEMBERSHIP_SMALL["n_generated"]
    singles = kinds["near-copy"] + kinds["moved-copy"] + kinds["restyled-copy"]
    assert singles + kinds["blend"] == 2 * round(meta["options"]["copy_fraction"] * n_gen)
    assert kinds["blend"] > 0
    # the three kinds of single-image traces in the stated proportions (per split, rounded)
    assert meta["trace_mix"] == {"of": "non-blend copies", "near-copy": 0.3, "moved-copy": 0.4, "restyled-copy": 0.3}
    for split in ("train", "test"):
        n = meta["counts"][f"{split}_copies"]
        for kind in ("near_copy", "moved_copy"):
            assert meta["counts"][f"{split}_{kind}"] == round(meta["trace_mix"][kind.replace("_", "-")] * n)
        assert sum(meta["counts"][f"{split}_{k}"] for k in ("near_copy", "moved_copy", "restyled_copy")) == n
    # not every used image has a trace (memorised_fraction < 1), but most do
    for split in ("train", "test"):
        n_traced = len(traced[split])
        assert n_traced == meta["counts"][f"{split}_used_with_trace"]
        assert 0.5 * MEMBERSHIP_SMALL["n_used"] <= n_traced < MEMBERSHIP_SMALL["n_used"]


def test_demo_json_records_everything(subsets_root: Path, membership_root: Path):
    for root, task in ((subsets_root, "subsets"), (membership_root, "membership")):
        meta = json.loads((root / "demo.json").read_text())
        assert meta["task"] == task and meta["fprt_version"] == fprt.__version__
        assert meta["seed"] == (11 if task == "subsets" else 12)
        assert meta["counts"]["images"] == sum(1 for _ in root.rglob("*.png"))
        assert re.fullmatch(r"[0-9a-f]{64}", meta["content_sha256"])
        assert meta["options"]["size"] == 256
    meta = json.loads((subsets_root / "demo.json").read_text())
    assert [c["name"] for c in meta["cohorts"]] == ["t1", "t2", "t3", "t4", "t5"]
    assert set(meta["generators"]) == {"t1", "t2", "t3", "t4", "t5"}


def test_images_are_8bit_gray_256(subsets_root: Path, membership_root: Path):
    for p in _pngs(subsets_root / "test" / "generated_unknown")[:5] + _pngs(membership_root / "train" / "real" / "used")[:5]:
        with Image.open(p) as im:
            assert im.format == "PNG" and im.mode == "L" and im.size == (256, 256)
            a = np.asarray(im)
        # a CT slice, not a flat image: dark air, bright bone, a wide range in between
        assert a.min() <= 10 and a.max() >= 240 and 30 < a.mean() < 160


def test_discover_finds_both_layouts(subsets_root: Path, membership_root: Path):
    from fprt.data import discover

    lay = discover(subsets_root)
    assert lay.task == "subsets" and lay.classes == ("t1", "t2", "t3", "t4", "t5")
    assert {k: len(v) for k, v in lay.real.items()} == {f"t{i}": SUBSETS_SMALL["n_real"] for i in range(1, 6)}
    assert {k: len(v) for k, v in lay.generated.items()} == {f"t{i}": SUBSETS_SMALL["n_generated"] for i in range(1, 6)}
    assert len(lay.test_generated) == 5 * SUBSETS_SMALL["n_test"] and lay.has_train and lay.has_test
    lay = discover(membership_root)
    assert lay.task == "membership" and set(lay.classes) == {"used", "not_used"}
    assert len(lay.real["used"]) == MEMBERSHIP_SMALL["n_used"]
    assert len(lay.real["not_used"]) == MEMBERSHIP_SMALL["n_not_used"]
    assert len(lay.generated["generated"]) == MEMBERSHIP_SMALL["n_generated"]
    assert len(lay.test_real) == MEMBERSHIP_SMALL["n_used"] + MEMBERSHIP_SMALL["n_not_used"]
    assert len(lay.test_generated) == MEMBERSHIP_SMALL["n_generated"]


def test_generated_naming_t_and_other_sizes(tmp_path: Path):
    info = make_demo_data(tmp_path / "s", "subsets", seed=1, classes=3, n_real=2, n_generated=2, n_test=1,
                          generated_naming="t", size=128, compress_level=1, workers=1, progress=False)
    gen = sorted(p.name for p in (info.out / "train" / "generated").iterdir())
    assert gen == ["t1", "t2", "t3"]
    with Image.open(next((info.out / "train" / "generated" / "t2").glob("*.png"))) as im:
        assert im.size == (128, 128) and im.mode == "L"
    from fprt.data import discover

    lay = discover(info.out)
    assert lay.classes == ("t1", "t2", "t3") and all(len(v) == 2 for v in lay.generated.values())


@pytest.mark.parametrize("task", ["subsets", "membership"])
def test_zero_sized_parts_are_allowed(tmp_path: Path, task: str):
    kw = {"n_real": 1, "n_generated": 0, "n_test": 0, "classes": 2} if task == "subsets" else \
        {"n_used": 2, "n_not_used": 0, "n_generated": 0, "n_test_used": 0, "n_test_not_used": 1, "n_test_generated": 0}
    info = make_demo_data(tmp_path / task, task, progress=False, workers=1, **kw)
    assert info.images == sum(1 for _ in info.out.rglob("*.png"))
    assert (info.out / "test" / "labels.csv").exists()


def test_test_images_are_written_in_id_order():
    """Not even the write order (file times) of the test split follows the labels."""
    from fprt.demo.plan import plan_membership, plan_subsets

    for plan in (plan_subsets(classes=3, n_real=1, n_generated=1, n_test=5),
                 plan_membership(n_used=6, n_not_used=6, n_generated=5)):
        ids = [j.rel.rsplit("/", 1)[1] for j in plan.jobs if j.rel.startswith("test/")]
        assert ids == sorted(ids) and len(ids) == len(set(ids)) > 10
        in_order = [plan.labels[i[:-4]] for i in ids if i[:-4] in plan.labels]
        assert in_order != sorted(in_order)


def test_montage_sheets(subsets_root: Path, membership_root: Path, tmp_path: Path):
    from fprt.demo import make_montage

    for root, rows in ((subsets_root, 5), (membership_root, 4)):
        out = make_montage(root, tmp_path / f"{root.name}.png", per_class=2, examples=4, size=64)
        with Image.open(out) as im:
            assert im.mode == "L" and im.size[1] == 22 + rows * (64 + 14 + 6)
            a = np.asarray(im)
        assert a.std() > 30  # pictures, not a blank sheet
