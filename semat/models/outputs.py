"""The output contract shared by every SEMat variant."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SEMatOutput:
    """What one SEMat forward returns, all in the padded square working frame (``img_size``).

    alpha:            [B,1,S,S] in [0,1] (after the matting head's sigmoid)
    matting_logits:   [B,3,S,S] the 3 matting-token logit maps upsampled to S (HQ: incl. +HQ residual)
    mask_logits:      [B,1,S,S] the segmentation mask logits shown as "mask" (SAM: best-IoU SAM mask;
                      HQ-SAM: HQ-token mask; SAM2: mask token 0)
    image_embedding:  [B,256,S/16,S/16] encoder output fed to the mask decoder
    """

    alpha: torch.Tensor
    matting_logits: torch.Tensor
    mask_logits: torch.Tensor
    image_embedding: torch.Tensor
