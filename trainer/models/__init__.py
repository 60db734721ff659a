"""fprt's trainable models, one registry (``create_model(name, **kw)``, as in timm).

Importing this package registers every built-in model: ``siamese_cnn``, ``siamese_resnet18``,
``siamese_resnet50``, ``pair_xattn``, ``classifier_resnet18``, ``classifier_resnet50`` and
``features_<backbone>`` (resnet18, resnet50, densenet121, mobilenet_v2, efficientnet_b0).
"""

from fprt.trainer.models.registry import (
    FAMILIES,
    ModelSpec,
    create_model,
    get_spec,
    list_models,
    register_model,
)
from fprt.trainer.models import classifier, features, pair_xattn, siamese  # noqa: F401,E402  (registers)

__all__ = ["FAMILIES", "ModelSpec", "create_model", "get_spec", "list_models", "register_model"]
