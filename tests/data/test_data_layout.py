"""discover(): every ImageCLEFmedical GANs layout variant, and the errors for everything else."""

from __future__ import annotations

import os

import numpy as np
import pytest
from data_testkit import make_images, make_tree, subsets_spec, write_dicom, write_png, gray

from fprt.data import Layout, discover, image_id, list_images
from fprt.errors import DataError

MEMBERSHIP_TRAIN_VARIANTS = {
    "real/used": {"real/used": 3, "real/not_used": 2, "generated": 4},
    "2025": {"real_used": 3, "real_not_used": 2, "generated": 4},
    "2023": {"used": 3, "not_used": 2, "generated": 4},
}


def _names(paths) -> list[str]:
    return [p.name for p in paths]


# ---------------------------------------------------------------------------------------------- subsets
@pytest.mark.parametrize("gen_prefix", ["", "gen_"])
def test_subsets_training_both_generated_namings(tmp_path, gen_prefix):
    make_tree(tmp_path, subsets_spec(5, per_class=2, gen_prefix=gen_prefix))
    layout = discover(tmp_path)
    assert isinstance(layout, Layout)
    assert layout.task == "subsets" and layout.has_train and not layout.has_test
    assert layout.classes == ("t1", "t2", "t3", "t4", "t5")
    assert list(layout.real) == list(layout.generated) == list(layout.classes)  # keyed t1..t5 whatever the naming
    assert all(len(v) == 2 for v in layout.real.values()) and all(len(v) == 3 for v in layout.generated.values())
    assert layout.generated["t3"][0].parent.name == f"{gen_prefix}t3"
    assert f"generated/{gen_prefix}t1..{gen_prefix}t5" in layout.kind and "K=5" in layout.kind
    assert layout.test_real == [] and layout.test_generated == []
    assert layout.root == tmp_path and layout.train_root == tmp_path and layout.test_root is None


def test_subsets_any_k_in_natural_order(tmp_path):
    make_tree(tmp_path, subsets_spec(11, per_class=1))
    layout = discover(tmp_path)
    assert layout.classes == tuple(f"t{i}" for i in range(1, 12))  # t2 before t10, not t1, t10, t11, t2
    assert layout.counts()["real"] == {f"t{i}": 1 for i in range(1, 12)}
    make_tree(tmp_path / "k2", subsets_spec(2, per_class=1))
    assert discover(tmp_path / "k2").classes == ("t1", "t2")


def test_names_are_case_insensitive(tmp_path):
    make_tree(tmp_path, {"REAL/T1": 1, "Real/T2": 0, "GENERATED/Gen_T1": 1, "Generated_Unknown": 2})
    # "REAL" and "Real" are two folders on a case-sensitive file system: ambiguous
    if (tmp_path / "Real").exists() and (tmp_path / "REAL").exists() and (tmp_path / "Real") != (tmp_path / "REAL"):
        with pytest.raises(DataError, match="same name"):
            discover(tmp_path)
    root = tmp_path / "clean"
    make_tree(root, {"REAL/T1": 1, "REAL/t2": 1, "Generated/GEN-T1": 2, "Generated/gen_T2": 2, "GENERATED_UNKNOWN": 3})
    layout = discover(root)
    assert layout.task == "subsets" and layout.classes == ("t1", "t2")
    assert len(layout.generated["t1"]) == 2 and len(layout.test_generated) == 3
    assert layout.has_train and layout.has_test


def test_subsets_test_layout_alone(tmp_path):
    make_tree(tmp_path, {"generated_unknown": 4})
    (tmp_path / "labels.csv").write_text("generated_unknown_000,t1\n")
    layout = discover(tmp_path)
    assert layout.task == "subsets" and layout.has_test and not layout.has_train
    assert layout.classes == ()  # a test split alone cannot know K
    assert _names(layout.test_generated) == [f"generated_unknown_{i:03d}.png" for i in range(4)]
    assert "generated_unknown/" in layout.kind


def test_wrapper_folders_are_descended(tmp_path):
    inner = tmp_path / "ImageCLEF25_GAN_Subtask2_training-dataset" / "ImageCLEF25_GAN_Subtask2_training-dataset"
    make_tree(inner, subsets_spec(3))
    (tmp_path / "ImageCLEF25_GAN_Subtask2_training-dataset" / "README.txt").write_text("release notes")
    layout = discover(tmp_path)
    assert layout.classes == ("t1", "t2", "t3") and layout.root == tmp_path
    assert layout.train_root == inner
    assert "in ImageCLEF25_GAN_Subtask2_training-dataset/ImageCLEF25_GAN_Subtask2_training-dataset/" in layout.kind


def test_files_filtering_and_sorting(tmp_path):
    make_tree(tmp_path, subsets_spec(1, per_class=0))
    t1 = tmp_path / "real" / "t1"
    write_png(t1 / "b.PNG", gray(1))
    write_png(t1 / "a.png", gray(2))
    write_png(t1 / "C.tif", gray(3))
    write_png(t1 / ".hidden.png", gray(4))
    (t1 / "labels.csv").write_text("a,t1\n")
    (t1 / "Thumbs.db").write_bytes(b"\0" * 10)
    (t1 / "notes").write_text("an extension-less text file is not DICOM")
    write_dicom(t1 / "IM0001", np.zeros((4, 4), np.uint16))  # extension-less DICOM: found by its preamble
    (t1 / "sub").mkdir()
    write_png(t1 / "sub" / "nested.png", gray(5))  # images are read directly inside class folders only
    write_png(tmp_path / "generated" / "gen_t1" / "x.jpeg", gray(6), format="JPEG")
    layout = discover(tmp_path)
    assert _names(layout.real["t1"]) == ["C.tif", "IM0001", "a.png", "b.PNG"]  # code-point order, deterministic
    assert [image_id(p) for p in layout.real["t1"]] == ["C", "IM0001", "a", "b"]
    assert _names(list_images(t1)) == _names(layout.real["t1"])


def test_ignored_things_are_noted(tmp_path):
    make_tree(tmp_path, {**subsets_spec(2), "misc": 1, "real/extra": 1})
    write_png(tmp_path / "stray.png", gray(0))
    layout = discover(tmp_path)
    notes = "\n".join(layout.notes)
    assert "misc" in notes and "extra" in notes and "1 image file(s) directly in" in notes
    assert layout.classes == ("t1", "t2")


# ---------------------------------------------------------------------------------------------- membership
@pytest.mark.parametrize("variant", sorted(MEMBERSHIP_TRAIN_VARIANTS))
def test_membership_training_variants(tmp_path, variant):
    make_tree(tmp_path, MEMBERSHIP_TRAIN_VARIANTS[variant])
    layout = discover(tmp_path)
    assert layout.task == "membership" and layout.classes == ("not_used", "used")
    assert {k: len(v) for k, v in layout.real.items()} == {"not_used": 2, "used": 3}
    assert list(layout.generated) == ["generated"] and len(layout.generated["generated"]) == 4
    assert layout.has_train and not layout.has_test
    assert "membership training" in layout.kind
    if variant != "real/used":
        assert f"({variant})" in layout.kind


@pytest.mark.parametrize("suffix", ["", "_1"])
def test_membership_test_variants(tmp_path, suffix):
    make_tree(tmp_path, {f"Real_Unknown{suffix}": 5, f"generated{suffix}": 6})
    layout = discover(tmp_path)
    assert layout.task == "membership" and layout.has_test and not layout.has_train
    assert len(layout.test_real) == 5 and len(layout.test_generated) == 6
    assert layout.classes == ("not_used", "used")
    assert ("(2023)" in layout.kind) == bool(suffix)


def test_membership_train_and_2023_test_in_one_folder(tmp_path):
    make_tree(tmp_path, {"real_used": 2, "real_not_used": 2, "generated": 3, "real_unknown_1": 4, "generated_1": 5})
    layout = discover(tmp_path)
    assert layout.has_train and layout.has_test
    assert len(layout.generated["generated"]) == 3 and len(layout.test_generated) == 5


# ---------------------------------------------------------------------------------------------- train/test pairs
@pytest.mark.parametrize("task", ["subsets", "membership"])
def test_train_and_test_subfolders(tmp_path, task):
    if task == "subsets":
        make_tree(tmp_path / "train", subsets_spec(4))
        make_tree(tmp_path / "test", {"generated_unknown": 7})
    else:
        make_tree(tmp_path / "train", {"real/used": 2, "real/not_used": 3, "generated": 4})
        make_tree(tmp_path / "test", {"real_unknown": 5, "generated": 6})
    (tmp_path / "test" / "labels.csv").write_text("x,1\n")
    layout = discover(tmp_path)
    assert layout.task == task and layout.has_train and layout.has_test
    assert layout.train_root == tmp_path / "train" and layout.test_root == tmp_path / "test"
    if task == "subsets":
        assert layout.classes == ("t1", "t2", "t3", "t4") and len(layout.test_generated) == 7
    else:
        assert len(layout.test_real) == 5 and len(layout.test_generated) == 6
        assert len(layout.real["not_used"]) == 3
    assert "in train/" in layout.kind and "in test/" in layout.kind


def test_release_style_train_and_test_folders_with_wrappers(tmp_path):
    make_tree(tmp_path / "ImageCLEF25_GAN_training-dataset" / "data", subsets_spec(2))
    make_tree(tmp_path / "ImageCLEF25_GAN_Test_Dataset" / "x", {"generated_unknown": 3})
    layout = discover(tmp_path)
    assert layout.classes == ("t1", "t2") and len(layout.test_generated) == 3
    assert layout.test_root == tmp_path / "ImageCLEF25_GAN_Test_Dataset" / "x"


# ---------------------------------------------------------------------------------------------- errors
def test_missing_root_and_file_root(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        discover(tmp_path / "nope")
    f = tmp_path / "f.txt"
    f.write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        discover(f)


def test_unknown_layout_names_folder_and_lists_expected(tmp_path):
    make_tree(tmp_path, {"images": 2, "masks": 2})
    with pytest.raises(DataError) as err:
        discover(tmp_path)
    msg = str(err.value)
    assert str(tmp_path) in msg and "unknown dataset layout" in msg and "images/" in msg
    for expected in ("real/t1..tK", "gen_t1..gen_tK", "generated_unknown/", "real/not_used", "real_not_used/",
                     "used/ + not_used/", "real_unknown_1/", "train*/"):
        assert expected in msg


def test_unknown_after_wrappers_says_so(tmp_path):
    make_tree(tmp_path / "wrap" / "inner", {"a": 1, "b": 1})
    with pytest.raises(DataError, match=r"inner: unknown dataset layout \(reached from .* through single-child folders\)"):
        discover(tmp_path)


def test_empty_class_folder_is_named(tmp_path):
    make_tree(tmp_path, subsets_spec(3))
    empty = tmp_path / "generated" / "gen_t2"
    for p in empty.iterdir():
        p.unlink()
    (empty / "labels.csv").write_text("not an image")
    with pytest.raises(DataError, match=rf"{empty}: generated subset t2 folder holds no image files"):
        discover(tmp_path)
    for p in empty.iterdir():
        p.unlink()
    make_images(empty / "nested", 2)
    with pytest.raises(DataError, match="it has subfolders nested"):
        discover(tmp_path)


def test_empty_membership_and_test_folders(tmp_path):
    make_tree(tmp_path, {"real_used": 1, "real_not_used": 0, "generated": 1})
    with pytest.raises(DataError, match="real_not_used: real not_used folder holds no image files"):
        discover(tmp_path)
    make_tree(tmp_path / "t", {"generated_unknown": 0})
    with pytest.raises(DataError, match="generated_unknown folder holds no image files"):
        discover(tmp_path / "t")


def test_subsets_must_match_between_real_and_generated(tmp_path):
    spec = subsets_spec(3)
    del spec["generated/gen_t3"]
    make_tree(tmp_path / "a", spec)
    with pytest.raises(DataError, match=r"t3 in real/ but not in generated/"):
        discover(tmp_path / "a")
    spec = subsets_spec(2)
    spec["generated/gen_t4"] = 1
    make_tree(tmp_path / "b", spec)
    with pytest.raises(DataError, match=r"t4 in generated/ but not in real/"):
        discover(tmp_path / "b")


def test_half_layouts_say_what_is_missing(tmp_path):
    make_tree(tmp_path / "a", {"real/t1": 1, "real/t2": 1})
    with pytest.raises(DataError, match="no generated/ folder"):
        discover(tmp_path / "a")
    make_tree(tmp_path / "b", {"generated/gen_t1": 1})
    with pytest.raises(DataError, match="no real/ folder"):
        discover(tmp_path / "b")
    make_tree(tmp_path / "c", {"real_used": 1, "generated": 1})
    with pytest.raises(DataError, match="found real_used/ but not real_not_used/"):
        discover(tmp_path / "c")
    make_tree(tmp_path / "d", {"used": 1, "not_used": 1})
    with pytest.raises(DataError, match="no generated/ folder"):
        discover(tmp_path / "d")
    make_tree(tmp_path / "e", {"real_unknown": 1})
    with pytest.raises(DataError, match="found real_unknown/ but no generated/"):
        discover(tmp_path / "e")


@pytest.mark.parametrize(
    "spec, pattern",
    [
        ({**subsets_spec(2), "real/used": 1, "real/not_used": 1}, "ambiguous layout"),  # subsets + membership
        ({"real/t1": 1, "generated/t1": 1, "generated/gen_t1": 1}, "both subset t1"),
        ({"real/t1": 1, "real/T01": 1, "generated/t1": 1}, "both subset t1"),
        ({"used": 1, "not_used": 1, "generated": 1, "real_unknown": 1}, "would belong to both"),
        ({"real_used": 1, "real_not_used": 1, "used": 1, "not_used": 1, "generated": 1}, "ambiguous layout"),
        ({"real_unknown": 1, "real_unknown_1": 1, "generated": 1}, "several real_unknown"),
        ({"generated_unknown": 1, "real_unknown": 1, "generated": 1}, "ambiguous layout"),  # subsets test + membership test
        ({"train_a/real/t1": 1, "train_b/real/t1": 1, "test/generated_unknown": 1}, "several train folders"),
    ],
)
def test_ambiguous_layouts(tmp_path, spec, pattern):
    make_tree(tmp_path, spec)
    with pytest.raises(DataError, match=pattern) as err:
        discover(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_pair_errors(tmp_path):
    make_tree(tmp_path / "a" / "train", subsets_spec(2))
    make_tree(tmp_path / "a" / "test", {"real_unknown": 1, "generated": 1})
    with pytest.raises(DataError, match="different tasks"):
        discover(tmp_path / "a")
    make_tree(tmp_path / "b" / "train", {"generated_unknown": 1})
    make_tree(tmp_path / "b" / "test", {"generated_unknown": 1})
    with pytest.raises(DataError, match="the train folder holds subsets test"):
        discover(tmp_path / "b")
    make_tree(tmp_path / "c" / "train", subsets_spec(2))
    make_tree(tmp_path / "c" / "test", {"nothing_here": 1})
    with pytest.raises(DataError, match=r"test/nothing_here: unknown dataset layout"):
        discover(tmp_path / "c")


def test_duplicate_ids_in_one_folder(tmp_path):
    make_tree(tmp_path, {"generated_unknown": 2})
    write_png(tmp_path / "generated_unknown" / "generated_unknown_000.jpg", gray(3), format="JPEG")
    with pytest.raises(DataError, match="share the id 'generated_unknown_000'"):
        discover(tmp_path)


def test_iter_files_covers_every_image_once(tmp_path):
    make_tree(tmp_path / "train", subsets_spec(3))
    make_tree(tmp_path / "test", {"generated_unknown": 4})
    layout = discover(tmp_path)
    files = list(layout.iter_files())
    assert len(files) == 3 * 2 + 3 * 3 + 4 == len(set(p for _, _, p in files))
    on_disk = sorted(p for p in tmp_path.rglob("*.png"))
    assert sorted(layout.all_paths()) == on_disk
    assert {part for part, _, _ in files} == {"real", "generated", "test_generated"}


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks on this platform")
def test_symlinked_images_and_folders_count(tmp_path):
    src = tmp_path / "src"
    make_images(src, 2)
    root = tmp_path / "ds"
    make_tree(root, {"generated_unknown": 0})
    os.symlink(src / "img_000.png", root / "generated_unknown" / "linked.png")
    layout = discover(root)
    assert _names(layout.test_generated) == ["linked.png"]


def test_importing_the_data_layer_and_discovering_stays_light():
    import subprocess
    import sys

    code = (
        "import sys, fprt, fprt.data; from fprt.data import discover, Layout; "
        "print(sorted(m for m in ('numpy', 'PIL', 'pydicom', 'rich', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
