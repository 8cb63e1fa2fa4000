"""Reduced-precision inference: matmul weights cast once at load, everything else as autocast has it.

:func:`cast_matmul_weights` stores the weights (and biases) of every ``Linear`` / ``Conv*`` /
``ConvTranspose*`` layer in bf16 (or fp16), once. The forward then still runs under
``torch.autocast`` (see :meth:`semat.inference.predictor.SEMatPredictor.forward_frame`), which
finds those weights already in the target dtype and skips the per-forward re-cast it would
otherwise do for each of them (about 640 weight copies per SEMat forward, ~1.9 GB of memory
traffic for ViT-L), while it keeps its own choices for everything else: normalisation layers,
position embeddings, tokens and the residual streams stay fp32, attention's softmax statistics
are accumulated in fp32 inside the fused kernel. So the result equals the plain-autocast result
(the same bf16 rounding of the same weights) and the model holds half the weight memory.

Modules whose ``keep_fp32`` attribute is true are left in fp32 (the matting detail decoder's
head, which also runs outside autocast: see :class:`semat.models.detail_decoder.MattingDetailDecoder`).
"""

from __future__ import annotations

import torch
from torch import nn

from semat.models.fusion import fold_batchnorm, fuse_cpu_bf16, gelu_in_place

__all__ = ["MATMUL_LAYERS", "cast_matmul_weights", "fp32_island", "prepare_fp32", "reduce_precision", "weights_dtype"]

MATMUL_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                 nn.ConvTranspose3d)


def cast_matmul_weights(model: nn.Module, dtype: torch.dtype) -> int:
    """Cast the matmul/conv layers of ``model`` to ``dtype`` in place; returns the bytes saved."""
    saved = 0
    for module in model.modules():
        if isinstance(module, MATMUL_LAYERS) and not getattr(module, "keep_fp32", False):
            for p in module.parameters(recurse=False):
                if p.is_floating_point() and p.dtype != dtype:
                    saved += p.numel() * (p.element_size() - torch.empty((), dtype=dtype).element_size())
                    p.data = p.data.to(dtype)
    return saved


def reduce_precision(model: nn.Module, dtype: torch.dtype) -> None:
    """Prepare an eval-mode ``model`` for a ``dtype`` (bf16/fp16) forward under autocast, in place.

    BatchNorms that follow a conv are folded into it (in fp32, before the cast), the matmul/conv
    weights are cast once (:func:`cast_matmul_weights`), and on CPU in bf16 the layers then run
    through oneDNN with bias and GELU in the epilogue (:mod:`semat.models.fusion`)."""
    fold_batchnorm(model)
    cast_matmul_weights(model, dtype)
    fuse_cpu_bf16(model)


def prepare_fp32(model: nn.Module) -> None:
    """Prepare an eval-mode ``model`` for an fp32 forward, in place: BatchNorms that follow a conv
    are folded into it and the GELUs after a conv or an MLP's first layer overwrite that output.

    Both take passes over the detail decoder's full-resolution maps away: HQ-SAM's decoder at 1024²
    3.23 -> 2.89 s (best of 5, interleaved, 2-core AMX CPU). The fold moves the golden fp32 alpha by
    about 1e-6 (tolerance 1e-4; unchanged from the unfolded model's distance), the GELU not at all."""
    fold_batchnorm(model)
    gelu_in_place(model)


def weights_dtype(model: nn.Module) -> torch.dtype:
    """The dtype most of the model's parameters are stored in (by element count)."""
    counts: dict[torch.dtype, int] = {}
    for p in model.parameters():
        counts[p.dtype] = counts.get(p.dtype, 0) + p.numel()
    return max(counts, key=counts.__getitem__) if counts else torch.float32


def fp32_island(x: torch.Tensor):
    """A context that turns autocast off on ``x``'s device (for steps that must run in fp32)."""
    return torch.autocast(device_type=x.device.type, enabled=False)
