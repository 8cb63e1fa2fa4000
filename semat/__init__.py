"""SEMat Space: natural image matting from words, boxes or clicks (SEMat) and automatic human
matting (SGHM).

The public API::

    from semat import MattingPipeline, Prompt, default_pipeline, load_image
    pipe = default_pipeline()                      # released weights, loaded on first use
    result = pipe.matte_text(load_image("cat.jpg").rgb, "cat")
    result.alpha                                   # HxW float32 union alpha at the image's size

    from semat import SEMatPredictor               # the model alone, like SAM's predictor
    pred = SEMatPredictor.from_pretrained("hq-sam")
    [obj] = pred.predict(image, [[x1, y1, x2, y2]])

Heavy modules (torch, transformers) load only when first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from semat.errors import InputError, ModelError, SematError

__version__ = "0.2.0"

_LAZY = {
    "MattingPipeline": "semat.pipeline", "Prompt": "semat.pipeline", "MatteResult": "semat.pipeline",
    "default_pipeline": "semat.pipeline", "SEMatPredictor": "semat.inference.predictor",
    "HumanPredictor": "semat.inference.sghm", "TextDetector": "semat.inference.detect",
    "load_image": "semat.io.images", "composite": "semat.compose", "build_semat": "semat.models.build",
    "registry": "semat.registry",
}

__all__ = ["InputError", "ModelError", "SematError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = import_module(_LAZY[name])
        return module if name == "registry" else getattr(module, name)
    raise AttributeError(f"module 'semat' has no attribute {name!r}")
