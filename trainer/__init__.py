"""fprt.trainer — PyTorch training of Siamese embedding networks, pair scorers and subset classifiers.

    from fprt.trainer import create_model, list_models, train, TrainConfig, load_checkpoint
    from fprt.trainer.heads import apply_head

- ``models``      — the registry (``register_model``, ``create_model``, ``list_models``) and the models:
                    ``siamese_cnn``, ``siamese_resnet18/50``, ``pair_xattn``, ``classifier_resnet18/50``,
                    ``features_<backbone>``
- ``losses``      — ``ContrastiveLoss(distance=...)``; ``distances`` — L2 / cosine / dot product
- ``miners``      — ``HardNegativeMiner``; ``pairs`` — balanced pair sampling, stratified splits
- ``datasets``    — ``ImagePool``, ``TaskData``, ``load_task_data`` over ``fprt.data`` layouts
- ``training``    — ``train(data, out, TrainConfig(...))``: the loop, validation, early stopping, resume
- ``resume``      — ``saved_run(run)``: the data folder and TrainConfig a run folder records (``--resume RUN``)
- ``checkpoint``  — run folders, safetensors checkpoints, ``load_checkpoint`` (never unpickles)
- ``heads``       — scikit-learn heads as arrays, ``apply_head`` in NumPy
- ``plots``       — loss curves, confusion matrix, PCA

Names resolve on first use, so importing ``fprt.trainer`` does not import torch.
"""

from __future__ import annotations

from fprt.lazy import lazy_exports

_EXPORTS = {
    "create_model": "fprt.trainer.models.registry",
    "list_models": "fprt.trainer.models.registry",
    "register_model": "fprt.trainer.models.registry",
    "get_spec": "fprt.trainer.models.registry",
    "train": "fprt.trainer.training",
    "TrainConfig": "fprt.trainer.training",
    "TrainResult": "fprt.trainer.training",
    "saved_run": "fprt.trainer.resume",
    "load_checkpoint": "fprt.trainer.checkpoint",
    "read_meta": "fprt.trainer.checkpoint",
    "apply_head": "fprt.trainer.heads",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
