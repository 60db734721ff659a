"""The benchmark suites' shared setup: collection, fixtures, and one JSON of results per suite.

    pytest benchmarks/ --benchmark-only            (make bench; never part of make test)
    pytest benchmarks/bench_decode.py --benchmark-only -s

Conventions every ``benchmarks/bench_*.py`` follows:

- files are named ``bench_*.py`` (collected by the hook below, so ``make test``'s ``tests/`` never sees them);
- each benchmark uses the ``benchmark`` fixture of pytest-benchmark; peers are timed in the same run
  (interleaved where the suite can) and their ratios go into ``benchmark.extra_info``: absolute numbers
  move with the machine's other load, ratios measured side by side do not (much);
- at the end of the session every suite's results are written to ``benchmarks/results/<suite>.json``
  (``$FPRT_BENCH_RESULTS`` to change the folder): machine, load average at start and end, the command,
  and per benchmark its timing statistics and ``extra_info``. Written atomically, only for suites that ran.

Shared fixtures (made once and kept in ``$FPRT_CACHE_DIR/bench-suite``, default ``~/.cache/fprt/bench-suite``,
keyed by their parameters and the fprt version, so later sessions start at once):

- ``demo_subsets``: ``make_demo_data(..., "subsets")`` with its defaults (5 subsets, 256×256 PNGs: 300 real
  + 300 generated training images, 200 test images with labels.csv);
- ``demo_dicom``: 200 CT slices (512×512, int16 HU with rescale and window tags) written with pydicom from
  the demo PNGs;
- ``demo_model``: a Siamese CNN run folder at 256×256. By default a DETERMINISTIC UNTRAINED ``siamese_cnn``
  (seed 0; speed does not depend on the weights) with class centroids from the demo's real training images,
  so that every scoring path works; ``FPRT_BENCH_RUN=/path/to/run`` uses a trained run instead;
- ``machine``: ``fprt.runtime.bench.machine_info()`` plus the load average when the session started.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("FPRT_NO_PROGRESS", "1")

HERE = Path(__file__).resolve().parent
_RESULTS: dict[str, list[dict]] = {}
_START = {"time": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "load": None}


# ---------------------------------------------------------------------------------------------- collection
def pytest_collect_file(file_path: Path, parent):
    """Collect ``bench_*.py`` as test modules (pytest's default pattern is ``test_*.py``)."""
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") and file_path.parent == HERE:
        if parent.session.isinitpath(file_path):
            return None  # named on the command line: pytest collects it itself
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_sessionstart(session):
    try:
        _START["load"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------- results
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield
    fixture = getattr(item, "funcargs", {}).get("benchmark")
    meta = getattr(fixture, "stats", None) if fixture is not None else None
    if meta is None:
        return
    try:
        stats = meta.stats.as_dict()
    except Exception:  # noqa: BLE001 - a benchmark without rounds has no statistics
        stats = {}
    _RESULTS.setdefault(Path(str(item.fspath)).stem, []).append(
        {
            "name": item.name,
            "group": getattr(fixture, "group", None),
            "params": getattr(item, "callspec", None) and {k: _jsonable(v) for k, v in item.callspec.params.items()},
            "stats": {k: stats.get(k) for k in ("min", "max", "mean", "median", "stddev", "rounds", "iterations") if k in stats},
            "extra_info": dict(fixture.extra_info),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        }
    )


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        if hasattr(value, "tolist"):
            return value.tolist()
        if hasattr(value, "item"):
            return value.item()
        if isinstance(value, dict):
            return {str(k): _jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_jsonable(v) for v in value]
        return str(value)


def pytest_sessionfinish(session, exitstatus):
    if not _RESULTS:
        return
    from fprt.io import atomic_write_json
    from fprt.runtime.bench import load_average, machine_info

    folder = Path(os.environ.get("FPRT_BENCH_RESULTS") or HERE / "results")
    folder.mkdir(parents=True, exist_ok=True)
    machine = machine_info("cuda" if _cuda() else "cpu")
    for suite, entries in _RESULTS.items():
        doc = {
            "suite": suite,
            "started": _START["time"],
            "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "machine": machine,
            "load_average": {"start": _START["load"], "end": load_average()},
            "command": " ".join(["pytest"] + sys.argv[1:]),
            "benchmarks": _jsonable(entries),
        }
        path = atomic_write_json(folder / f"{suite}.json", doc)
        print(f"\nbenchmarks: wrote {path}")


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        return False


# ---------------------------------------------------------------------------------------------- fixtures
def suite_cache() -> Path:
    base = os.environ.get("FPRT_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "fprt")
    return Path(base) / "bench-suite"


def _keyed(name: str, params: dict) -> Path:
    from fprt import __version__

    key = hashlib.sha256(json.dumps({"fprt": __version__, **params}, sort_keys=True).encode()).hexdigest()[:12]
    return suite_cache() / f"{name}-{key}"


def _once(folder: Path, make) -> Path:
    """``make(tmp_folder)`` once; the result is renamed into ``folder`` only when complete."""
    import shutil
    import tempfile

    if (folder / ".complete").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        make(tmp)
        (tmp / ".complete").write_text("ok\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


@pytest.fixture(scope="session")
def machine():
    from fprt.runtime.bench import machine_info

    info = machine_info("cuda" if _cuda() else "cpu")
    info["load_at_start"] = _START["load"]
    return info


@pytest.fixture(scope="session")
def demo_subsets() -> Path:
    """The default `fprt make-demo-data --task subsets` dataset (800 PNGs of 256×256), made once."""
    from fprt.demo import make_demo_data

    params = {"task": "subsets", "seed": 0}
    folder = _keyed("demo-subsets", params)
    return _once(folder, lambda tmp: make_demo_data(tmp / "data", "subsets", seed=0, progress=False)) / "data"


def write_ct_dicom(path: Path, hu, *, window=(-600.0, 1500.0)) -> Path:
    """One CT slice as a DICOM file: int16 stored values with rescale slope 1 / intercept -1024 and a lung window."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    stored = (np.asarray(hu, dtype=np.float32) + 1024).round().astype(np.int16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[str(path)])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 1, -1024, "HU"
    ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = stored.astype("<i2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="session")
def demo_dicom(demo_subsets) -> Path:
    """200 DICOM CT slices (512×512 int16) made from the demo's test PNGs: gray 0..255 → HU -1000..+500."""
    import numpy as np
    from PIL import Image

    from fprt.data import decode_image

    pngs = sorted((demo_subsets / "test").rglob("*.png"))[:200]

    def make(tmp: Path) -> None:
        for i, p in enumerate(pngs):
            g = np.asarray(Image.fromarray(decode_image(p)).resize((512, 512), Image.BILINEAR), dtype=np.float32)
            write_ct_dicom(tmp / f"slice_{i:04d}.dcm", -1000.0 + g * (1500.0 / 255.0))

    return _once(_keyed("demo-dicom", {"n": len(pngs), "size": 512}), make)


@pytest.fixture(scope="session")
def demo_model(demo_subsets) -> Path:
    """A Siamese CNN run folder (256×256): ``$FPRT_BENCH_RUN`` when set, else a deterministic untrained one."""
    given = os.environ.get("FPRT_BENCH_RUN")
    if given:
        return Path(given)

    def make(tmp: Path) -> None:
        import numpy as np
        import torch

        from fprt.data import discover, iter_batches
        from fprt.modelmeta import ModelMeta
        from fprt.preprocess import Preprocess
        from fprt.trainer import create_model
        from fprt.trainer.checkpoint import save_weights

        torch.manual_seed(0)
        kwargs = {"input_size": 256, "embedding_dim": 256}
        model = create_model("siamese_cnn", **kwargs).eval()
        pre = Preprocess(size=256)
        layout = discover(demo_subsets)
        centroids = []
        for cls in layout.classes:
            px = np.concatenate([b.pixels for b in iter_batches(layout.real[cls], pre, 64)])
            with torch.inference_mode():
                centroids.append(model(torch.from_numpy(pre.normalize_uint8(px))).mean(0).tolist())
        meta = ModelMeta(model="siamese_cnn", kind="embedding", task="subsets", preprocess=pre, class_names=list(layout.classes),
                         model_kwargs=kwargs, metric="l2", embedding_dim=256, centroids=centroids,
                         extra={"note": "deterministic untrained siamese_cnn (seed 0) made by benchmarks/conftest.py"})
        save_weights(tmp / "model.safetensors", model, meta)

    return _once(_keyed("siamese-untrained", {"seed": 0, "size": 256, "dim": 256}), make)
