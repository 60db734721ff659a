"""``fprt train --resume RUN``: the arguments a run was started with, read back from its ``config.json``.

``saved_run(run)`` returns the training data folder and the ``TrainConfig`` recorded in ``RUN/config.json``
(``{"train": {...}, "data": {"root": ...}}``); the CLI overrides only the options given explicitly on the
command line and calls ``train(data, run, config, resume=True)``. Nothing needs typing again.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from fprt.errors import ModelError


def saved_run(run: str | Path):
    """``(data folder, TrainConfig)`` of the run folder ``run``, as its config.json records them."""
    from fprt.trainer.checkpoint import RunFolder
    from fprt.trainer.training import TrainConfig, saved_config

    folder = RunFolder(run)
    if not Path(run).is_dir():
        raise ModelError(f"--resume {run}: no such run folder")
    config = saved_config(folder)
    train, data = config["train"], config.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("root"), str):
        raise ModelError(f"{folder.config}: not an fprt training config (needs objects 'train' and 'data' with 'data.root')")
    names = {f.name for f in fields(TrainConfig)}
    try:
        config_obj = TrainConfig(**{k: v for k, v in train.items() if k in names})
    except TypeError as exc:
        raise ModelError(f"{folder.config}: 'train' does not fit this fprt's TrainConfig ({exc})") from exc
    return Path(data["root"]), config_obj
