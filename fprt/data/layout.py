"""Find which ImageCLEFmedical GANs folder layout a dataset root holds: ``discover(root) -> Layout``.

The releases differ from year to year; all of these are accepted. Folder names are compared
case-insensitively with ``-`` and spaces read as ``_`` (``Real``, ``GEN-T1`` and ``real used`` match),
and any number K of subsets works:

============================  ====================================================================
layout                        folders
============================  ====================================================================
subsets training (2025)       ``real/t1..tK`` + ``generated/t1..tK`` or ``generated/gen_t1..gen_tK``
subsets test (2025)           ``generated_unknown/``
membership training           ``real/used`` + ``real/not_used`` + ``generated/``
membership training (2025)    ``real_used/`` + ``real_not_used/`` + ``generated/``
membership training (2023)    ``used/`` + ``not_used/`` + ``generated/``
membership test               ``real_unknown/`` + ``generated/``
membership test (2023)        ``real_unknown_1/`` + ``generated_1/`` (any ``_N`` suffix)
============================  ====================================================================

A root may hold a training layout, a test layout, both (subsets: ``real/`` + ``generated/`` +
``generated_unknown/``; membership only when the test folders carry a ``_N`` suffix so that the two
``generated`` folders differ), or ``train*/`` and ``test*/`` subfolders holding one each (a folder
whose name has a word starting with ``train``/``test``, e.g. ``train``, ``..._training-dataset``,
``test_set``). Single-child wrapper folders (``ImageCLEF25_GAN_..._training-dataset/...``) are
descended automatically. Image files are listed directly inside each class folder (see
``fprt.data.files``). Anything else in a layout folder is ignored and reported in ``Layout.notes``.

Errors (``DataError``, naming the folder): an unknown layout (the message lists the layouts above
and what the folder holds), an ambiguous one (two layouts, or two folders that normalise to the same
name), a class folder with no images, subsets present in ``real/`` but not in ``generated/`` (or the
reverse), two images with the same id in one folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from fprt.data.files import IMAGE_SUFFIXES, image_id, list_images, list_subfolders
from fprt.errors import DataError

MEMBERSHIP_CLASSES = ("not_used", "used")

EXPECTED_LAYOUTS = (
    "subsets training:    real/t1..tK + generated/t1..tK (or generated/gen_t1..gen_tK)",
    "subsets test:        generated_unknown/",
    "membership training: real/used + real/not_used + generated/ (or real_used/ + real_not_used/ + generated/, "
    "or used/ + not_used/ + generated/)",
    "membership test:     real_unknown/ + generated/ (or real_unknown_1/ + generated_1/)",
    "or train*/ + test*/ subfolders holding one of these each; single-child wrapper folders are descended",
)

_SUBSET_RE = re.compile(r"t(\d+)")
_GEN_SUBSET_RE = re.compile(r"(gen_)?t(\d+)")
_REAL_UNKNOWN_RE = re.compile(r"real_unknown(_\d+)?")
_GENERATED_RE = re.compile(r"generated(_\d+)?")
_MAX_DEPTH = 12


@dataclass(frozen=True)
class Layout:
    """A dataset found by ``discover``.

    - ``task``: ``"subsets"`` or ``"membership"``; ``kind``: text naming the layout(s) found.
    - ``classes``: subsets ``("t1", ..., "tK")`` in natural order (empty for a test-only subsets
      layout, which cannot know K); membership ``("not_used", "used")``.
    - ``real``: training real images by class; ``generated``: training generated images, keyed
      ``"t1".."tK"`` for subsets whatever the folder naming, ``{"generated": [...]}`` for membership.
    - ``test_real``: membership ``real_unknown`` images; ``test_generated``: subsets
      ``generated_unknown`` or membership test ``generated`` images.
    - ``folders``: every folder read, by a label such as ``"real/t1"`` or ``"test_generated"``.
    - ``notes``: things found and ignored (unknown folders, stray images), for ``fprt info``.
    Lists are sorted by file name.
    """

    task: str
    kind: str
    root: Path
    classes: tuple[str, ...] = ()
    real: dict[str, list[Path]] = field(default_factory=dict)
    generated: dict[str, list[Path]] = field(default_factory=dict)
    test_real: list[Path] = field(default_factory=list)
    test_generated: list[Path] = field(default_factory=list)
    train_root: Path | None = None
    test_root: Path | None = None
    folders: dict[str, Path] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def has_train(self) -> bool:
        return bool(self.real)

    @property
    def has_test(self) -> bool:
        return bool(self.test_generated or self.test_real)

    def counts(self) -> dict:
        """Image counts: ``{"real": {cls: n}, "generated": {key: n}, "test_real": n, "test_generated": n}``."""
        return {
            "real": {k: len(v) for k, v in self.real.items()},
            "generated": {k: len(v) for k, v in self.generated.items()},
            "test_real": len(self.test_real),
            "test_generated": len(self.test_generated),
        }

    def iter_files(self):
        """Every image as ``(part, key, path)``: part is real / generated / test_real / test_generated."""
        for key, paths in self.real.items():
            for p in paths:
                yield "real", key, p
        for key, paths in self.generated.items():
            for p in paths:
                yield "generated", key, p
        for p in self.test_real:
            yield "test_real", "real_unknown", p
        for p in self.test_generated:
            yield "test_generated", "generated_unknown" if self.task == "subsets" else "generated", p

    def all_paths(self) -> list[Path]:
        return [p for _, _, p in self.iter_files()]


# ---------------------------------------------------------------------------------------------- helpers
def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def _natural_key(cls: str) -> tuple[int, str]:
    m = re.fullmatch(r"t(\d+)", cls)
    return (int(m.group(1)), cls) if m else (1 << 30, cls)


def _subfolders_by_name(folder: Path) -> dict[str, Path]:
    """Visible subfolders keyed by normalised name; two that normalise alike are ambiguous."""
    out: dict[str, Path] = {}
    for sub in list_subfolders(folder):
        key = _norm(sub.name)
        if key in out:
            raise DataError(
                f"{folder}: ambiguous layout: folders {out[key].name!r} and {sub.name!r} have the same name "
                "(names are compared case-insensitively, '-' and ' ' read as '_')"
            )
        out[key] = sub
    return out


def _rel(path: Path, root: Path) -> str:
    try:
        rel = path.relative_to(root)
    except ValueError:
        return str(path)
    return str(rel) if str(rel) != "." else path.name


def _images(folder: Path, what: str) -> list[Path]:
    """The images directly in ``folder``; ``DataError`` when there are none or two share an id."""
    files = list_images(folder)
    if not files:
        subs = [s.name for s in list_subfolders(folder)]
        hint = f"; it has subfolders {', '.join(subs[:5])}{' ...' if len(subs) > 5 else ''}: fprt reads images directly inside class folders" if subs else ""
        raise DataError(f"{folder}: {what} folder holds no image files ({' '.join(IMAGE_SUFFIXES)}){hint}")
    seen: dict[str, Path] = {}
    for p in files:
        key = image_id(p)
        if key in seen:
            raise DataError(f"{folder}: two images share the id {key!r} ({seen[key].name}, {p.name}); ids must be unique")
        seen[key] = p
    return files


@dataclass
class _Part:
    task: str
    role: str  # "train" | "test"
    kind: str
    folder: Path
    classes: tuple[str, ...] = ()
    real: dict[str, list[Path]] = field(default_factory=dict)
    generated: dict[str, list[Path]] = field(default_factory=dict)
    test_real: list[Path] = field(default_factory=list)
    test_generated: list[Path] = field(default_factory=list)
    folders: dict[str, Path] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)  # normalised child names this part consumed
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- detectors
def _subset_folders(folder: Path, pattern: re.Pattern, what: str) -> dict[str, Path]:
    """``{"t3": path}`` for the subset folders of ``folder`` (``t3``, or ``gen_t3`` with the gen pattern)."""
    found: dict[str, Path] = {}
    for key, sub in _subfolders_by_name(folder).items():
        m = pattern.fullmatch(key)
        if not m:
            continue
        cls = f"t{int(m.group(m.lastindex))}"
        if cls in found:
            raise DataError(
                f"{folder}: ambiguous layout: {found[cls].name!r} and {sub.name!r} are both subset {cls} of {what}"
            )
        found[cls] = sub
    return found


def _detect_subsets_train(folder: Path, children: dict[str, Path], root: Path) -> _Part | None:
    real, gen = children.get("real"), children.get("generated")
    real_sets = _subset_folders(real, _SUBSET_RE, "real/") if real else {}
    gen_sets = _subset_folders(gen, _GEN_SUBSET_RE, "generated/") if gen else {}
    if not real_sets and not gen_sets:
        return None
    if real_sets and not gen:
        raise DataError(f"{folder}: subsets layout: {real.name}/ holds {_span(real_sets)} but there is no generated/ folder beside it")
    if gen_sets and not real:
        raise DataError(f"{folder}: subsets layout: {gen.name}/ holds {_span(gen_sets)} but there is no real/ folder beside it")
    if not gen_sets:
        raise DataError(
            f"{gen}: subsets layout: {real.name}/ holds {_span(real_sets)} but {gen.name}/ has no t1..tK or gen_t1..gen_tK subfolders"
        )
    if not real_sets:
        raise DataError(f"{real}: subsets layout: {gen.name}/ holds {_span(gen_sets)} but {real.name}/ has no t1..tK subfolders")
    if set(real_sets) != set(gen_sets):
        only_real = sorted(set(real_sets) - set(gen_sets), key=_natural_key)
        only_gen = sorted(set(gen_sets) - set(real_sets), key=_natural_key)
        parts = []
        if only_real:
            parts.append(f"{', '.join(only_real)} in {real.name}/ but not in {gen.name}/")
        if only_gen:
            parts.append(f"{', '.join(only_gen)} in {gen.name}/ but not in {real.name}/")
        raise DataError(f"{folder}: subsets layout: the subsets of real/ and generated/ differ: {'; '.join(parts)}")
    classes = tuple(sorted(real_sets, key=_natural_key))
    part = _Part("subsets", "train", "", folder, classes=classes, used={"real", "generated"})
    for cls in classes:
        part.real[cls] = _images(real_sets[cls], f"real subset {cls}")
        part.generated[cls] = _images(gen_sets[cls], f"generated subset {cls}")
        part.folders[f"real/{cls}"] = real_sets[cls]
        part.folders[f"generated/{cls}"] = gen_sets[cls]
    first, last = classes[0], classes[-1]
    part.kind = (
        f"subsets training: {_rel(real_sets[first], root)}..{real_sets[last].name} + "
        f"{_rel(gen_sets[first], root)}..{gen_sets[last].name} (K={len(classes)})"
    )
    _note_extra(part, real, set(real_sets.values()))
    _note_extra(part, gen, set(gen_sets.values()))
    return part


def _span(sets: dict[str, Path]) -> str:
    keys = sorted(sets, key=_natural_key)
    return keys[0] if len(keys) == 1 else f"{sets[keys[0]].name}..{sets[keys[-1]].name}"


def _detect_subsets_test(folder: Path, children: dict[str, Path], root: Path) -> _Part | None:
    unknown = children.get("generated_unknown")
    if unknown is None:
        return None
    part = _Part("subsets", "test", f"subsets test: {_rel(unknown, root)}/", folder, used={"generated_unknown"})
    part.test_generated = _images(unknown, "generated_unknown")
    part.folders["test_generated"] = unknown
    return part


def _detect_membership_train(folder: Path, children: dict[str, Path], root: Path) -> list[_Part]:
    candidates = []  # (used folder, not_used folder, label, consumed names)
    real = children.get("real")
    if real is not None:
        real_children = _subfolders_by_name(real)
        u, n = real_children.get("used"), real_children.get("not_used")
        if u or n:
            candidates.append((u, n, "", {"real"}, real))
    u, n = children.get("real_used"), children.get("real_not_used")
    if u or n:
        candidates.append((u, n, " (2025)", {"real_used", "real_not_used"}, folder))
    u, n = children.get("used"), children.get("not_used")
    if u or n:
        candidates.append((u, n, " (2023)", {"used", "not_used"}, folder))
    parts = []
    for used, not_used, label, consumed, parent in candidates:
        if used is None or not_used is None:
            have, miss = (used, "not_used") if used is not None else (not_used, "used")
            raise DataError(f"{parent}: membership layout: found {have.name}/ but not {_partner_name(have.name, miss)}/ beside it")
        gen = children.get("generated")
        if gen is None:
            raise DataError(f"{folder}: membership training layout: found {_rel(used, root)}/ and {_rel(not_used, root)}/ but no generated/ folder")
        part = _Part("membership", "train", "", folder, classes=MEMBERSHIP_CLASSES, used=consumed | {"generated"})
        part.real["not_used"] = _images(not_used, "real not_used")
        part.real["used"] = _images(used, "real used")
        part.generated["generated"] = _images(gen, "generated")
        part.folders.update({"real/not_used": not_used, "real/used": used, "generated": gen})
        part.kind = f"membership training{label}: {_rel(used, root)}/ + {_rel(not_used, root)}/ + {_rel(gen, root)}/"
        if parent is not folder:
            _note_extra(part, parent, {used, not_used})
        parts.append(part)
    return parts


def _partner_name(have: str, missing: str) -> str:
    """The folder name the partner of ``have`` would carry (``real_used`` → ``real_not_used``)."""
    norm = _norm(have)
    prefix = "real_" if norm.startswith("real_") else ""
    return prefix + missing


def _detect_membership_test(folder: Path, children: dict[str, Path], root: Path, train_gen: bool) -> _Part | None:
    unknowns = {k: p for k, p in children.items() if _REAL_UNKNOWN_RE.fullmatch(k)}
    if not unknowns:
        return None
    if len(unknowns) > 1:
        raise DataError(f"{folder}: ambiguous layout: several real_unknown folders ({', '.join(p.name for p in unknowns.values())})")
    (ukey, unknown), = unknowns.items()
    suffix = ukey[len("real_unknown"):]
    gen_key = "generated" + suffix
    gen = children.get(gen_key)
    if gen is None:
        others = [p.name for k, p in children.items() if _GENERATED_RE.fullmatch(k)]
        if len(others) == 1 and not train_gen:
            gen = children[_norm(others[0])]
            gen_key = _norm(others[0])
        else:
            found = f" (found {', '.join(others)})" if others else ""
            raise DataError(f"{folder}: membership test layout: found {unknown.name}/ but no {gen_key}/ beside it{found}")
    part = _Part("membership", "test", "", folder, classes=MEMBERSHIP_CLASSES, used={ukey, gen_key})
    part.test_real = _images(unknown, "real_unknown")
    part.test_generated = _images(gen, "generated")
    part.folders.update({"test_real": unknown, "test_generated": gen})
    year = " (2023)" if suffix else ""
    part.kind = f"membership test{year}: {_rel(unknown, root)}/ + {_rel(gen, root)}/"
    return part


def _note_extra(part: _Part, parent: Path, consumed: set[Path]) -> None:
    """Note the subfolders of ``parent`` that the layout does not use, and images lying directly in it."""
    part.notes += [f"ignored folder {sub} (not part of the layout)" for sub in list_subfolders(parent) if sub not in consumed]
    stray = list_images(parent)
    if stray:
        part.notes.append(f"ignored {len(stray)} image file(s) directly in {parent}")


def _signatures(children: dict[str, Path]) -> list[tuple[str, str, str]]:
    """(task, role, folders) of every layout whose folder names appear, read from names only (no images listed)."""
    sigs = []
    real, gen = children.get("real"), children.get("generated")
    real_children = _subfolders_by_name(real) if real else {}
    gen_children = _subfolders_by_name(gen) if gen else {}
    real_sets = [p.name for k, p in real_children.items() if _SUBSET_RE.fullmatch(k)]
    gen_sets = [p.name for k, p in gen_children.items() if _GEN_SUBSET_RE.fullmatch(k)]
    if real_sets or gen_sets:
        where = [f"{real.name}/{real_sets[0]}" if real_sets else "", f"{gen.name}/{gen_sets[0]}" if gen_sets else ""]
        sigs.append(("subsets", "train", " + ".join(w + "..." for w in where if w)))
    if "generated_unknown" in children:
        sigs.append(("subsets", "test", children["generated_unknown"].name + "/"))
    if "used" in real_children or "not_used" in real_children:
        sigs.append(("membership", "train", f"{real.name}/used|not_used"))
    for a, b in (("real_used", "real_not_used"), ("used", "not_used")):
        found = [children[k].name + "/" for k in (a, b) if k in children]
        if found:
            sigs.append(("membership", "train", " + ".join(found)))
    unknowns = [p.name + "/" for k, p in children.items() if _REAL_UNKNOWN_RE.fullmatch(k)]
    if unknowns:
        sigs.append(("membership", "test", " + ".join(unknowns)))
    return sigs


def _match_folder(folder: Path, root: Path) -> list[_Part]:
    """Every layout part ``folder`` itself holds (empty list when none); errors on ambiguity."""
    children = _subfolders_by_name(folder)
    sigs = _signatures(children)
    if len({task for task, _, _ in sigs}) > 1 or sum(role == "train" for _, role, _ in sigs) > 1:
        described = "; ".join(f"{task} {role} ({names})" for task, role, names in sigs)
        raise DataError(
            f"{folder}: ambiguous layout: it holds folders of several layouts: {described}; "
            "keep one layout per folder (or put training and test data in train/ and test/ subfolders)"
        )
    parts: list[_Part] = []
    sub_train = _detect_subsets_train(folder, children, folder)
    if sub_train:
        parts.append(sub_train)
    sub_test = _detect_subsets_test(folder, children, folder)
    if sub_test:
        parts.append(sub_test)
    mem_train = _detect_membership_train(folder, children, folder)
    parts += mem_train
    mem_test = _detect_membership_test(folder, children, folder, train_gen=bool(mem_train))
    if mem_test:
        parts.append(mem_test)
    if not parts:
        return parts
    if folder != root:
        for p in parts:
            p.kind += f" in {_rel(folder, root)}/"
    trains = [p for p in parts if p.role == "train"]
    tests = [p for p in parts if p.role == "test"]
    if len(trains) > 1 or len(tests) > 1 or len({p.task for p in parts}) > 1:
        raise DataError(
            f"{folder}: ambiguous layout: it holds {' and '.join(p.kind for p in parts)}; "
            "keep one layout per folder (or put them in train/ and test/ subfolders)"
        )
    if trains and tests and trains[0].used & tests[0].used:
        shared = ", ".join(sorted(trains[0].used & tests[0].used))
        raise DataError(
            f"{folder}: ambiguous layout: {shared}/ would belong to both {trains[0].kind} and {tests[0].kind}; "
            "put them in train/ and test/ subfolders"
        )
    consumed = set().union(*(p.used for p in parts))
    _note_extra(parts[0], folder, {sub for key, sub in children.items() if key in consumed})
    return parts


# ---------------------------------------------------------------------------------------------- train/test pairs
def _role_of(name: str) -> str | None:
    words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]
    train = any(w.startswith("train") for w in words)
    test = any(w.startswith("test") for w in words)
    if train and test:
        return "both"
    return "train" if train else "test" if test else None


def _resolve(folder: Path, root: Path) -> tuple[Path, list[_Part]]:
    """Descend single-child wrappers from ``folder`` to the folder holding a layout: ``(that folder, its parts)``,
    or ``(the last folder reached, [])`` when there is none."""
    current = folder
    for _ in range(_MAX_DEPTH):
        parts = _match_folder(current, root)
        if parts:
            return current, parts
        subs = list_subfolders(current)
        if len(subs) == 1 and not list_images(current) and _role_pair(current) is None:
            current = subs[0]
            continue
        return current, []
    return current, []


def _role_pair(folder: Path) -> dict[str, Path] | None:
    """``{"train": path, "test": path}`` (either may be missing) when ``folder`` holds train*/test* subfolders."""
    roles: dict[str, list[Path]] = {"train": [], "test": []}
    for sub in list_subfolders(folder):
        role = _role_of(sub.name)
        if role == "both":
            raise DataError(f"{sub}: ambiguous folder name: it reads as both a train and a test folder")
        if role:
            roles[role].append(sub)
    for role, subs in roles.items():
        if len(subs) > 1:
            raise DataError(f"{folder}: ambiguous layout: several {role} folders ({', '.join(s.name for s in subs)})")
    if not roles["train"] or not roles["test"]:
        return None
    return {role: subs[0] for role, subs in roles.items()}


def _unknown_error(folder: Path, root: Path) -> DataError:
    subs = [s.name + "/" for s in list_subfolders(folder)]
    images = list_images(folder)
    held = ", ".join(subs[:12]) + (" ..." if len(subs) > 12 else "") if subs else "no subfolders"
    if images:
        held += f"; {len(images)} image file(s)"
    where = f" (reached from {root} through single-child folders)" if folder != root else ""
    expected = "\n  ".join(EXPECTED_LAYOUTS)
    return DataError(f"{folder}: unknown dataset layout{where}; it holds {held}. Expected one of:\n  {expected}")


def _layout_from(
    parts: list[_Part], root: Path, train_root: Path | None, test_root: Path | None, kinds: list[str], extra_notes: tuple[str, ...] = ()
) -> Layout:
    tasks = {p.task for p in parts}
    if len(tasks) > 1:
        raise DataError(
            f"{root}: the train and test folders hold different tasks ({' vs '.join(p.kind for p in parts)})"
        )
    task = tasks.pop()
    train = next((p for p in parts if p.role == "train"), None)
    test = next((p for p in parts if p.role == "test"), None)
    classes = train.classes if train else (MEMBERSHIP_CLASSES if task == "membership" else ())
    folders: dict[str, Path] = {}
    notes: list[str] = []
    for p in parts:
        folders.update(p.folders)
        notes += p.notes
    return Layout(
        task=task,
        kind="; ".join(kinds),
        root=root,
        classes=classes,
        real=train.real if train else {},
        generated=train.generated if train else {},
        test_real=test.test_real if test else [],
        test_generated=test.test_generated if test else [],
        train_root=train_root,
        test_root=test_root,
        folders=folders,
        notes=tuple(extra_notes) + tuple(notes),
    )


# ---------------------------------------------------------------------------------------------- entry point
def discover(root: str | os.PathLike) -> Layout:
    """Find the dataset layout under ``root`` (see the module docstring); ``DataError`` naming the folder if none fits."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such folder")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (discover expects a dataset root folder)")
    current = root
    for _ in range(_MAX_DEPTH):
        parts = _match_folder(current, root)
        if parts:
            train = next((p.folder for p in parts if p.role == "train"), None)
            test = next((p.folder for p in parts if p.role == "test"), None)
            return _layout_from(parts, root, train, test, [p.kind for p in parts])
        pair = _role_pair(current)
        if pair is not None:
            return _discover_pair(current, pair, root)
        subs = list_subfolders(current)
        if len(subs) == 1 and not list_images(current):
            current = subs[0]
            continue
        raise _unknown_error(current, root)
    raise _unknown_error(current, root)


def _discover_pair(folder: Path, pair: dict[str, Path], root: Path) -> Layout:
    found: list[_Part] = []
    kinds: list[str] = []
    roots: dict[str, Path] = {}
    for role in ("train", "test"):
        where, parts = _resolve(pair[role], root)
        if not parts:
            raise _unknown_error(where, root)
        wrong = [p for p in parts if p.role != role]
        if wrong:
            raise DataError(
                f"{where}: the {role} folder holds {wrong[0].kind}; a {role} folder must hold a {role} layout only"
            )
        found += parts
        roots[role] = where
        kinds += [p.kind for p in parts]
    ignored = tuple(
        f"ignored folder {sub} (not part of the layout)" for sub in list_subfolders(folder) if sub not in (pair["train"], pair["test"])
    )
    return _layout_from(found, root, roots["train"], roots["test"], kinds, ignored)
