"""SEMat on SAM ViT-L: the SEMat (SAM) and SEMat (HQ-SAM) models (semat-spec §2.3, §4, §5).

Data flow for a batch of (image, box) pairs in the padded square frame ``S``:

1. normalise the whole padded tensor (padding becomes ``-mean/std``, as the reference does);
2. box mask (rows ``int(y1)..int(y2)-1``, cols ``int(x1)..int(x2)-1``) concatenated to the image,
   patch-embedded by ``condition_layer.patch_embed`` and added to the ViT patch tokens;
3. ViT encoder -> neck features + the 4 global-block outputs;
4. prompt encoder (box, optional points) + matting mask decoder -> SAM/HQ mask and 3 matting logits
   at S/4, upsampled bilinearly to S;
5. matting detail decoder -> alpha.

The box enters the encoder, so every prompt needs its own encoder pass: a batch holds one
image copy per box.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from semat.models.detail_decoder import MattingDetailDecoder
from semat.models.frame import PIXEL_MEAN, PIXEL_STD, box_mask
from semat.models.outputs import SEMatOutput
from semat.models.prompt import SEMatPromptEncoder
from semat.models.sam_decoders import MattingMaskDecoder
from semat.models.sam_encoder import SEMatImageEncoder, _sam_vit

__all__ = ["SEMatSAM"]


class SEMatSAM(nn.Module):
    """SEMat with a SAM ViT encoder; ``hq`` selects the HQ-SAM mask decoder.

    Sub-module names follow the released checkpoint after stripping ``sam_model.``:
    ``image_encoder``, ``prompt_encoder``, ``mask_decoder``, ``condition_layer``, ``matting_decoder``.
    """

    def __init__(self, *, image_encoder: SEMatImageEncoder, prompt_encoder: SEMatPromptEncoder,
                 mask_decoder: MattingMaskDecoder, matting_decoder: MattingDetailDecoder) -> None:
        super().__init__()
        self.img_size = int(image_encoder.img_size)
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        patch = image_encoder.patch_size
        self.condition_layer = nn.ModuleDict({"patch_embed": _sam_vit.PatchEmbed(
            kernel_size=(patch, patch), stride=(patch, patch), in_chans=4, embed_dim=image_encoder.embed_dim)})
        self.matting_decoder = matting_decoder

    @property
    def hq(self) -> bool:
        return bool(self.mask_decoder.hq)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(PIXEL_MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(PIXEL_STD, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        return (images - mean) / std

    def forward(self, images: torch.Tensor, boxes: torch.Tensor,
                points: tuple[torch.Tensor, torch.Tensor] | None = None) -> SEMatOutput:
        """images ``[B,3,S,S]`` in [0,1] (padded, not normalised); boxes ``[B,4]`` xyxy in the S frame;
        points ``(coords [B,K,2], labels [B,K])`` in the S frame or None."""
        s = self.img_size
        if images.shape[-2:] != (s, s) or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape [B,3,{s},{s}], got {tuple(images.shape)}")
        if boxes.shape != (images.shape[0], 4):
            raise ValueError(f"expected boxes of shape [{images.shape[0]},4], got {tuple(boxes.shape)}")
        # Under autocast the image path stays fp32 (autocast casts at each matmul, the residual
        # stream stays fp32); without it, run in the weights' dtype.
        dtype = (torch.float32 if torch.is_autocast_enabled(images.device.type)
                 else self.condition_layer["patch_embed"].proj.weight.dtype)
        boxes = boxes.float()
        x = self.normalize(images.float()).to(dtype)

        condition = torch.cat((x, box_mask(boxes, s).to(dtype)), dim=1)
        offset = self.condition_layer["patch_embed"](condition)
        del condition
        features, interm = self.image_encoder(x, offset)
        del offset

        if points is not None:
            points = (points[0].float(), points[1])
        sparse, dense = self.prompt_encoder(points=points, boxes=boxes, masks=None)
        decoded = self.mask_decoder(features, self.prompt_encoder.get_dense_pe(), sparse, dense, interm[0])

        def upsample(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, size=(s, s), mode="bilinear", align_corners=False)

        matting_logits = upsample(decoded.masks_matting)
        mask_logits = upsample(decoded.masks_hq)
        alpha = self.matting_decoder(x, matting_logits, interm)
        return SEMatOutput(alpha=alpha, matting_logits=matting_logits, mask_logits=mask_logits,
                           image_embedding=features)
