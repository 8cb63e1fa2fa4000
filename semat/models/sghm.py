"""SGHM (Semantic Guided Human Matting, Chen et al., ACCV 2022) as plain torch modules.

Clean-room implementation of the inference network from ``shared/reference/sghm-spec.md``:
a ResNet-50 encoder (layer4 dilated) on the quarter-size image, ASPP (rates 3/6/9), a small
segmentation decoder that gives the coarse person probability, five attentive shortcut modules
(two 3x3 convs + ECA) fed with ``[feature, binary mask]``, and the matting refiner that climbs
from 1/64 to full resolution and emits alpha logits at 1/8, 1/4 and 1/1.

Module names equal the official checkpoint's key names once ``module.`` is stripped and each
spectral-normalised triple ``P.module.weight_{bar,u,v}`` is folded into a plain ``P.weight``
(see :func:`fold_spectral_norm`). There is no torchvision import anywhere.

For inference, :meth:`SGHM.fuse_` folds every BatchNorm that directly follows a conv into that
conv, turns the stride-1 transposed conv into a normal conv, keeps only channel 0 of the
segmentation head and switches to channels-last memory. The forward is split into stages
(:meth:`SGHM.coarse`, :meth:`SGHM.shortcut0`, :meth:`SGHM.fine`) so a pipeline can skip the
full-resolution branch where the fusion does not use it; :meth:`SGHM.forward` runs everything,
as the reference does.

The parts live one concept a file: :mod:`~semat.models.sghm_config`, :mod:`~semat.models.sghm_encoder`
(ResNet), :mod:`~semat.models.sghm_decoder` (ASPP, segmentation), :mod:`~semat.models.sghm_refiner`
(shortcuts, refiner), :mod:`~semat.models.sghm_fuse` (BN folding) and
:mod:`~semat.models.sghm_checkpoint` (spectral-norm keys); this module is the whole network
and re-exports their public names.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semat.models.sghm_checkpoint import SN_SUFFIXES, fold_spectral_norm
from semat.models.sghm_config import SGHMConfig
from semat.models.sghm_decoder import ASPP, ASPPPooling, SegDecoder
from semat.models.sghm_encoder import Bottleneck, ResNetEncoder
from semat.models.sghm_fuse import fold_batch_norms
from semat.models.sghm_refiner import ECA, MattingRefiner, UpBlock, make_shortcut

__all__ = [
    "ASPP", "ECA", "SGHM", "SN_SUFFIXES", "ASPPPooling", "Bottleneck", "Coarse", "MattingRefiner", "ResNetEncoder",
    "SGHMConfig", "SegDecoder", "UpBlock", "fold_spectral_norm", "logits_to_alpha", "make_shortcut",
]


@dataclass
class Coarse:
    """Everything up to the OS4 head, at network resolution H x W (see :meth:`SGHM.coarse`)."""

    segment: Tensor  # [N,1,H,W] person probability
    mask: Tensor  # [N,1,H,W] binary mask (segment > 0.5) as float
    feat4: Tensor  # [N,C,H/4,W/4] refiner features after layer5 + A1
    logits_os8: Tensor  # [N,1,H/8,W/8]
    logits_os4: Tensor  # [N,1,H/4,W/4]


def logits_to_alpha(logits: Tensor, size: tuple[int, int] | None = None) -> Tensor:
    if size is not None and tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    return (torch.tanh(logits) + 1) / 2


class SGHM(nn.Module):
    def __init__(self, cfg: SGHMConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or SGHMConfig.full()
        self.cfg = cfg
        exp = Bottleneck.expansion
        self.backbone = ResNetEncoder(cfg)
        self.aspp = ASPP(cfg.planes[3] * exp, cfg.aspp_rates, cfg.aspp_out)
        self.decoder = SegDecoder((cfg.aspp_out, *cfg.decoder),
                                  (cfg.planes[1] * exp, cfg.planes[0] * exp, cfg.stem, 3))
        feats = [3, 3, cfg.stem, cfg.planes[0] * exp, cfg.planes[1] * exp]
        self.shortcut = nn.ModuleList(make_shortcut(f + 1, c) for f, c in zip(feats, cfg.shortcut))
        self.refine = MattingRefiner(cfg)
        self.fused = False
        self.channels_last = False

    @staticmethod
    def check_size(h: int, w: int) -> None:
        if h % 64 or w % 64 or h < 64 or w < 64:
            raise ValueError(f"SGHM needs a network input whose sides are positive multiples of 64, got {h}x{w}")

    def coarse(self, image: Tensor) -> Coarse:
        """Encoder, ASPP, segmentation and the refiner up to 1/4 scale. ``image`` is [N,3,H,W] in [0,1]."""
        h, w = image.shape[-2:]
        self.check_size(h, w)
        quarter = F.interpolate(image, scale_factor=0.25, mode="bilinear", align_corners=False,
                                recompute_scale_factor=True)
        x4, x3, x2, x1, x0 = self.backbone(quarter)
        x4 = self.aspp(x4)
        seg_logit = self.decoder(x4, x3, x2, x1, x0)[:, :1]
        # The probability in fp32 whatever the model dtype: bf16 rounds values near 0.5 to steps of
        # 1/256, and it is both the segment output and the mask's 0.5 threshold (cheap: one channel).
        segment = F.interpolate(torch.sigmoid(seg_logit.float()), scale_factor=4.0, mode="bilinear",
                                align_corners=False, recompute_scale_factor=True)
        mask = (segment > 0.5).to(image.dtype)
        mq = F.interpolate(mask, scale_factor=0.25, mode="bilinear", align_corners=False,
                           recompute_scale_factor=True)
        a1 = self.shortcut[1](torch.cat([x0, mq], dim=1))
        a2 = self.shortcut[2](torch.cat([x1, self._down(mq, 0.5)], dim=1))
        a3 = self.shortcut[3](torch.cat([x2, self._down(mq, 0.25)], dim=1))
        a4 = self.shortcut[4](torch.cat([x3, self._down(mq, 0.125)], dim=1))
        feat4, os8, os4 = self.refine.coarse(x4, a4, a3, a2, a1)
        return Coarse(segment, mask, feat4, os8, os4)

    @staticmethod
    def _down(x: Tensor, s: float) -> Tensor:
        return F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)

    def shortcut0_pre(self, image: Tensor, mask: Tensor) -> Tensor:
        """Shortcut 0 before its ECA (a local op: row bands with a 2-pixel halo give the same result)."""
        return self.shortcut[0][:6](torch.cat([image, mask], dim=1))

    def shortcut0(self, image: Tensor, mask: Tensor, band: int = 0) -> Tensor:
        """A0 = shortcut 0 on [image, mask] at full resolution, optionally computed in row bands."""
        h = image.shape[-2]
        if band <= 0 or band >= h:
            pre = self.shortcut0_pre(image, mask)
        else:
            pre = image.new_empty((image.shape[0], self.cfg.shortcut[0], h, image.shape[-1]))
            pre = pre.contiguous(memory_format=torch.channels_last) if self.channels_last else pre
            halo = 2
            for r0 in range(0, h, band):
                r1 = min(h, r0 + band)
                s0, s1 = max(0, r0 - halo), min(h, r1 + halo)
                out = self.shortcut0_pre(image[:, :, s0:s1], mask[:, :, s0:s1])
                pre[:, :, r0:r1] = out[:, :, r0 - s0:r1 - s0]
        eca: ECA = self.shortcut[0][6]
        return pre.mul_(eca.scale(pre.mean(dim=(2, 3))))

    def fine(self, feat4: Tensor, a0: Tensor) -> Tensor:
        return self.refine.fine(feat4, a0)

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        """Full reference forward: segment, alpha_os1/4/8 at H x W and the three raw logit maps."""
        c = self.coarse(image)
        a0 = self.shortcut0(image, c.mask)
        os1 = self.fine(c.feat4, a0)
        size = tuple(image.shape[-2:])
        return {"segment": c.segment, "alpha_os1": logits_to_alpha(os1), "alpha_os4": logits_to_alpha(c.logits_os4, size),
                "alpha_os8": logits_to_alpha(c.logits_os8, size), "logits_os1": os1,
                "logits_os4": c.logits_os4, "logits_os8": c.logits_os8}

    @torch.no_grad()
    def fuse_(self, channels_last: bool = True) -> SGHM:
        """Fold BN into the preceding conv (where BN directly follows it), make the stride-1
        transposed conv a plain conv, keep only the used segmentation channel, and (by default)
        go channels-last. Channels-last pays off at full size; for tiny models it is slower,
        because PyTorch sends small batch-1 3x3 convs to a slow non-oneDNN kernel.

        The result is numerically equivalent up to float rounding; it no longer loads checkpoints.
        """
        if self.fused:
            return self
        fold_batch_norms(self)
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self.channels_last = channels_last
        self.fused = True
        return self
