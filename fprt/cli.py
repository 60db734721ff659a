"""The ``fprt`` command line: thin typer wrappers, each one a call into the Python API.

Conventions (the README's "CLI conventions" table is generated from this app and checked by a test):
every choice is an Enum of ``fprt.choices`` (listed in ``--help``, validated, completed by the shell); one
spelling per concept in every command: ``--data/-d`` a dataset folder, ``--model/-m`` a model file or run
folder, ``--out/-o`` what the command writes, ``--images`` a folder of images, ``--check`` how bad files are
found, ``--workers`` parallel image readers, ``--threads`` compute threads, ``--device auto|cpu|cuda``.
Older spellings (``fprt score DATA``, ``fprt bench RUN``, ``--batch-sizes 1,8``...) still work, hidden, for
one release. Global options ``-v``/``-q``/``--debug`` go before or after the command.

Errors: ``main`` prints expected failures as one line ``fprt: error: …`` (exit 2: an option, path, data or
model is unusable; exit 1: the run failed on the way); ``--debug`` or ``FPRT_DEBUG=1`` adds the traceback;
a genuine bug keeps its traceback.

Heavy modules (torch, onnxruntime) are imported inside the commands, never at module level, so
``fprt --help`` is instant.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import List, Optional

import typer

from fprt import __version__
from fprt.choices import (
    Backend,
    Device,
    Exporter,
    Family,
    GeneratedNaming,
    Head,
    InfoCheck,
    Method,
    Miner,
    OnError,
    Precision,
    ScoreCheck,
    SubsetLabels,
    Task,
    TrainOn,
)

log = logging.getLogger("fprt")

HELP = "fprt, the fingerprint runtime: audit synthetic medical images for traces of their training images."

app = typer.Typer(
    name="fprt",
    help=HELP,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

GLOBAL_FLAGS = {"-v", "-vv", "-vvv", "--verbose", "-q", "--quiet", "--debug"}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fprt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", is_eager=True, callback=_version, help="Print fprt's version and exit."),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More messages: -v information, -vv debug."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors (no warnings)."),
    debug: bool = typer.Option(False, "--debug", envvar="FPRT_DEBUG", help="Show the traceback of an error (also FPRT_DEBUG=1)."),
) -> None:
    """fprt, the fingerprint runtime: audit synthetic medical images for traces of their training images."""
    from fprt.log import setup_logging

    setup_logging(verbose, quiet)


# ---------------------------------------------------------------------------------------------- helpers
def _value(choice):
    """An Enum choice (or a list of them) as the library's plain string(s); None stays None."""
    if choice is None:
        return None
    if isinstance(choice, (list, tuple)):
        return [_value(c) for c in choice] or None
    return getattr(choice, "value", choice)


def _one(option_value, old_positional, name: str, *, required: bool = True):
    """The value of ``name`` given as the option or as the old (hidden) positional; both only if equal."""
    if option_value is not None and old_positional is not None and str(option_value) != str(old_positional):
        raise typer.BadParameter(f"given twice ({old_positional!r} and {option_value!r})", param_hint=name)
    value = option_value if option_value is not None else old_positional
    if value is None and required:
        raise typer.BadParameter(f"missing; give {name} PATH", param_hint=name)
    return value


def _device(device, backend: str = "torch") -> str:
    from fprt.device import resolve_device

    return resolve_device(_value(device), backend)


def _score_backend(model: str | None, backend: str | None) -> str:
    """Which backend ``--device auto`` must find a GPU for: --backend, else the model file's format."""
    if backend:
        return backend
    if model is None:
        return "torch"
    from fprt.errors import FprtError
    from fprt.formats import format_for_path

    try:
        return format_for_path(model).name
    except FprtError:
        return "onnx"


# ---------------------------------------------------------------------------------------------- commands
@app.command()
def checks() -> None:
    """Show what this machine offers fprt: torch/CUDA, GPU, nvcc, ONNX Runtime, TensorRT, extension."""
    from fprt.checks import print_checks, run_checks

    print_checks(run_checks())


@app.command("make-demo-data")
def make_demo_data_cmd(
    out: Optional[str] = typer.Option(None, "--out", "-o", metavar="DIR", help="Folder to create (must be missing or empty unless --overwrite)."),
    old_out: Optional[str] = typer.Argument(None, hidden=True, metavar="OUT"),
    task: Task = typer.Option(Task.subsets, "--task", help="Which task's layout and labels to draw."),
    seed: int = typer.Option(0, "--seed", help="Same seed and options → byte-identical files."),
    classes: Optional[int] = typer.Option(None, "--classes", show_default="5", help="subsets: number of subsets t1..tK."),
    n_real: Optional[int] = typer.Option(None, "--n-real", show_default="60", help="subsets: real training images per subset."),
    n_generated: Optional[int] = typer.Option(None, "--n-generated", show_default="60 per subset | 400", help="Generated training images: per subset | membership total."),
    n_test: Optional[int] = typer.Option(None, "--n-test", show_default="40", help="subsets: test generated images per subset."),
    n_used: Optional[int] = typer.Option(None, "--n-used", show_default="150", help="membership: real images the generator was trained on."),
    n_not_used: Optional[int] = typer.Option(None, "--n-not-used", show_default="150", help="membership: real images it never saw."),
    n_test_used: Optional[int] = typer.Option(None, "--n-test-used", show_default="--n-used", help="membership test split: used images."),
    n_test_not_used: Optional[int] = typer.Option(None, "--n-test-not-used", show_default="--n-not-used", help="membership test split: not-used images."),
    n_test_generated: Optional[int] = typer.Option(None, "--n-test-generated", show_default="--n-generated", help="membership test split: generated images."),
    copy_fraction: Optional[float] = typer.Option(None, "--copy-fraction", show_default="0.4", help="membership: share of generated images that are near-copies/blends of used ones."),
    memorised_fraction: Optional[float] = typer.Option(None, "--memorised-fraction", show_default="0.7", help="membership: share of used images the generator memorised."),
    blend_fraction: Optional[float] = typer.Option(None, "--blend-fraction", show_default="0.15", help="membership: share of the copies that blend two used images."),
    separation: Optional[float] = typer.Option(None, "--separation", show_default="1", help="subsets: distance between cohorts (<1 harder, >1 easier)."),
    artifact_strength: float = typer.Option(1.0, "--artifact-strength", help="Scale of each generator's weak artefact (0 = none)."),
    generated_naming: GeneratedNaming = typer.Option(GeneratedNaming.gen_t, "--generated-naming", help="subsets: generated folders gen_t1..gen_tK (gen_t) or t1..tK (t)."),
    size: int = typer.Option(256, "--size", help="Image side in pixels."),
    compress_level: int = typer.Option(6, "--compress-level", min=0, max=9, help="PNG zlib level 0-9 (PIL's default 6)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, show_default="all cores for 200+ images", help="Processes drawing images (0: all cores)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out."),
) -> None:
    """Write a synthetic CT-like demo dataset with its test labels.

    subsets: OUT/train/real/t1..tK, OUT/train/generated/gen_t1..gen_tK, OUT/test/generated_unknown;
    membership: OUT/train/real/{used,not_used}, OUT/train/generated, OUT/test/{real_unknown,generated};
    plus OUT/test/labels.csv (image_id,label), OUT/demo.json and OUT/sources.csv.
    """
    from fprt.demo import make_demo_data

    info = make_demo_data(
        _one(out, old_out, "--out"), _value(task), seed=seed, classes=classes, n_real=n_real, n_generated=n_generated,
        n_test=n_test, n_used=n_used, n_not_used=n_not_used, n_test_used=n_test_used, n_test_not_used=n_test_not_used,
        n_test_generated=n_test_generated, copy_fraction=copy_fraction, memorised_fraction=memorised_fraction,
        blend_fraction=blend_fraction, separation=separation, artifact_strength=artifact_strength,
        generated_naming=_value(generated_naming), size=size, compress_level=compress_level, workers=workers,
        overwrite=overwrite,
    )
    print(info.summary())
    print(f"labels: {info.out / 'test' / 'labels.csv'}   parameters: {info.out / 'demo.json'}")


@app.command("info")
def info_cmd(
    data: Optional[str] = typer.Option(None, "--data", "-d", metavar="DIR", help="A dataset folder in one of the ImageCLEFmedical GANs layouts."),
    old_data: Optional[str] = typer.Argument(None, hidden=True, metavar="DIR"),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of tables."),
    sample: int = typer.Option(2000, "--sample", min=0, help="Read sizes/modes from at most this many files, spread evenly (0: all)."),
    check: InfoCheck = typer.Option(InfoCheck.decode, "--check", help="Find bad files by decoding every file, a sample of them (--sample), or none."),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, show_default="one per CPU, at most 8", help="Decode threads (0: none)."),
) -> None:
    """Show a dataset folder's layout, image counts per class, image sizes/modes and bad files."""
    import json

    from fprt.data.summary import print_summary, summarize

    level = {"decode": "all"}.get(check.value, check.value)  # fprt.data.summary's name for "decode every file"
    summary = summarize(_one(data, old_data, "--data"), sample=sample or None, check=level, workers=workers,
                        progress=not json_out)
    if json_out:
        typer.echo(json.dumps(summary, indent=2))
    else:
        print_summary(summary)


@app.command("train")
def train_cmd(
    ctx: typer.Context,
    family: Optional[Family] = typer.Argument(None, metavar="FAMILY", help="Model family (default with --resume: the run's)."),
    data: Optional[str] = typer.Option(None, "--data", "-d", metavar="DIR", help="Dataset folder with a training layout (or train*/ + test*/ subfolders)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", metavar="DIR", help="Run folder to write (model.safetensors, config.json, metrics.csv, plots/)."),
    resume: Optional[str] = typer.Option(None, "--resume", metavar="RUN", help="Continue the run folder RUN from its last finished epoch, with the arguments it was started with (config.json); options given override them."),
    task: Optional[Task] = typer.Option(None, "--task", show_default="what --data holds", help="The task to train for."),
    arch: Optional[str] = typer.Option(None, "--arch", "--model", show_default="siamese_cnn, pair_xattn, classifier_resnet18, features_resnet50", help="Registered architecture (fprt.trainer.list_models())."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, show_default="30 siamese (AIMultimediaLab 2025), 20 pair, 10 classifier (Medhastra 2025)", help="Epochs."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, show_default="the model's", help="Pairs (siamese/pair) or images (classifier) per step."),
    lr: Optional[float] = typer.Option(None, "--lr", show_default="1e-4", help="Adam learning rate."),
    device: Device = typer.Option(Device.cpu, "--device", help="Where to train; auto = cuda when torch sees a GPU."),
    seed: int = typer.Option(0, "--seed", help="Seed of the initialisation, the validation split and the pairs."),
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="Held-out share of each class for validation."),
    patience: int = typer.Option(10, "--patience", min=0, help="Early stopping: epochs without improvement (0: off)."),
    size: Optional[int] = typer.Option(None, "--size", show_default="256 siamese_cnn, 224 others", help="Input size."),
    weights: Optional[str] = typer.Option(None, "--weights", metavar="FILE", help="Local torchvision state dict for the backbone (nothing is downloaded; without it the backbone starts from random weights)."),
    head: Optional[Head] = typer.Option(None, "--head", show_default="svm", help="features: the scikit-learn head."),
    miner: Miner = typer.Option(Miner.hard, "--miner", help="siamese: hard (online hard negatives / membership self-pairs) | none (the paper's random pairs)."),
    train_on: TrainOn = typer.Option(TrainOn.all, "--train-on", help="classifier: all (real + generated) | real (the paper's setting)."),
    backbone: Optional[str] = typer.Option(None, "--backbone", show_default="resnet50", help="pair_xattn backbone: resnet50 (paper), resnet18, ... or cnn (small)."),
    steps_per_epoch: Optional[int] = typer.Option(None, "--steps-per-epoch", min=1, help="Cap on optimiser steps per epoch."),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, show_default="one per CPU, at most 8", help="Decode threads."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out (the new run is swapped in when it finishes)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, show_default="torch's: every core", help="CPU compute threads of PyTorch (on AVX-512 CPUs the weights depend on it; README 'Same numbers on every CPU')."),
) -> None:
    """Train a Siamese net, pair scorer, classifier or features+head on a dataset; writes a run folder."""
    from dataclasses import replace

    from fprt.trainer import TrainConfig, train

    if threads is not None:
        import torch

        torch.set_num_threads(threads)

    given = _explicit(ctx)
    config = TrainConfig(
        family=_value(family) or "siamese", model=arch, task=_value(task), epochs=epochs, batch_size=batch_size, lr=lr,
        seed=seed, val_fraction=val_fraction, patience=patience or None, device=_device(device), miner=_value(miner),
        size=size, weights=weights, head=_value(head), train_on=_value(train_on),
        model_kwargs={"backbone": backbone} if backbone else {}, steps_per_epoch=steps_per_epoch, workers=workers,
    )
    if resume is not None:
        from fprt.trainer import saved_run

        if out is not None and os.path.abspath(out) != os.path.abspath(resume):
            raise typer.BadParameter(f"--resume {resume} and --out {out} name two run folders", param_hint="--out")
        saved_data, saved = saved_run(resume)
        fields = {"family": "family", "arch": "model", "task": "task", "epochs": "epochs", "batch_size": "batch_size",
                  "lr": "lr", "device": "device", "seed": "seed", "val_fraction": "val_fraction", "patience": "patience",
                  "size": "size", "weights": "weights", "head": "head", "miner": "miner", "train_on": "train_on",
                  "backbone": "model_kwargs", "steps_per_epoch": "steps_per_epoch", "workers": "workers"}
        changes = {fields[name]: getattr(config, fields[name]) for name in given if name in fields}
        if "model_kwargs" in changes:
            changes["model_kwargs"] = {**saved.model_kwargs, **changes["model_kwargs"]}
        config, data, out = replace(saved, **changes), data or str(saved_data), resume
    else:
        if family is None:
            raise typer.BadParameter("missing; give the model family (or --resume RUN)", param_hint="FAMILY")
        for name, value in (("--data", data), ("--out", out)):
            if value is None:
                raise typer.BadParameter(f"missing; give {name} DIR (or --resume RUN)", param_hint=name)

    def on_epoch(row: dict) -> None:
        typer.echo(f"epoch {row['epoch']}: loss {row['train_loss']:.4f}  val {row['val_metric_name']} "
                   f"{row['val_metric']:.4f}  ({row['seconds']:.1f} s)")

    result = train(data, out, config, resume=resume is not None, overwrite=overwrite, on_epoch=on_epoch)
    for name, b in result.baselines.items():  # the simple baselines on the same validation split
        typer.echo(f"baseline {name}: val {b['val_metric_name']} {b['val_metric']:.4f} ({b['what']}; fitted on {b['fitted_on']})")
    meta = result.meta
    typer.echo(
        f"trained {meta.model} ({meta.task}): best val {result.metric_name} {result.best_metric:.4f} at epoch "
        f"{result.best_epoch} ({result.status}, {result.seconds:.1f} s)\n"
        f"run: {result.run_dir}  (model.safetensors, config.json, metrics.csv, plots/)"
    )


def _explicit(ctx: typer.Context) -> set[str]:
    """Names of the parameters given on the command line (not defaults)."""
    explicit = set()
    for name in ctx.params:
        source = ctx.get_parameter_source(name)
        if source is not None and getattr(source, "name", str(source)) in ("COMMANDLINE", "ENVIRONMENT"):
            explicit.add(name)
    return explicit


@app.command("export-onnx")
def export_onnx_cmd(
    model: Optional[str] = typer.Option(None, "--model", "-m", metavar="RUN", help="A training run folder or its .safetensors checkpoint."),
    old_model: Optional[str] = typer.Argument(None, hidden=True, metavar="RUN_OR_CHECKPOINT"),
    out: str = typer.Option(..., "--out", "-o", metavar="FILE", help="The ONNX file to write (model.onnx)."),
    opset: Optional[int] = typer.Option(None, "--opset", show_default="the exporter's, 20 with torch 2.14", help="ONNX opset."),
    fp16: bool = typer.Option(False, "--fp16", help="FP16 weights and compute, the input and output types kept (uint8 or float32 in, float32 out; for GPUs / TensorRT)."),
    int8: bool = typer.Option(False, "--int8", help="Static INT8 QDQ for ONNX Runtime's CPU EP, calibrated on --calib."),
    calib: Optional[str] = typer.Option(None, "--calib", metavar="DIR", show_default="the run's training data", help="Folder of real images (or a training dataset) to calibrate INT8 on."),
    uint8_input: bool = typer.Option(True, "--uint8-input/--float-input", help="uint8: the graph takes the decoded N×1×H×W pixels and normalises them itself (less CPU work and 4× less data to move per image); float: it takes normalised float32 N×C×H×W."),
    images: Optional[str] = typer.Option(None, "--images", metavar="DIR", show_default="--calib, else the run's data", help="Folder of real images for the parity check."),
    max_drop: float = typer.Option(0.02, "--max-drop", help="INT8 gate: the largest accuracy drop against fp32 allowed."),
    no_reduce_range: bool = typer.Option(False, "--no-reduce-range", help="INT8: 8-bit weights (for CPUs with VNNI)."),
    exporter: Exporter = typer.Option(Exporter.auto, "--exporter", help="auto = dynamo, then TorchScript if it fails."),
) -> None:
    """Export a trained model to ONNX, check it against PyTorch (always) and print the parity figures."""
    from fprt.export import export_onnx
    from fprt.export.precision import Int8Gate, Int8Options

    export_onnx(
        _one(model, old_model, "--model"), out, opset=opset, fp16=fp16, int8=int8, calib=calib, uint8_input=uint8_input,
        images=images, gate=Int8Gate(max_drop=max_drop), int8_options=Int8Options(reduce_range=not no_reduce_range),
        exporter=_value(exporter),
    )


@app.command("build-engine")
def build_engine_cmd(
    model: Optional[str] = typer.Option(None, "--model", "-m", metavar="FILE", help="An ONNX file written by `fprt export-onnx`."),
    old_model: Optional[str] = typer.Argument(None, hidden=True, metavar="MODEL_ONNX"),
    out: str = typer.Option(..., "--out", "-o", metavar="FILE", help="The engine file to write (model.plan)."),
    fp16: bool = typer.Option(False, "--fp16", help="FP16 engine (TensorRT 11: built from an FP16 conversion of the ONNX)."),
    min_batch: Optional[int] = typer.Option(None, "--min-batch", min=1, show_default="1", help="Smallest batch the engine accepts."),
    opt_batch: Optional[int] = typer.Option(None, "--opt-batch", min=1, show_default="64", help="Batch the engine is tuned for."),
    max_batch: Optional[int] = typer.Option(None, "--max-batch", min=1, show_default="256", help="Largest batch the engine accepts."),
    timing_cache: Optional[str] = typer.Option(None, "--timing-cache", metavar="FILE", help="TensorRT timing cache file, read and updated."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Build even when a matching engine exists."),
) -> None:
    """Build a TensorRT engine for this GPU from an fprt ONNX file (needs the \\[gpu] extra and a GPU)."""
    from fprt.export import build_engine

    build_engine(_one(model, old_model, "--model"), out, fp16=fp16, min_batch=min_batch, opt_batch=opt_batch,
                 max_batch=max_batch, timing_cache=timing_cache, rebuild=rebuild)


@app.command("score")
def score_cmd(
    data: Optional[str] = typer.Option(None, "--data", "-d", metavar="DIR", help="Dataset folder with a test split (or train*/ + test*/ subfolders)."),
    old_data: Optional[str] = typer.Argument(None, hidden=True, metavar="DATA"),
    out: str = typer.Option(..., "--out", "-o", metavar="DIR", help="Folder for run.csv, scores.csv, summary.json (+ metrics.json, plots)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", metavar="FILE", help="An .onnx file, a training run folder / .safetensors, or a .plan engine."),
    method: Optional[Method] = typer.Option(None, "--method", show_default="per task and model", help="subsets: auto, centroid, classifier, knn; membership: auto, max-sigma, max-threshold, logreg, pair, vcmi-*, ssim-max, phash."),
    reference: Optional[str] = typer.Option(None, "--reference", metavar="DIR", show_default="--data's train split", help="Training data (real/ + generated/) for centroid/knn/logreg."),
    labels: Optional[str] = typer.Option(None, "--labels", metavar="FILE", help="True labels (run.csv format) → metrics.json and plots."),
    backend: Optional[Backend] = typer.Option(None, "--backend", show_default="the model file's format", help="Override the backend chosen from the model file."),
    device: Device = typer.Option(Device.cpu, "--device", help="Where the model runs; auto = cuda when the backend can use a GPU here."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, show_default="physical cores", help="CPU threads of the model."),
    compile_: bool = typer.Option(False, "--compile", help="torch backend: torch.compile the model."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Images per model call."),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, show_default="one per CPU, at most 8", help="Decode threads."),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="auto|ADDRESS", help="Run decode+embed and the similarity step on Ray: auto = a local instance with every core, or a cluster address (HOST:6379, ray://HOST:10001). Needs the ray extra: pip install 'fprt\\[ray]'."),
    actors: Optional[int] = typer.Option(None, "--actors", min=1, show_default="the cluster's CPUs", help="With --ray: embed actors."),
    cache: Optional[str] = typer.Option(None, "--cache", metavar="DIR", show_default="$FPRT_CACHE_DIR/embeddings or ~/.cache/fprt/embeddings", help="Embedding cache folder."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the embedding cache."),
    on_error: OnError = typer.Option(OnError.stop, "--on-error", help="Bad images: stop (list every one, write nothing; the good ones' embeddings stay cached) | skip (+ bad_files.csv)."),
    check: ScoreCheck = typer.Option(ScoreCheck.verify, "--check", help="Kept for compatibility: every image the model needs is fully decoded in the one read that hashes it."),
    top_k: int = typer.Option(5, "--top-k", min=1, help="Neighbours per image in scores.csv (k of knn and pair)."),
    alpha: float = typer.Option(0.5, "--alpha", help="max-sigma: threshold = mu + alpha * sigma."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Fixed decision threshold in the score's units (overrides the method's rule)."),
    ssim_size: int = typer.Option(256, "--ssim-size", min=16, help="ssim-max: compare images at this size."),
    ssim_exact: bool = typer.Option(False, "--ssim-exact", help="ssim-max: SSIM of every real x generated pair (slow) instead of on each real image's candidates (raw-pixel NCC and uncorrelated-SSIM top 32)."),
    csv_header: Optional[str] = typer.Option(None, "--csv-header", help="Write this header line into run.csv, e.g. 'image_path,predicted_class'."),
    keep_extension: bool = typer.Option(False, "--keep-extension", help="run.csv ids keep the file extension."),
    subset_labels: SubsetLabels = typer.Option(SubsetLabels.names, "--subset-labels", help="subsets run.csv labels: names (t1..tK) | index (1..K)."),
    no_plots: bool = typer.Option(False, "--no-plots", help="With --labels: skip the plots."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out (swapped in whole when the run finishes)."),
    allow_task_mismatch: bool = typer.Option(False, "--allow-task-mismatch", help="Score with a model trained for the other task (its embeddings as they are)."),
    report: bool = typer.Option(False, "--report", help="Then write OUT/report.html and OUT/evidence.png (as `fprt report OUT`)."),
) -> None:
    """Score a test split: images → run.csv (validated submission), scores.csv, summary.json."""
    from fprt.runtime import score

    data = _one(data, old_data, "--data")
    backend_name = _value(backend)
    device_name = _device(device, _score_backend(model, backend_name))
    if ray is not None:  # Ray is imported only here, only with --ray
        from functools import partial

        from fprt.runtime.distributed import score_on_ray

        score, workers = partial(score_on_ray, ray=ray, actors=actors if actors is not None else workers), None
    result = score(
        model, data, out, method=_value(method), reference=reference, labels=labels, backend=backend_name,
        device=device_name, threads=threads, compile=compile_, batch_size=batch_size, workers=workers, cache=cache,
        use_cache=not no_cache, on_error=_value(on_error), check=_value(check), k=top_k, alpha=alpha,
        threshold=threshold, ssim_size=ssim_size, ssim_exact=ssim_exact, csv_header=csv_header,
        keep_extension=keep_extension, subset_labels=_value(subset_labels), plots=not no_plots, overwrite=overwrite,
        allow_task_mismatch=allow_task_mismatch,
    )
    from fprt.runtime.api import describe_result

    typer.echo(describe_result(result))
    if report:
        from fprt.runtime.report import write_report

        typer.echo(write_report(out, labels=labels).describe())


@app.command("report")
def report_cmd(
    out: Optional[str] = typer.Option(None, "--out", "-o", metavar="DIR", help="The --out folder of `fprt score` (summary.json, scores.csv, ...)."),
    old_out: Optional[str] = typer.Argument(None, hidden=True, metavar="OUT"),
    top: int = typer.Option(24, "--top", min=1, help="membership: real images shown at each end of the ranking."),
    per_class: int = typer.Option(4, "--per-class", min=1, help="subsets: generated images shown per predicted subset."),
    neighbours: int = typer.Option(4, "--neighbours", min=1, help="Nearest images shown beside each image."),
    labels: Optional[str] = typer.Option(None, "--labels", metavar="FILE", help="True labels (run.csv format) → ROC, confusion matrix and truth on the page."),
) -> None:
    """Write OUT/report.html (one self-contained page: the evidence behind the decisions) and OUT/evidence.png."""
    from fprt.runtime.report import write_report

    out = _one(out, old_out, "--out")
    typer.echo(write_report(out, top=top, per_class=per_class, neighbours=neighbours, labels=labels).describe())


@app.command("bench")
def bench_cmd(
    model: Optional[str] = typer.Option(None, "--model", "-m", metavar="FILE", help="A training run folder / .safetensors (every format is exported and timed) or an fprt .onnx file."),
    old_model: Optional[str] = typer.Argument(None, hidden=True, metavar="MODEL"),
    data: Optional[str] = typer.Option(None, "--data", "-d", metavar="DIR", help="Dataset folder: timing images, INT8 calibration (training split), accuracy (test/labels.csv)."),
    batch_size: Optional[List[int]] = typer.Option(None, "--batch-size", min=1, show_default="1 8 64", help="Batch size to time; repeat the option for several."),
    backend: Optional[List[Backend]] = typer.Option(None, "--backend", show_default="all", help="Format to time; repeat for several."),
    precision: Optional[List[Precision]] = typer.Option(None, "--precision", show_default="each format's own", help="Precision to time; repeat for several."),
    batch_sizes: Optional[str] = typer.Option(None, "--batch-sizes", hidden=True),
    backends: Optional[str] = typer.Option(None, "--backends", hidden=True),
    precisions: Optional[str] = typer.Option(None, "--precisions", hidden=True),
    device: Device = typer.Option(Device.cpu, "--device", help="Where to time; auto = cuda when torch sees a GPU."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, show_default="physical cores", help="CPU intra-op threads of PyTorch and ONNX Runtime."),
    rounds: Optional[int] = typer.Option(None, "--rounds", min=1, show_default="as many as fit in --seconds", help="Timed rounds per batch size."),
    seconds: float = typer.Option(6.0, "--seconds", min=0.0, help="Time budget per batch size that sets the rounds."),
    n_images: int = typer.Option(64, "--n-images", "--images", min=1, help="How many images are decoded once for timing and embedding drift."),
    no_accuracy: bool = typer.Option(False, "--no-accuracy", help="Skip the accuracy runs on --data's labels."),
    out: str = typer.Option("runs/bench", "--out", "-o", metavar="DIR", help="Folder for bench.json and bench.md."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out."),
) -> None:
    """Time every format × precision × batch size of MODEL and print one table (status, p50/p99 ms, images/s, accuracy, drift, size)."""
    params = dict(locals())
    from fprt.runtime.bench import command_line, run_bench

    run_model = _one(model, old_model, "--model")
    from pathlib import Path

    from fprt.outdir import check_out_path

    check_out_path(Path(out), overwrite=overwrite, data=[Path(data)] if data else [])  # before the timing, not after
    report = run_bench(
        run_model, data=data, batch_sizes=batch_sizes if batch_sizes is not None else (batch_size or "1,8,64"),
        backends=backends if backends is not None else _value(backend),
        precisions=precisions if precisions is not None else _value(precision), device=_device(device), threads=threads,
        rounds=rounds, seconds=seconds, images=n_images, accuracy=not no_accuracy,
        command=command_line(params={k: _value(v) for k, v in params.items()}),
        log=lambda line: typer.echo(line, err=True),
    )
    report.print()
    written = report.write(out, overwrite=overwrite)
    typer.echo(f"wrote {written['json']} and {written['markdown']}")


cache_app = typer.Typer(help="The embedding / engine / extension cache ($FPRT_CACHE_DIR, default ~/.cache/fprt).",
                        no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("info")
def cache_info_cmd(
    cache: Optional[str] = typer.Option(None, "--cache", metavar="DIR", show_default="$FPRT_CACHE_DIR or ~/.cache/fprt", help="The cache root."),
    json_out: bool = typer.Option(False, "--json", help="Print the sizes as JSON."),
) -> None:
    """Show what the cache holds: each part's folder, files and bytes."""
    import json

    from fprt.runtime.cache_admin import cache_info, format_info

    info = cache_info(cache)
    typer.echo(json.dumps(info, indent=2) if json_out else format_info(info))


@cache_app.command("clear")
def cache_clear_cmd(
    part: Optional[List[str]] = typer.Argument(None, metavar="[PART]...", help="Parts to clear (embeddings, engines, bench, ...; default: all)."),
    cache: Optional[str] = typer.Option(None, "--cache", metavar="DIR", show_default="$FPRT_CACHE_DIR or ~/.cache/fprt", help="The cache root."),
) -> None:
    """Delete cached files (all parts, or the named ones); nothing outside the cache root is touched."""
    from fprt.runtime.cache_admin import clear_cache

    freed = clear_cache(cache, parts=part or None)
    typer.echo(f"cleared {freed['files']} files, {freed['bytes'] / 1e6:.1f} MB from {freed['root']}")


# ---------------------------------------------------------------------------------------------- entry point
def _hoist_global_flags(argv: list[str]) -> list[str]:
    """``fprt score ... -v`` works like ``fprt -v score ...``: global flags may come after the command."""
    flags = [a for a in argv if a in GLOBAL_FLAGS]
    rest = [a for a in argv if a not in GLOBAL_FLAGS]
    return flags + rest


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every expected failure ends as one ``fprt: error: …`` line (see the module docstring)."""
    from fprt.errors_cli import run_cli

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("FPRT_DEBUG", "") not in ("", "0")
    raise SystemExit(run_cli(app, _hoist_global_flags(argv), debug=debug))


if __name__ == "__main__":
    main()
