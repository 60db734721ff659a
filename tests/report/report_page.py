"""A small reader of report.html for the tests (stdlib html.parser): images, table rows (rows with <td>
cells outside <thead>), elements by id."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

import numpy as np
from PIL import Image


class Page(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.images: list[dict] = []
        self.ids: dict[str, dict] = {}
        self.rows: dict[str, list[list[str]]] = {}
        self._table: list[str] = []
        self._in_head = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids[a["id"]] = {"tag": tag, **a}
        if tag == "img":
            self.images.append(a)
        elif tag == "table":
            self._table.append(a.get("id", ""))
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr" and not self._in_head:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table" and self._table:
            self._table.pop()
        elif tag == "thead":
            self._in_head = False
        elif tag == "td" and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row:  # rows of <th> only (a header line) are not data rows
                    self.rows.setdefault(self._table[-1] if self._table else "", []).append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def decode_uri(uri: str) -> np.ndarray:
    head, data = uri.split(",", 1)
    assert head.startswith("data:image/") and head.endswith(";base64"), head[:40]
    with Image.open(io.BytesIO(base64.b64decode(data))) as im:
        return np.asarray(im)
