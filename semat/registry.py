"""One registry of the product's models: each entry is a name, a family, a label, its weights
and how to build its predictor (released weights or a tiny random-weight test model).

It feeds the CLI's ``--variant`` / ``--detector`` choices, the app's model selector, preloading
and evaluation; adding a variant is one :class:`ModelSpec`. :func:`load` is the only place that
decides between released and tiny test models (``SEMAT_TEST_MODELS=tiny``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from semat.errors import InputError
from semat.settings import Settings

__all__ = ["MODELS", "ModelSpec", "default", "get", "label", "load", "names"]

Family = str  # "semat" | "human" | "detector"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: Family
    label: str
    weights: str  # weights-registry name (semat.weights.hub.REGISTRY)
    default: bool = False
    description: str = ""


MODELS: dict[str, ModelSpec] = {s.name: s for s in [
    ModelSpec("hq-sam", "semat", "SEMat HQ-SAM", "semat-hq-sam", default=True,
              description="SEMat on HQ-SAM ViT-L (the paper's best; default)"),
    ModelSpec("sam", "semat", "SEMat SAM", "semat-sam", description="SEMat on SAM ViT-L"),
    ModelSpec("sam2", "semat", "SEMat SAM2", "semat-sam2", description="SEMat on SAM2 Hiera-L (fastest)"),
    ModelSpec("sghm", "human", "SGHM", "sghm", default=True,
              description="SGHM ResNet-50 automatic human matting"),
    ModelSpec("mm-grounding-dino-tiny", "detector", "MM-Grounding-DINO-T", "mm-grounding-dino-tiny", default=True,
              description="MM-Grounding-DINO Swin-T (OpenMMLab), text → boxes; 50.6 COCO / 40.5 LVIS-minival AP"),
    ModelSpec("grounding-dino-tiny", "detector", "GroundingDINO-T", "grounding-dino-tiny",
              description="GroundingDINO Swin-T, text → boxes; 48.4 COCO / 28.8 LVIS-minival AP"),
    ModelSpec("grounding-dino-base", "detector", "GroundingDINO-B", "grounding-dino-base",
              description="GroundingDINO Swin-B, text → boxes"),
    ModelSpec("llmdet-tiny", "detector", "LLMDet-T", "llmdet-tiny",
              description="LLMDet Swin-T (MM-Grounding-DINO architecture), text → boxes; 44.7 LVIS-minival AP"),
]}


def names(family: Family) -> tuple[str, ...]:
    """Registered names of one family, default first."""
    specs = [s for s in MODELS.values() if s.family == family]
    return tuple(s.name for s in sorted(specs, key=lambda s: not s.default))


def default(family: Family) -> str:
    return names(family)[0]


def get(name: str, family: Family | None = None) -> ModelSpec:
    spec = MODELS.get(str(name).strip().lower())
    if spec is None or (family is not None and spec.family != family):
        choices = ", ".join(names(family) if family else MODELS)
        raise InputError(f"unknown model {str(name)[:40]!r}; choose one of {choices}")
    return spec


def label(name: str) -> str:
    return get(name).label


def from_label(text: str | None, family: Family = "semat") -> str:
    """A selector label ("SEMat SAM2") or a name ("sam2") → the registered name (None: the default)."""
    if not text or not str(text).strip():
        return default(family)
    for spec in MODELS.values():
        if spec.family == family and str(text).strip() in (spec.label, spec.name):
            return spec.name
    return get(text, family).name


def load(name: str, *, settings: Settings | None = None, checkpoint: str | None = None, device: str = "auto",
         dtype: Any = None, progress: Callable[[str], None] | None = None) -> Any:
    """The predictor for a registered model: ``SEMatPredictor``, ``HumanPredictor`` or ``TextDetector``.

    Under ``SEMAT_TEST_MODELS=tiny`` every model is a tiny random-weight stand-in (then a
    ``checkpoint`` is refused rather than silently ignored). ``name`` may also be a local
    detector folder.
    """
    settings = settings or Settings.from_env()
    spec = MODELS.get(str(name).strip().lower())
    if settings.test_models:
        if checkpoint is not None:
            raise InputError("SEMAT_TEST_MODELS=tiny uses tiny random-weight models; --checkpoint cannot be "
                             "combined with it (unset SEMAT_TEST_MODELS to use the file)")
        from semat.runtime import select_runtime

        # on the device a real model would use (ZeroGPU packs what is placed there at import)
        return _tiny(spec or get(name), select_runtime(device, "float32"), settings)
    if spec is None:  # a local transformers folder for the detector
        from semat.inference.detect import TextDetector

        return TextDetector.from_pretrained(str(name), device=device, dtype=dtype, progress=progress,
                                            shortest_side=settings.detector_size or None)
    if spec.family == "semat":
        from semat.inference.predictor import SEMatPredictor

        return SEMatPredictor.from_pretrained(spec.name, checkpoint=checkpoint, device=device, dtype=dtype,
                                              progress=progress)
    if spec.family == "human":
        from semat.inference.sghm import HumanPredictor
        from semat.runtime import select_runtime

        return HumanPredictor.from_pretrained(checkpoint, runtime=select_runtime(device, dtype),
                                              progress=progress)
    from semat.inference.detect import TextDetector

    return TextDetector.from_pretrained(checkpoint or spec.name, device=device, dtype=dtype, progress=progress,
                                        shortest_side=settings.detector_size or None)


def _tiny(spec: ModelSpec, runtime: Any, settings: Settings) -> Any:
    if spec.family == "semat":
        from semat.inference.predictor import SEMatPredictor

        return SEMatPredictor.tiny(spec.name, device=str(runtime.device))
    if spec.family == "human":
        from semat.inference.sghm import HumanPredictor

        return HumanPredictor.tiny(device=str(runtime.device))
    from semat.inference.detect import TextDetector

    return TextDetector.tiny(runtime=runtime, name=spec.name, shortest_side=settings.detector_size or None)
