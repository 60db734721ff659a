"""Read image labels in the run.csv format: ``read_labels(path) -> {image_id: label}``.

The format is the one ImageCLEFmedical GANs runs are submitted in and that ``fprt make-demo-data``
writes beside its test split: one ``image_id,label`` pair per line, no header, UTF-8
(subsets: ``img_0001,t3``; membership: ``img_0001,1`` with 1 = used). Tolerated:

- one header line first, recognised by its names (``image_id,label``, ``image_path,predicted_class``,
  ``id,class``, ... — case-insensitive);
- ids given as file names or paths: directories are dropped and an image suffix
  (``.png .jpg .jpeg .tif .tiff .dcm .dicom``) is stripped, so ``generated/img_01.PNG`` → ``img_01``;
- spaces around fields, blank lines, a UTF-8 byte-order mark, CRLF line ends, CSV quoting.

A line without exactly two fields, an empty id or label, a duplicate id, or (with ``allowed``) a
label outside the allowed set raises ``DataError`` naming the file and line.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Iterable

from fprt.data.files import IMAGE_SUFFIXES
from fprt.errors import DataError

ID_HEADERS = frozenset({"image_id", "imageid", "id", "image", "image_name", "image_path", "path", "file", "filename", "file_name", "name"})
LABEL_HEADERS = frozenset({"label", "labels", "class", "class_name", "predicted_class", "prediction", "predicted_label", "target", "subset", "membership"})


def normalize_id(value: str) -> str:
    """``dir/img_01.png`` → ``img_01``: drop directories, strip a known image suffix (case-insensitive)."""
    name = re.split(r"[\\/]", value.strip())[-1]
    stem, suffix = os.path.splitext(name)
    return stem if suffix.lower() in IMAGE_SUFFIXES else name


def _is_header(row: list[str]) -> bool:
    return len(row) == 2 and (row[0].strip().lower() in ID_HEADERS or row[1].strip().lower() in LABEL_HEADERS)


def read_labels(path: str | os.PathLike, *, allowed: Iterable[str] | None = None) -> dict[str, str]:
    """``{image_id: label}`` from a run.csv-style file (see the module docstring), in file order."""
    path = Path(path)
    allowed_set = None if allowed is None else {str(a) for a in allowed}
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
    except FileNotFoundError:
        raise DataError(f"{path}: no such labels file") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None
    labels: dict[str, str] = {}
    first_line: dict[str, int] = {}
    seen_content = False
    for lineno, row in enumerate(rows, start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if not seen_content:
            seen_content = True
            if _is_header(row):
                continue
        if len(row) != 2:
            raise DataError(f"{path}:{lineno}: expected 2 fields 'image_id,label', got {len(row)}: {','.join(row)!r}")
        image_id, label = normalize_id(row[0]), row[1].strip()
        if not image_id:
            raise DataError(f"{path}:{lineno}: empty image id")
        if not label:
            raise DataError(f"{path}:{lineno}: empty label for image {image_id!r}")
        if allowed_set is not None and label not in allowed_set:
            raise DataError(f"{path}:{lineno}: label {label!r} for image {image_id!r} is not one of {sorted(allowed_set)}")
        if image_id in labels:
            raise DataError(f"{path}:{lineno}: duplicate image id {image_id!r} (first on line {first_line[image_id]})")
        labels[image_id] = label
        first_line[image_id] = lineno
    if not labels:
        raise DataError(f"{path}: no labels in the file (expected lines 'image_id,label')")
    return labels
