"""read_labels(): the run.csv format, the tolerated variants, and errors naming file and line."""

from __future__ import annotations

import pytest

from fprt.data import read_labels
from fprt.data.labels import normalize_id
from fprt.errors import DataError


def _write(tmp_path, text: str, name: str = "labels.csv", **kwargs):
    path = tmp_path / name
    path.write_text(text, **kwargs)
    return path


def test_plain_run_csv(tmp_path):
    path = _write(tmp_path, "img_001,t1\nimg_002,t3\nimg_010,t2\n")
    labels = read_labels(path)
    assert labels == {"img_001": "t1", "img_002": "t3", "img_010": "t2"}
    assert list(labels) == ["img_001", "img_002", "img_010"]  # file order


@pytest.mark.parametrize("header", ["image_id,label", "Image_Path,Predicted_Class", "id,class", "filename,prediction"])
def test_one_header_line_is_tolerated(tmp_path, header):
    assert read_labels(_write(tmp_path, f"{header}\na,1\nb,0\n")) == {"a": "1", "b": "0"}


def test_ids_lose_directories_and_image_suffixes(tmp_path):
    path = _write(tmp_path, "generated_unknown/img_1.PNG,t2\nC:\\data\\img_2.dcm,t1\nimg.3,t4\n img_4.jpeg , t5 \n")
    assert read_labels(path) == {"img_1": "t2", "img_2": "t1", "img.3": "t4", "img_4": "t5"}
    assert normalize_id("a/b/c.tiff") == "c" and normalize_id("c.txt") == "c.txt"


def test_bom_crlf_quotes_and_blank_lines(tmp_path):
    path = tmp_path / "l.csv"
    path.write_bytes('\ufeffimage_id,label\r\n"a",1\r\n\r\n"b",0\r\n'.encode("utf-8"))
    assert read_labels(path) == {"a": "1", "b": "0"}


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("a,1\nb,0,0.93\n", r":2: expected 2 fields 'image_id,label', got 3"),
        ("a,1\nb\n", r":2: expected 2 fields 'image_id,label', got 1"),
        ("a,1\n\n,0\n", r":3: empty image id"),
        ("a,1\nb,\n", r":2: empty label for image 'b'"),
        ("a,1\nb,0\na.png,1\n", r":3: duplicate image id 'a' \(first on line 1\)"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, text, pattern):
    path = _write(tmp_path, text)
    with pytest.raises(DataError, match=pattern) as err:
        read_labels(path)
    assert str(err.value).startswith(str(path))


def test_second_header_like_line_is_data_not_a_header(tmp_path):
    # only the first line may be a header; a later one is an ordinary (odd) data line
    assert read_labels(_write(tmp_path, "image_id,label\nx,1\nid,class\n")) == {"x": "1", "id": "class"}


def test_allowed_labels(tmp_path):
    path = _write(tmp_path, "a,t1\nb,t7\n")
    assert read_labels(path, allowed=["t1", "t7"]) == {"a": "t1", "b": "t7"}
    with pytest.raises(DataError, match=r":2: label 't7' for image 'b' is not one of \['t1', 't2'\]"):
        read_labels(path, allowed=("t1", "t2"))


def test_empty_missing_and_binary_files(tmp_path):
    with pytest.raises(DataError, match="no labels"):
        read_labels(_write(tmp_path, "", name="empty.csv"))
    with pytest.raises(DataError, match="no labels"):
        read_labels(_write(tmp_path, "image_id,label\n\n", name="header_only.csv"))
    with pytest.raises(DataError, match="no such labels file"):
        read_labels(tmp_path / "missing.csv")
    (tmp_path / "bin.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(DataError, match="not a UTF-8 text file"):
        read_labels(tmp_path / "bin.csv")
