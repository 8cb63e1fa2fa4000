"""Inference folding for SGHM: every BatchNorm that directly follows a conv goes into that conv,
the stride-1 transposed conv becomes a plain conv, and only the used segmentation channel stays.

The result is numerically equivalent up to float rounding; it no longer loads checkpoints.
Called through :meth:`semat.models.sghm.SGHM.fuse_`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from semat.models.sghm_decoder import ASPPPooling

if TYPE_CHECKING:
    from semat.models.sghm import SGHM

__all__ = ["fold_batch_norms"]


@torch.no_grad()
def fold_batch_norms(model: SGHM) -> None:
    """Fold ``model``'s BatchNorms into its convs in place (the model is put in eval mode)."""
    model.eval()
    bb = model.backbone
    _fold(bb, "conv1", "bn1")
    for layer in (bb.layer1, bb.layer2, bb.layer3, bb.layer4):
        for blk in layer:
            for i in (1, 2, 3):
                _fold(blk, f"conv{i}", f"bn{i}")
            if blk.downsample is not None:
                _fold(blk.downsample, "0", "1")
    for branch in model.aspp.convs:
        _fold(branch, "1", "2") if isinstance(branch, ASPPPooling) else _fold(branch, "0", "1")
    _fold(model.aspp.project, "0", "1")
    dec = model.decoder
    for i in (1, 2, 3):
        _fold(dec, f"conv{i}", f"bn{i}")
    conv4 = nn.Conv2d(dec.conv4.in_channels, 1, 3, padding=1, bias=True)
    conv4.weight.copy_(dec.conv4.weight[:1])
    conv4.bias.copy_(dec.conv4.bias[:1])
    dec.conv4 = conv4
    r = model.refine
    for name in ("layer2", "layer3", "layer4", "layer5", "layer6"):
        for blk in getattr(r, name):
            _fold(blk, "conv1", "bn1")
            _fold(blk, "conv2", "bn2")
            if blk.upsample is not None:
                _fold(blk.upsample, "1", "2")
    _fold(r, "conv1", "bn1")
    r.conv2 = _transposed_s1_to_conv(r.conv2)
    _fold(r, "conv2", "bn2")
    for head in (r.refine_OS1, r.refine_OS4, r.refine_OS8):
        _fold(head, "0", "1")


def _transposed_s1_to_conv(ct: nn.ConvTranspose2d) -> nn.Conv2d:
    k = ct.kernel_size[0]
    conv = nn.Conv2d(ct.in_channels, ct.out_channels, k, padding=k - 1 - ct.padding[0], bias=ct.bias is not None)
    conv.weight.copy_(ct.weight.transpose(0, 1).flip(2, 3))
    if ct.bias is not None:
        conv.bias.copy_(ct.bias)
    return conv


def _fold(parent: nn.Module, conv_name: str, bn_name: str) -> None:
    conv = getattr(parent, conv_name) if not conv_name.isdigit() else parent[int(conv_name)]
    bn = getattr(parent, bn_name) if not bn_name.isdigit() else parent[int(bn_name)]
    assert isinstance(bn, nn.BatchNorm2d)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    if isinstance(conv, nn.ConvTranspose2d):
        conv.weight.mul_(scale.view(1, -1, 1, 1))
    else:
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
    bias = shift if conv.bias is None else conv.bias * scale + shift
    conv.bias = nn.Parameter(bias.clone())
    if bn_name.isdigit():
        parent[int(bn_name)] = nn.Identity()
    else:
        setattr(parent, bn_name, nn.Identity())
