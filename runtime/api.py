"""``fprt.runtime.score``: images → run.csv, the Python API behind ``fprt score``.

    from fprt.runtime import score
    result = score("model.onnx", "demo/subsets", "runs/score", labels="demo/subsets/test/labels.csv")
    print(result.run_csv, result.metrics["accuracy"], result.images_per_s)

``score`` is five named steps:

1. ``resolve`` — find the test (and training/reference) images (``fprt.data.discover``), the method,
   the model (loaded with the backend its format calls for), read and check the labels file, check
   the cache folder (unusable: a warning and a run without cache). Nothing is read from the images.
2. ``embed`` — every file read ONCE by ``fprt.runtime.pipeline.load_file``: its bytes hashed (the
   cache key), looked up, and on a miss decoded from memory and fed through the overlapping
   decode → infer → store stages. Bad files are collected; ``on_error="stop"`` then raises one
   ``BadFilesError`` listing every one of them (nothing written; the good files' embeddings are cached).
3. ``assemble`` — the rows of every image set (cached and computed), bad files left out (``skip``).
4. ``decide`` — the scoring method (similarity reductions through ``fprt.runtime.similarity``).
5. ``write`` — run.csv (validated), scores.csv, summary.json and, with labels, metrics.json and
   plots, all into a staging folder swapped in as ``out`` at the end (``fprt.outdir.OutputFolder``).

The one seam for a distributed run is ``runner`` (``fprt.runtime.pipeline.Runner``: ``embed`` and
``similarity``), which ``fprt.runtime.distributed.RayRunner`` implements.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fprt.errors import DataError, FprtError
from fprt.runtime.methods.base import SCORE_CONVENTION, Context, ImageSet, MethodOptions, as_numpy
from fprt.runtime import outputs as O
from fprt.runtime.outputs import RunCsvFormat

log = logging.getLogger("fprt.runtime")

ON_ERROR = ("stop", "skip")
CHECK_LEVELS = ("verify", "decode")


@dataclass
class ScoreResult:
    out: Path
    run_csv: Path
    scores_csv: Path
    summary_json: Path
    task: str
    method: str
    n_test: int
    images_per_s: float  # end to end: all images handled / wall seconds of the run
    model_images_per_s: float | None  # images the model computed / seconds of the pipeline stages
    metrics: dict | None = None
    metrics_json: Path | None = None
    plots: list[Path] = field(default_factory=list)
    bad_files: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    complete: bool = True  # False: run.csv lacks test images skipped as bad files (--on-error skip)
    missing_ids: list[str] = field(default_factory=list)


class ScoreData:
    """The image sets of one scoring job: the test split and, when given, the training split."""

    def __init__(self, layout, reference=None, meta=None) -> None:
        self.layout = layout
        self.reference = reference
        self.meta = meta
        self.task = layout.task
        if self.task == "membership":
            if not layout.test_real or not layout.test_generated:
                raise DataError(f"{layout.root}: a membership test split needs real_unknown/ and generated/ images")
            self.test = ImageSet("test", list(layout.test_real))
            self.test_generated = ImageSet("test_generated", list(layout.test_generated))
        else:
            if not layout.test_generated:
                raise DataError(f"{layout.root}: a subsets test split needs generated_unknown/ images")
            self.test = ImageSet("test", list(layout.test_generated))
            self.test_generated = None

    def _ref(self, required_for: str, why: str = ""):
        if self.reference is None:
            extra = f" ({why})" if why else ""
            raise FprtError(
                f"--method {required_for} needs the training split{extra}: pass --reference DIR with the training "
                "data (real/ + generated/ folders), or score a dataset root that holds train/ and test/"
            )
        return self.reference

    def ref_real(self, required_for: str, why: str = "") -> ImageSet:
        ref = self._ref(required_for, why)
        paths, labels = [], []
        for cls in ref.classes or sorted(ref.real):
            for p in ref.real.get(cls, []):
                paths.append(p)
                labels.append(cls)
        return ImageSet("ref_real", paths, labels)

    def ref_generated(self, required_for: str, why: str = "") -> ImageSet:
        ref = self._ref(required_for, why)
        paths, labels = [], []
        for key in sorted(ref.generated, key=_natural):
            for p in ref.generated[key]:
                paths.append(p)
                labels.append(key)
        return ImageSet("ref_generated", paths, labels)

    def ref_all(self, required_for: str, why: str = "") -> ImageSet:
        a, b = self.ref_real(required_for, why), self.ref_generated(required_for, why)
        return ImageSet("ref_all", a.paths + b.paths, a.labels + b.labels)


def _natural(c: str):
    import re

    m = re.fullmatch(r"t(\d+)", c)
    return (int(m.group(1)), c) if m else (1 << 30, c)


def _resolve_data(data, reference):
    from fprt.data import discover

    layout = discover(data)
    if not layout.has_test:
        raise DataError(
            f"{data}: holds a training split only ({layout.kind}); `fprt score` scores a test split "
            "(subsets: generated_unknown/; membership: real_unknown/ + generated/). Pass the training data as --reference"
        )
    ref = None
    if reference is not None:
        ref = discover(reference)
        if not ref.has_train:
            raise DataError(f"--reference {reference}: holds no training split ({ref.kind}); expected real/ + generated/ folders")
        if ref.task != layout.task:
            raise DataError(f"--reference {reference} is a {ref.task} training split but {data} is a {layout.task} test split")
    elif layout.has_train:
        ref = layout
    return layout, ref


# ============================================================================================== the options
@dataclass
class ScoreOptions:
    """Every knob of one scoring job, checked before any work (``fprt score --help`` says what each does)."""

    method: str | None = None
    backend: str | None = None
    device: str = "cpu"
    threads: int | None = None
    compile: bool = False
    batch_size: int = 64
    workers: int | None = None
    cache: str | Path | None = None
    use_cache: bool = True
    on_error: str = "stop"
    check: str = "verify"
    labels: Path | None = None
    plots: bool = True
    progress: bool | None = None
    overwrite: bool = False
    allow_task_mismatch: bool = False
    method_options: MethodOptions = field(default_factory=MethodOptions)
    fmt: RunCsvFormat = field(default_factory=RunCsvFormat)

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR:
            raise FprtError(f"--on-error {self.on_error!r}: expected one of {list(ON_ERROR)}")
        if self.check not in CHECK_LEVELS:
            raise FprtError(f"--check {self.check!r}: expected one of {list(CHECK_LEVELS)}")
        if self.method_options.k < 1:
            raise FprtError(f"--top-k must be >= 1, got {self.method_options.k}")
        if self.batch_size < 1:
            raise FprtError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.labels is not None:
            self.labels = Path(self.labels)


@dataclass
class Startup:
    """Fixed costs paid before the first image, reported apart from the stage timings."""

    before_score_s: float | None = None  # interpreter + CLI imports, from the process's start to score()
    imports_s: float = 0.0  # fprt's runtime modules, ONNX Runtime / torch
    model_load_s: float = 0.0
    extension_load_s: float = 0.0  # the similarity extension (and torch): loaded beside the embedding
    extension_wait_s: float = 0.0  # how long the similarity step waited for that load (0: fully overlapped)

    @property
    def total_s(self) -> float:
        """What start-up cost the run: the extension only as far as the similarity step had to wait for it."""
        return self.imports_s + self.model_load_s + self.extension_wait_s

    def to_dict(self) -> dict[str, Any]:
        return {"before_score_s": _r(self.before_score_s), "imports_s": _r(self.imports_s),
                "model_load_s": _r(self.model_load_s), "extension_load_s": _r(self.extension_load_s),
                "extension_wait_s": _r(self.extension_wait_s), "total_s": _r(self.total_s)}


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


# ============================================================================================== step 1: resolve
@dataclass
class Job:
    """What ``resolve`` settled: the data, the method, the model, the image sets, the cache."""

    layout: Any
    ref: Any
    task: str
    method: Any
    model: Any  # a loaded backend, or a classical method's feature extractor
    classes: list[str]
    sets: dict[str, ImageSet]
    embedder: Any
    cache_root: Path | None
    truth: dict[str, str] | None  # the labels file, read and checked before any model work
    extension: Any = None  # the thread loading the similarity extension while the images are embedded

    @property
    def meta(self):
        return self.model.meta


def resolve(model, data, reference, opts: ScoreOptions, clock, startup: Startup, model_object=None, *,
            pixel_features: bool = True) -> Job:
    """Data and method and model: everything that can fail before an image is read, checked now.

    ``pixel_features``: whether the runner computes a method's pixel features in its one decode
    (``Method.pixel_features``; the local runner does, the Ray runner leaves them to the method)."""
    t0 = time.perf_counter()
    from fprt.runtime.backends import BackendSpec, load_backend
    from fprt.runtime.methods import default_method, get_method
    from fprt.runtime.pipeline import Embedder

    startup.imports_s += time.perf_counter() - t0
    with clock.timed("discover"):
        layout, ref = _resolve_data(data, reference)
    task = layout.task
    meth = get_method(opts.method, task) if opts.method else None
    model_given = model is not None or model_object is not None
    if meth is None and not model_given and ref is not None:
        meth = _model_free_auto(task)  # a training split and no model: auto on pixels, where the task has one
    # a method that can run either way (model_optional) stands its features in only when no model is given
    features = (meth.features(opts.method_options)
                if meth is not None and not (model_given and getattr(meth, "model_optional", False)) else None)
    if features is not None:
        model_obj = features
        if model is not None:
            log.warning("--method %s needs no model; %s is not used", meth.name, model)
    else:
        if model is None and model_object is None:
            raise FprtError("a model is needed (--model FILE: an .onnx file, a training run folder or an engine), "
                            "except for the classical methods ssim-max and phash and for --method auto with a training split")
        t0 = time.perf_counter()
        model_obj = model_object or load_backend(model, backend=opts.backend, device=opts.device, threads=opts.threads,
                                                 compile=opts.compile)
        startup.model_load_s += time.perf_counter() - t0
        _check_task(model_obj.meta, task, model, data, opts.allow_task_mismatch)
        if meth is None:
            meth = default_method(task, model_obj.meta, has_reference=ref is not None)
        if model_obj.kind not in meth.kinds:
            raise FprtError(f"--method {meth.name} needs a {' or '.join(meth.kinds)} model; {model} is a {model_obj.kind} model")
    extension = _start_extension_load(opts.device, startup)
    meta = model_obj.meta
    classes = list(meta.class_names) if task == "subsets" else ["0", "1"]
    sets = {s.name: s for s in meth.image_sets(ScoreData(layout, ref, meta))}
    O.check_ids(sets["test"].paths, opts.fmt)  # clashing ids fail before any work
    truth = _read_truth(opts.labels, sets["test"].paths, task) if opts.labels is not None else None
    cache_root = None
    if opts.use_cache and getattr(model_obj, "cacheable", True):
        cache_root = _usable_cache(Path(opts.cache) if opts.cache else None)
    spec = None
    if features is None and model is not None:
        spec = BackendSpec(str(model), backend=opts.backend, device=opts.device, threads=opts.threads, compile=opts.compile)
    wanted = meth.pixel_features(sets, model_obj) if pixel_features else None
    embedder = Embedder(model_obj, cache_root, spec=spec if spec is not None else features, pixel_features=wanted)
    return Job(layout=layout, ref=ref, task=task, method=meth, model=model_obj, classes=classes, sets=sets,
               embedder=embedder, cache_root=cache_root if embedder.cache is not None else None, truth=truth,
               extension=extension)


def _check_task(meta, task: str, model, data, allowed: bool) -> None:
    if meta.task == task:
        return
    what = (f"{model} was trained for {meta.task} but {data} is a {task} test split")
    if not allowed:
        raise FprtError(f"{what}; pass --allow-task-mismatch to score with its embeddings anyway")
    log.warning("%s: its embeddings are used as they are (--allow-task-mismatch)", what)


def _start_extension_load(device: str, startup: Startup):
    """Load the similarity extension (it imports torch: about a second) in a thread while the images are
    embedded; ``decide`` waits for it. Its cost shows as start-up, never as the similarity stage."""
    import threading

    def load() -> None:
        t0 = time.perf_counter()
        try:
            from fprt.runtime import extension_loader

            extension_loader.load("cuda" if str(device).startswith("cuda") else "cpu")
        except Exception as exc:  # noqa: BLE001 - the similarity step falls back (and says so) by itself
            log.debug("similarity extension not loaded up front: %s", exc)
        startup.extension_load_s += time.perf_counter() - t0

    thread = threading.Thread(target=load, name="fprt-extension-load", daemon=True)
    thread.start()
    return thread


def _wait_for_extension(job, startup: Startup) -> None:
    if job.extension is not None:
        t0 = time.perf_counter()
        job.extension.join()
        startup.extension_wait_s += time.perf_counter() - t0
        job.extension = None


def _read_truth(labels: Path, test_paths: list[Path], task: str) -> dict[str, str]:
    """The labels file read and checked against the test images before any model work."""
    from fprt.data import read_labels

    if not labels.is_file():
        raise DataError(f"--labels {labels}: no such file")
    truth = {str(k): str(v) for k, v in read_labels(labels).items()}
    ids = [O.run_id(p, RunCsvFormat()) for p in test_paths]
    missing = [i for i in ids if i not in truth]
    if missing:
        raise DataError(f"{labels}: no label for {len(missing)} test image(s), e.g. {missing[:5]}")
    if task == "membership":
        wrong = sorted({truth[i] for i in ids} - {"0", "1"})
        if wrong:
            raise DataError(f"{labels}: labels {wrong[:5]} are not ['0', '1']")
    return truth


def _usable_cache(root: Path | None) -> Path | None:
    """The cache folder, or None (and a warning) when it cannot be written: the run goes on without it."""
    from fprt.runtime.cache import default_cache_dir

    try:
        root = root or default_cache_dir()
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return root
    except OSError as exc:
        log.warning("the embedding cache %s cannot be used (%s); this run goes on without a cache", root,
                    exc.strerror or exc)
        return None


# ============================================================================================== step 2: embed
def embed(job: Job, runner, opts: ScoreOptions, clock) -> tuple[Any, list[Path], list]:
    """Every file of every set read once (cache key, look-up, decode on a miss) and the misses embedded.

    Returns ``(Embedded, unique paths, bad files)``; ``on_error="stop"`` raises one ``BadFilesError``
    listing every bad file once all files were seen (the good ones' embeddings are in the cache)."""
    from fprt.data import BadFilesError

    paths = list(dict.fromkeys(p for s in job.sets.values() for p in s.paths))
    bar = _progress_bar(len(paths), opts.progress)
    t0 = time.perf_counter()
    try:
        got = runner.embed(paths, job.embedder, batch_size=opts.batch_size, workers=opts.workers, clock=clock,
                           progress=_bar_update(bar, clock))
    finally:
        if bar is not None:
            bar.close()
    clock.add("embed_wall", time.perf_counter() - t0, len(paths))
    if got.bad and opts.on_error == "stop":
        raise BadFilesError(got.bad, total=len(paths), when="after reading every file; nothing was written, and the "
                            "embeddings of the good files are in the cache, so the rerun after fixing them computes nothing again")
    return got, paths, got.bad


# ============================================================================================== step 3: assemble
@dataclass
class Assembled:
    """Per image set: the images kept (bad ones left out with --on-error skip) and their rows."""

    sets: dict[str, ImageSet]
    outputs: dict[str, dict[str, Any]]
    missing_test: list[Path]  # test images left out as bad
    cache_hits: int
    computed: int


def assemble(job: Job, got, paths: list[Path], runner, opts: ScoreOptions, clock) -> Assembled:
    """The rows of every set, in the sets' order: cached rows and computed rows, bad files left out."""
    emb = job.embedder
    key_of = dict(zip(paths, got.keys))
    with clock.timed("cache_read", len(got.hits)):
        hit_keys = list(got.hits)
        found, hit_rows = emb.lookup(hit_keys)
    lost = [got.hits[k] for k, ok in zip(hit_keys, found) if not ok]
    if lost:  # a cached shard failed its checksum since the look-up: compute those images now
        again = runner.embed(lost, emb, batch_size=opts.batch_size, workers=opts.workers, clock=clock, use_cache_index=False)
        _merge(got, again)
    computed = got.computed_rows()
    hit_index = {k: i for i, k in enumerate(k for k, ok in zip(hit_keys, found) if ok)}
    n_hit = len(hit_index)
    rows: dict[str, Any] = {}
    for name in emb.outputs:
        parts = []
        if n_hit:  # the model's outputs go to its device; pixel features stay host arrays
            parts.append(_on_device(hit_rows[name], emb.device) if name in emb.model_outputs else hit_rows[name])
        if got.computed:
            parts.append(computed[name])
        rows[name] = _concat(parts)
    row_of = {k: i for k, i in hit_index.items()}
    row_of.update({k: n_hit + i for k, i in got.computed.items()})
    kept_sets: dict[str, ImageSet] = {}
    outputs: dict[str, dict[str, Any]] = {}
    missing_test: list[Path] = []
    for name, s in job.sets.items():
        r = np.array([row_of.get(key_of[p], -1) for p in s.paths], dtype=np.int64)
        keep = r >= 0
        if name == "test":
            missing_test = [p for p, k in zip(s.paths, keep) if not k]
        paths_ = [p for p, k in zip(s.paths, keep) if k]
        if not paths_:
            raise DataError(f"every image of the {name} set was skipped as bad; nothing to score")
        labels_ = [lab for lab, k in zip(s.labels, keep) if k] if s.labels is not None else None
        kept_sets[name] = ImageSet(name, paths_, labels_)
        outputs[name] = {o: _take(rows[o], r[keep]) for o in emb.outputs}
    return Assembled(sets=kept_sets, outputs=outputs, missing_test=missing_test, cache_hits=n_hit,
                     computed=len(got.computed))


def _merge(got, again) -> None:
    """Rows computed in a second pass (``assemble``'s lost hits) added to the first pass's."""
    computed = again.computed_rows()
    order = sorted(again.computed, key=again.computed.get)
    got.add_batch(order, {name: rows for name, rows in computed.items()}) if order else None
    for key in order:
        got.hits.pop(key, None)
    got.bad += again.bad


# ============================================================================================== step 4: decide
def decide(job: Job, parts: Assembled, runner, opts: ScoreOptions, clock, startup: Startup | None = None):
    """The method's decisions and scores (similarity reductions inside the runner's engine)."""
    _wait_for_extension(job, startup or Startup())
    meta = job.meta

    def load_pixels(paths, size: int | None = None):
        from fprt.data import iter_batches

        pre = meta.preprocess if size is None else dataclasses.replace(meta.preprocess, size=size)
        batches = list(iter_batches(list(paths), pre, max(1, len(paths)), opts.workers, "stop"))
        return np.concatenate([b.pixels for b in batches]) if batches else np.zeros((0,), np.uint8)

    ctx = Context(task=job.task, classes=job.classes, metric=meta.metric, meta=meta, options=opts.method_options,
                  sets=parts.sets, outputs=parts.outputs, backend=job.model, load_pixels=load_pixels,
                  pixel_features=job.embedder.pixel_features)
    with clock.timed("similarity_and_decisions", len(parts.sets["test"].paths)), runner.similarity():
        result = job.method.score(ctx)
    if job.task == "subsets" and result.params.get("classes"):
        job.classes = list(result.params["classes"])  # knn / centroids from --reference: the reference's subsets
    return result


# ============================================================================================== step 5: write
def write(job: Job, parts: Assembled, result, folder, opts: ScoreOptions, clock, *, bad: list, paths: list[Path],
          startup: Startup, t_start: float, runner) -> ScoreResult:
    """run.csv, scores.csv, metrics + plots, bad_files.csv, summary.json into the staging folder; then the swap."""
    from fprt import __version__

    stage, out, task, classes, fmt = folder.path, folder.out, job.task, job.classes, opts.fmt
    test_paths = parts.sets["test"].paths
    test_ids = [O.run_id(p, fmt) for p in test_paths]
    written: list[str] = []

    def done(path: Path) -> Path:
        written.append(path.name)
        folder.checkpoint(path.name)
        return out / path.name

    with clock.timed("write_outputs", len(test_paths)):
        run_labels = [O.run_label(task, d, classes if task == "subsets" else [], fmt) for d in result.decisions]
        run_csv = done(O.write_run_csv(stage / "run.csv", test_ids, run_labels, task=task, classes=classes, fmt=fmt))
        scores_csv = done(O.write_scores_csv(stage / "scores.csv", _score_columns(job, parts, result, test_ids)))
        metrics = metrics_json = None
        plot_files: list[Path] = []
        if opts.labels is not None:
            truth = O.load_truth(opts.labels, [O.run_id(p, RunCsvFormat()) for p in test_paths], task, classes)
            metrics = O.compute_metrics(task, truth, result.decisions, result.score if task == "membership" else None, classes)
            if task == "subsets" and result.class_scores is not None and len(set(truth)) > 1:
                metrics["roc_auc_ovr_macro"] = _ovr_auc(truth, result.class_scores, classes)
            metrics_json = done(O.write_json(stage / "metrics.json", {"task": task, "method": job.method.name, **metrics}))
            if opts.plots:
                plot_files = [done(p) for p in O.write_plots(stage, _plot_inputs(job, parts, result, truth))]
        if opts.on_error == "skip":
            from fprt.data import write_bad_file_report

            done(write_bad_file_report(bad, stage / "bad_files.csv"))
    wall = time.perf_counter() - t_start
    summary = _summary(job, parts, result, opts, clock, bad=bad, paths=paths, startup=startup, wall=wall,
                       outputs=sorted(n for n in written if n != "bad_files.csv"), runner=runner, version=__version__)
    summary["metrics"] = {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float)) or v is None} or None
    summary_json = done(O.write_json(stage / "summary.json", summary))
    folder.commit()
    return ScoreResult(
        out=out, run_csv=run_csv, scores_csv=scores_csv, summary_json=summary_json, task=task, method=job.method.name,
        n_test=len(test_paths), images_per_s=summary["images_per_s"] or 0.0, model_images_per_s=summary["model_images_per_s"],
        metrics=metrics, metrics_json=metrics_json, plots=plot_files, bad_files=bad, summary=summary,
        complete=not parts.missing_test, missing_ids=summary["run_csv"]["missing_ids"],
    )


def _score_columns(job: Job, parts: Assembled, result, test_ids: list[str]) -> dict[str, Any]:
    test_paths = parts.sets["test"].paths
    cols: dict[str, Any] = {
        "image_id": test_ids,
        "file": [_rel(p, job.layout.root) for p in test_paths],
        "decision": result.decisions,
        "score": result.score,
    }
    cols.update({name: as_numpy(v) for name, v in result.columns.items()})
    if result.neighbours is not None:
        cols["neighbours"] = result.neighbours
        cols["neighbour_scores"] = [list(r) for r in np.asarray(result.neighbour_scores)]
    return cols


def _plot_inputs(job: Job, parts: Assembled, result, truth: list[str]):
    out = parts.outputs["test"]
    emb_name = "embedding" if "embedding" in out else next(iter(out))
    emb = as_numpy(out[emb_name])
    emb = emb.reshape(len(emb), -1) if emb.ndim > 2 else emb
    return O.PlotInputs(task=job.task, classes=job.classes, truth=truth, decisions=result.decisions,
                        scores=np.asarray(result.score, float), score_label=result.score_name,
                        embeddings=emb if emb.shape[1] <= 4096 else None, class_scores=result.class_scores)


def _summary(job: Job, parts: Assembled, result, opts: ScoreOptions, clock, *, bad: list, paths: list[Path],
             startup: Startup, wall: float, outputs: list[str], runner, version: str) -> dict:
    test_paths = parts.sets["test"].paths
    n_images = sum(len(s.paths) for s in job.sets.values())
    embed_s = clock.busy.get("embed_wall", 0.0)
    infer_s = clock.busy.get("infer", 0.0)
    model_rate = parts.computed / embed_s if parts.computed and embed_s > 0 else None
    after_startup = wall - startup.total_s
    missing_ids = [O.run_id(p, opts.fmt) for p in parts.missing_test]
    emb = job.embedder
    summary = {
        "fprt_version": version,
        "task": job.task,
        "method": {"name": job.method.name, "source": job.method.source, "summary": job.method.summary,
                   "params": result.params, "options": opts.method_options.to_dict()},
        "score": {"column": "score", "is": result.score_name, "larger_means": result.larger_means,
                  "convention": SCORE_CONVENTION,
                  "neighbour_scores": result.neighbour_score_name},
        "metric": job.meta.metric,
        "data": {"root": str(job.layout.root), "layout": job.layout.kind,
                 "reference": str(job.ref.root) if job.ref is not None else None},
        "counts": {
            "test_images": len(test_paths),
            "decisions": {d: result.decisions.count(d) for d in sorted(set(result.decisions))},
            "sets": {name: len(s.paths) for name, s in parts.sets.items()},
            "images_total": n_images,
            "unique_files": len(paths),
            "cache_hits": parts.cache_hits,
            "computed": parts.computed,
            "bad_files": len(bad),
        },
        "bad_files": [str(b) for b in bad[:100]],
        "on_error": opts.on_error,
        "startup": startup.to_dict(),
        "timings": {**clock.to_dict(), "pipeline_wall_s": round(embed_s, 4), "total_wall_s": round(wall, 4),
                    "after_startup_wall_s": round(after_startup, 4)},
        "images_per_s": round(n_images / wall, 2) if wall > 0 else None,
        "images_per_s_after_startup": round(n_images / after_startup, 2) if after_startup > 0 else None,
        "model_images_per_s": round(model_rate, 2) if model_rate else None,
        "infer_only_images_per_s": round(parts.computed / infer_s, 2) if infer_s > 0 else None,
        "backend": job.model.describe(),
        "model_sha256": job.model.model_sha256,
        "cache": {"dir": str(job.cache_root) if job.cache_root else None,
                  **(emb.cache.stats.to_dict() if emb.cache is not None else {})},
        "run_csv": {"path": "run.csv", **opts.fmt.to_dict(), "validated": True, "complete": not missing_ids,
                    "missing_ids": missing_ids},
        "outputs": outputs,
        "metrics": None,
    }
    if runner.info is not None:
        summary[runner.name] = runner.info
    if result.evidence is not None:
        summary["evidence"] = result.evidence.to_dict()
    return summary


# ============================================================================================== score
def score(
    model: str | Path | None,
    data: str | Path,
    out: str | Path,
    *,
    method: str | None = None,
    reference: str | Path | None = None,
    labels: str | Path | None = None,
    backend: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
    compile: bool = False,
    batch_size: int = 64,
    workers: int | None = None,
    cache: str | Path | None = None,
    use_cache: bool = True,
    on_error: str = "stop",
    check: str = "verify",
    k: int = 5,
    alpha: float = 0.5,
    threshold: float | None = None,
    ssim_size: int = 256,
    ssim_exact: bool = False,
    csv_header: str | None = None,
    keep_extension: bool = False,
    subset_labels: str = "names",
    plots: bool = True,
    progress: bool | None = None,
    overwrite: bool = False,
    allow_task_mismatch: bool = False,
    model_object=None,
    runner=None,
) -> ScoreResult:
    """Score the test split of ``data`` with ``model`` into ``out``; see ``fprt score --help`` for the options.

    The steps: ``resolve`` (data, method, model, labels, cache: all checked before an image is read)
    → ``embed`` (each file read once) → ``assemble`` (rows per image set) → ``decide`` (the method)
    → ``write`` (every file into a staging folder, swapped in as ``out`` at the end: ``fprt.outdir``).

    ``model`` may be None for the classical methods (``ssim-max``, ``phash``). ``model_object``
    passes an already loaded backend (tests, notebooks, ``fprt bench``). ``runner`` is the one seam
    for a distributed run: an object with ``embed(...)`` and ``similarity()`` like
    ``fprt.runtime.pipeline.Runner`` (``fprt.runtime.distributed.RayRunner`` for ``--ray``).
    ``check`` is kept for compatibility: every image the model needs is decoded completely (the
    strictest check) in the same read that hashes it.
    """
    from fprt.outdir import OutputFolder
    from fprt.runtime.pipeline import Runner, StageClock

    t_start = time.perf_counter()
    startup = Startup(before_score_s=_process_age())
    clock = StageClock()
    opts = ScoreOptions(
        method=method, backend=backend, device=device, threads=threads, compile=compile, batch_size=batch_size,
        workers=workers, cache=cache, use_cache=use_cache, on_error=on_error, check=check, labels=labels, plots=plots,
        progress=progress, overwrite=overwrite, allow_task_mismatch=allow_task_mismatch,
        method_options=MethodOptions(k=k, alpha=alpha, threshold=threshold, ssim_size=ssim_size, ssim_exact=ssim_exact),
        fmt=RunCsvFormat(header=csv_header, keep_extension=keep_extension, subset_labels=subset_labels),
    )
    runner = runner or Runner()
    roots = [Path(data)] + ([Path(reference)] if reference is not None else [])
    with OutputFolder(out, overwrite=overwrite, data=roots, command="score") as folder:
        job = resolve(model, data, reference, opts, clock, startup, model_object,
                      pixel_features=getattr(runner, "computes_pixel_features", False))
        got, paths, bad = embed(job, runner, opts, clock)
        parts = assemble(job, got, paths, runner, opts, clock)
        result = decide(job, parts, runner, opts, clock, startup)
        if parts.missing_test:
            log.warning("run.csv lacks %d test image(s) skipped as bad files (%s): it is not a complete submission",
                        len(parts.missing_test), ", ".join(p.name for p in parts.missing_test[:5]))
        return write(job, parts, result, folder, opts, clock, bad=bad, paths=paths, startup=startup, t_start=t_start,
                     runner=runner)


def _process_age() -> float | None:
    """Seconds since this process started (Linux /proc), or None."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/self/stat", "rb") as fh:
            start_ticks = int(fh.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - start_ticks / ticks)
    except (OSError, ValueError, IndexError):
        return None


def _model_free_auto(task: str):
    """``auto`` for ``task`` when it can run without a model (``Method.model_optional``), else None."""
    from fprt.runtime.methods import get_method, method_names

    if "auto" not in method_names(task):
        return None
    meth = get_method("auto", task)
    return meth if meth.model_optional else None


def _ovr_auc(truth, class_scores, classes) -> float | None:
    from sklearn.metrics import roc_auc_score

    aucs = []
    for g, c in enumerate(classes):
        y = np.array([t == c for t in truth], dtype=int)
        if 0 < y.sum() < len(y):
            aucs.append(roc_auc_score(y, np.asarray(class_scores)[:, g]))
    return float(np.mean(aucs)) if aucs else None


def _rel(p: Path, root: Path) -> str:
    try:
        return str(Path(p).relative_to(root))
    except ValueError:
        return str(p)


def _on_device(x, device: str):
    if device == "cuda":
        import torch

        return torch.from_numpy(np.ascontiguousarray(x)).to("cuda")
    return x


def _concat(parts: list):
    if not parts:
        return np.zeros((0, 0), np.float32)
    if hasattr(parts[0], "detach"):
        import torch

        return torch.cat([p if hasattr(p, "detach") else torch.from_numpy(p).to(parts[0].device) for p in parts])
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _take(x, idx: np.ndarray):
    if hasattr(x, "detach"):
        import torch

        return x[torch.as_tensor(idx, device=x.device)]
    return x[idx]


def _progress_bar(total: int, progress: bool | None):
    from fprt.progress import progress as bar

    if total == 0 or progress is False:
        return None
    return bar(total=total, desc="score", unit="img", disable=None if progress is None else not progress)


def _bar_update(bar, clock):
    if bar is None:
        return None

    def update(n: int) -> None:
        bar.update(n)
        infer = clock.rate("infer")
        dec = clock.rate("decode")
        bar.set_postfix_str(
            f"infer {infer:.0f}/s, decode {dec:.0f}/s, waited for input {clock.busy.get('infer_wait_input', 0):.1f}s"
            if infer and dec else "", refresh=False)

    return update


def describe_result(r: ScoreResult) -> str:
    """The lines ``fprt score`` prints: method, counts, metrics, throughput, where the outputs are."""
    s = r.summary
    c = s["counts"]
    lines = [
        f"scored {r.n_test} {r.task} test image(s) with {r.method} ({s['method']['source']}); "
        f"decisions: {', '.join(f'{k}: {v}' for k, v in c['decisions'].items())}",
        f"images: {c['images_total']} ({c['cache_hits']} from the cache, {c['computed']} computed, {c['bad_files']} bad)"
        f"  backend: {s['backend'].get('format')} on {s['backend'].get('device')}"
        + (f" ({', '.join(s['backend']['providers'])})" if s["backend"].get("providers") else ""),
    ]
    if r.metrics:
        keys = ("accuracy", "f1", "f1_macro", "precision", "recall", "roc_auc", "cohen_kappa")
        lines.append("metrics: " + ", ".join(f"{k} {r.metrics[k]:.4f}" for k in keys if isinstance(r.metrics.get(k), float)))
    rate = f"{r.images_per_s:.1f} images/s end to end"
    if s.get("images_per_s_after_startup"):
        rate += f" ({s['images_per_s_after_startup']:.1f} after start-up)"
    if r.model_images_per_s:
        rate += f", {r.model_images_per_s:.1f} images/s through read+decode+model"
    stages = {k: v["seconds"] for k, v in s["timings"].items() if isinstance(v, dict) and v.get("seconds")
              and k != "embed_wall"}
    slowest = sorted(stages, key=stages.get, reverse=True)[:3]
    st = s.get("startup") or {}
    startup = (f"start-up {st['total_s']:.1f} s: imports {st['imports_s']:.1f}, model {st['model_load_s']:.1f}, "
               f"extension {st['extension_wait_s'] if st.get('extension_wait_s') is not None else st['extension_load_s']:.1f}"
               + (f" (loading took {st['extension_load_s']:.1f}, beside the embedding)" if st.get("extension_wait_s") is not None else "")
               + (f" (+ {st['before_score_s']:.1f} s Python and CLI imports before)" if st.get("before_score_s") else "")
               + "; " if st.get("total_s") is not None else "")
    lines.append(f"throughput: {rate} ({s['timings']['total_wall_s']:.1f} s; {startup}slowest stages (busy s): "
                 + ", ".join(f"{k} {stages[k]:.1f}" for k in slowest) + ")")
    if not s["run_csv"].get("complete", True):
        missing = s["run_csv"]["missing_ids"]
        lines.append(f"INCOMPLETE: run.csv lacks {len(missing)} test image(s) skipped as bad files "
                     f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}); see bad_files.csv")
    if s.get("evidence"):
        from fprt.runtime.evidence import EvidenceTable

        lines.append(EvidenceTable.from_dict(s["evidence"]).to_text())
    extra = ["bad_files.csv"] if s.get("on_error") == "skip" else []
    lines.append(f"outputs: {r.out}/ ({', '.join(s['outputs'] + ['summary.json'] + extra)})")
    return "\n".join(lines)
