"""Load a released SEMat checkpoint into the matching model, exactly.

The released files (``SEMat_SAM.pth``, ``SEMat_HQ-SAM.pth``, ``SEMat_SAM2.pth``) hold the training
model's state dict, either bare or as ``{'model': sd}``, with PEFT-wrapped image-encoder keys.
Conversion (semat-spec §9–§11):

* SAM / HQ-SAM: strip ``sam_model.``; merge LoRA (both PEFT layouts, ``X.base_layer.weight``
  and the older ``X.weight``); drop ``frozen_mask_decoder.*`` (a training-only copy of the
  original mask decoder that the released files very probably carry; it may also be absent);
* SAM2: :func:`convert_sam2_state_dict` (strip ``sam_model.``, merge LoRA, ignore the memory modules).

Everything else must match the model exactly (:func:`semat.weights.checkpoint.load_exact`): a missing,
unexpected or mis-shaped key fails with its name, unlike the reference's non-strict loader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from semat.models.build import build_semat, check_variant
from semat.runtime import Runtime, select_runtime
from semat.weights.checkpoint import load_exact, merge_lora, read_state_dict
from semat.weights.hub import Progress, resolve

__all__ = ["SAM_IGNORED_PREFIXES", "LoadedModel", "convert_state_dict", "load_semat", "load_semat_state_dict"]

SAM_IGNORED_PREFIXES = ("frozen_mask_decoder.",)


@dataclass
class LoadedModel:
    model: nn.Module
    variant: str
    checkpoint_path: Path | None
    runtime: Runtime


def _convert_sam(sd: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    stripped = {k.removeprefix("sam_model."): v for k, v in sd.items()}
    return merge_lora(stripped), SAM_IGNORED_PREFIXES


def convert_sam2_state_dict(sd: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """Released SEMat_SAM2 state dict -> (model keys, prefixes inference does not read).

    Accepts the raw file (PEFT names under ``sam_model.image_encoder.base_model.model.``, LoRA
    pairs) or one already merged; LoRA is merged when still present and ``sam_model.`` stripped.
    The ignore prefixes are :data:`semat.models.semat_sam2.IGNORE_PREFIXES` (memory modules etc.).
    """
    from semat.models.semat_sam2 import IGNORE_PREFIXES

    if any(".lora_A" in k or ".lora_B" in k or "base_model.model." in k or ".base_layer." in k for k in sd):
        sd = merge_lora(sd)
    return {k.removeprefix("sam_model."): v for k, v in sd.items()}, tuple(IGNORE_PREFIXES)


def convert_state_dict(variant: str, sd: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor],
                                                                               tuple[str, ...]]:
    """Released-format state dict -> (model-shaped state dict, prefixes ignored by design)."""
    if check_variant(variant) == "sam2":
        return convert_sam2_state_dict(sd)
    return _convert_sam(sd)


def load_semat_state_dict(model: nn.Module, variant: str, sd: Mapping[str, torch.Tensor],
                          source: str = "checkpoint") -> None:
    """Convert ``sd`` (released format) and load it into ``model``; fails naming bad keys."""
    converted, ignore = convert_state_dict(variant, sd)
    load_exact(model, converted, source=source, ignore_prefixes=ignore)


def load_semat(variant: str, checkpoint: str | Path | None = None, runtime: Runtime | None = None,
               progress: Progress | None = None) -> LoadedModel:
    """Build the ``variant`` model and load its weights (default: the registry's released file).

    ``checkpoint`` is a path or a weights-registry name; None means ``semat-{variant}``. The model is
    returned in eval mode on ``runtime`` (default: :func:`semat.runtime.select_runtime`).
    """
    check_variant(variant)
    runtime = runtime or select_runtime()
    path = resolve(str(checkpoint) if checkpoint is not None else f"semat-{variant}", progress=progress)
    sd = read_state_dict(path)
    model = _build_for_loading(variant)
    load_semat_state_dict(model, variant, sd, source=str(path))
    del sd
    model = prepare_model(model, runtime)
    return LoadedModel(model=model, variant=variant, checkpoint_path=Path(path), runtime=runtime)


def _build_for_loading(variant: str) -> nn.Module:
    """The model with uninitialised storage where that is known to be safe (every tensor of the
    SAM/HQ-SAM models is a parameter or persistent buffer that the checkpoint overwrites), which
    skips ~330 M random initialisations; otherwise a normal build."""
    if variant == "sam2":
        return build_semat(variant)
    with torch.device("meta"):
        model = build_semat(variant)
    if any(name not in model.state_dict() for name, _ in model.named_buffers()):
        return build_semat(variant)
    return model.to_empty(device="cpu")


def prepare_model(model: nn.Module, runtime: Runtime) -> nn.Module:
    """Move to the runtime's device, eval mode; for bf16/fp16 prepare the reduced-precision forward.

    Reduced precision runs under autocast (:meth:`semat.inference.predictor.SEMatPredictor.forward_frame`);
    :func:`semat.models.precision.reduce_precision` folds the detail decoder's BatchNorms, casts the
    Linear/Conv weights once (autocast then does not re-cast them on every forward; half the
    weight memory) and, on CPU, fuses bias and GELU into oneDNN's epilogues. Normalisation layers,
    embeddings and the detail decoder's head stay fp32. For fp32,
    :func:`semat.models.precision.prepare_fp32` folds the BatchNorms and runs GELUs in place."""
    from semat.models.precision import prepare_fp32, reduce_precision

    model = model.to(device=runtime.device).eval()
    if runtime.dtype in (torch.bfloat16, torch.float16):
        reduce_precision(model, runtime.dtype)
    else:
        prepare_fp32(model)
    return model
