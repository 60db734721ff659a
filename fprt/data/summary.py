"""``fprt info DIR``: what a dataset folder holds — layout, counts per class and part, image sizes and
modes, bad files. ``summarize(root) -> dict`` (plain JSON-able data) and ``print_summary`` (rich).

Sizes and modes are read from the file headers of at most ``sample`` files (default 2000) spread
evenly over the whole dataset; the summary says when it is a sample. Bad files are found by decoding
``check="all"`` files (the default, the same decode the loader does), only the sampled ones
(``"sample"``), or not at all (``"none"``).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Callable

from fprt.errors import DataError

CHECKS = ("all", "sample", "none")
DEFAULT_SAMPLE = 2000


def _even_sample(n: int, k: int | None) -> list[int]:
    """Up to ``k`` indices spread evenly over ``range(n)`` (all of them when ``k`` is None or ≥ n)."""
    if k is None or k >= n:
        return list(range(n))
    if k <= 0:
        return []
    return sorted({int(i * n / k) for i in range(k)})


def _inspect_chunk(chunk, *_):
    from fprt.data.badfiles import BadFile, reason_of
    from fprt.data.decode import inspect_image

    out = []
    for _, path in chunk:
        try:
            info = inspect_image(path)
            out.append((path, f"{info.format} {info.mode}", f"{info.width}x{info.height}", None))
        except DataError as exc:
            out.append((path, None, None, BadFile(path, reason_of(path, exc))))
    return out


def summarize(
    root: str | os.PathLike,
    *,
    sample: int | None = DEFAULT_SAMPLE,
    check: str = "all",
    workers: int | None = None,
    progress: bool | Callable[[int], None] = False,
) -> dict:
    """Describe the dataset under ``root`` (``DataError`` when no layout is found); see the module docstring."""
    from fprt.data.badfiles import check_files
    from fprt.data.layout import discover
    from fprt.data.loader import _map_ordered

    if check not in CHECKS:
        raise ValueError(f"check must be one of {CHECKS}, got {check!r}")
    if sample is not None and sample < 0:
        raise ValueError(f"sample must be >= 0 or None, got {sample}")
    layout = discover(root)
    files = list(layout.iter_files())
    total = len(files)
    picked = _even_sample(total, sample)
    sample_paths = [files[i][2] for i in picked]

    modes: Counter = Counter()
    sizes: Counter = Counter()
    bad = {}
    for chunk in _map_ordered(_inspect_chunk, sample_paths, workers=workers, chunk_size=32, progress=progress, desc="headers"):
        for path, mode, size, bad_file in chunk:
            if bad_file is not None:
                bad[path] = bad_file
            else:
                modes[mode] += 1
                sizes[size] += 1

    if check != "none":
        to_check = [p for _, _, p in files] if check == "all" else sample_paths
        for b in check_files([p for p in to_check if p not in bad], workers, progress=progress):
            bad[b.path] = b
        checked = len(to_check)
    else:
        checked = 0
    where = {p: (part, key) for part, key, p in files}
    order = {p: i for i, (_, _, p) in enumerate(files)}
    bad_list = sorted(bad.values(), key=lambda b: order.get(b.path, total))

    counts = layout.counts()
    return {
        "root": str(layout.root),
        "task": layout.task,
        "kind": layout.kind,
        "classes": list(layout.classes),
        "train_root": str(layout.train_root) if layout.train_root else None,
        "test_root": str(layout.test_root) if layout.test_root else None,
        "counts": {**counts, "total": total},
        "folders": {label: str(path) for label, path in layout.folders.items()},
        "images": {
            "inspected": len(sample_paths),
            "total": total,
            "sampled": len(sample_paths) < total,
            "sizes": dict(sizes.most_common()),
            "modes": dict(modes.most_common()),
        },
        "check": {"level": "decode" if check != "none" else None, "scope": check, "checked": checked},
        "bad_files": [
            {"path": str(b.path), "part": where.get(b.path, ("?", "?"))[0], "class": where.get(b.path, ("?", "?"))[1], "reason": b.reason}
            for b in bad_list
        ],
        "notes": list(layout.notes),
    }


def _rows(summary: dict) -> list[tuple[str, str, int, str]]:
    """(part, class, images, folder) rows for the counts table."""
    counts, folders = summary["counts"], summary["folders"]
    rows = []
    for key, n in counts["real"].items():
        rows.append(("train real", key, n, folders.get(f"real/{key}", "")))
    for key, n in counts["generated"].items():
        rows.append(("train generated", key, n, folders.get(f"generated/{key}", folders.get("generated", ""))))
    if summary["counts"]["test_real"]:
        rows.append(("test real", "real_unknown", counts["test_real"], folders.get("test_real", "")))
    if summary["counts"]["test_generated"]:
        name = "generated_unknown" if summary["task"] == "subsets" else "generated"
        rows.append(("test generated", name, counts["test_generated"], folders.get("test_generated", "")))
    return rows


_PART_LABELS = {"real": "train real", "generated": "train generated", "test_real": "test real", "test_generated": "test generated"}


def _part_label(part: str, key: str) -> str:
    """``"train real t3"``, ``"train generated"``, ``"test real"``: where a file sits, for people."""
    label = _PART_LABELS.get(part, part)
    return label if part.startswith("test") or key == "generated" else f"{label} {key}"


def print_summary(summary: dict, console=None) -> None:
    """Print a ``summarize`` result as tables (rich)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    root = Path(summary["root"])
    console.print(f"[bold]dataset[/bold] {escape(summary['root'])}", highlight=False, soft_wrap=True)
    for k, part in enumerate(summary["kind"].split("; ")):
        console.print(f"{'[bold]layout[/bold] ' if k == 0 else '       '} {escape(part)}", highlight=False, soft_wrap=True)
    classes = ", ".join(summary["classes"]) or "(unknown: test split only)"
    console.print(f"[bold]task[/bold]    {summary['task']}   [bold]classes[/bold] {classes}", highlight=False)

    table = Table(title="images per class and part", title_justify="left")
    table.add_column("part")
    table.add_column("class")
    table.add_column("images", justify="right", no_wrap=True)
    table.add_column("folder", overflow="fold")
    for part, key, n, folder in _rows(summary):
        try:
            folder = str(Path(folder).relative_to(root))
        except ValueError:
            pass
        table.add_row(part, escape(key), str(n), escape(folder))
    table.add_section()
    table.add_row("total", "", str(summary["counts"]["total"]), "")
    console.print(table)

    images = summary["images"]
    scope = (
        f"from a sample of {images['inspected']} of {images['total']} files (spread evenly; --sample 0 reads all)"
        if images["sampled"]
        else f"from all {images['total']} files"
    )
    fmt = lambda c: ", ".join(f"{k} ({v})" for k, v in c.items()) or "-"  # noqa: E731
    console.print(f"[bold]sizes[/bold]   {fmt(images['sizes'])}", highlight=False, soft_wrap=True)
    console.print(f"[bold]modes[/bold]   {fmt(images['modes'])}   [dim]({scope})[/dim]", highlight=False, soft_wrap=True)

    check, bad = summary["check"], summary["bad_files"]
    if check["scope"] == "none":
        note = "not checked (--check none)"
        if bad:
            note += f"; {len(bad)} found unreadable while reading headers"
        console.print(f"[bold]bad files[/bold] {note}", highlight=False)
    elif not bad:
        console.print(
            f"[bold]bad files[/bold] none ({check['checked']} files decoded{', a sample' if check['scope'] == 'sample' else ''})",
            highlight=False,
        )
    else:
        console.print(f"[bold red]bad files: {len(bad)} of {check['checked']} decoded[/bold red]", highlight=False)
        for b in bad:
            try:
                shown = str(Path(b["path"]).relative_to(root))
            except ValueError:
                shown = b["path"]
            console.print(
                f"  {escape(shown)} [dim]({escape(_part_label(b['part'], b['class']))})[/dim]: {escape(b['reason'])}",
                highlight=False, soft_wrap=True,
            )
    for note in summary["notes"]:
        console.print(f"[yellow]note[/yellow]    {escape(note)}", highlight=False, soft_wrap=True)
