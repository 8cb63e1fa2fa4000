"""SEMat (SAM2): SAM 2.0 Hiera-L with box-mask injection, a matting-token mask decoder and the
matting detail decoder (semat-spec §6, §7, §10).

Public API (used by :mod:`semat.models.build`; :mod:`semat.weights.convert` maps the released
keys onto it, ignoring :data:`IGNORE_PREFIXES`):

* :class:`SEMatSAM2` — ``forward(images [B,3,S,S] in [0,1], boxes [B,4] xyxy in the S frame,
  points=None) -> SEMatOutput``; normalisation happens inside (over the whole padded tensor).
* :func:`build_semat_sam2` ``(tiny=False)`` — the released configuration (S = 1024) or a tiny one
  (S = 256, random weights) for fast tests.
* :func:`convert_state_dict` ``(sd) -> (sd, ignore_prefixes)`` — released checkpoint keys ->
  this model's keys, plus the prefixes of checkpoint entries that inference does not use.

Module names equal the released checkpoint's keys with ``sam_model.`` removed and LoRA merged, so
the conversion is a prefix strip; everything else is an explicit ignore list.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from sam2.modeling.backbones.image_encoder import ImageEncoder
from sam2.modeling.position_encoding import PositionEmbeddingSine
from sam2.modeling.sam.prompt_encoder import PromptEncoder
from sam2.modeling.sam.transformer import TwoWayTransformer
from torch import nn

from semat.models.detail_decoder import MattingDetailDecoder
from semat.models.frame import PIXEL_MEAN, PIXEL_STD, box_mask, exact_dtype
from semat.models.outputs import SEMatOutput
from semat.models.sam2_decoder import MaskDecoderMattingToken
from semat.models.sam2_encoder import FpnNeckNoPos, HieraBBoxMask

__all__ = ["IGNORE_PREFIXES", "SAM2Config", "SEMatSAM2", "build_semat_sam2"]

# Checkpoint entries (after ``sam_model.`` stripping and LoRA merging) that inference never reads:
# SAM2's video-memory modules, the prompt encoder's mask-input branch, the decoder's IoU and
# object-score heads and multimask hypernetworks (SEMat reads mask token 0 only), and the matting
# decoder's ViT aggregation, which the SAM2 form builds but never calls (semat-spec §10).
IGNORE_PREFIXES: tuple[str, ...] = (
    "memory_attention.",
    "memory_encoder.",
    "maskmem_tpos_enc",
    "no_mem_pos_enc",
    "no_obj_ptr",
    "mask_downsample.",
    "obj_ptr_proj.",
    "sam_prompt_encoder.mask_downscaling.",
    "sam_mask_decoder.iou_prediction_head.",
    "sam_mask_decoder.pred_obj_score_head.",
    "sam_mask_decoder.output_hypernetworks_mlps.1.",
    "sam_mask_decoder.output_hypernetworks_mlps.2.",
    "sam_mask_decoder.output_hypernetworks_mlps.3.",
    "matting_decoder.vit_feat_aggregation.",
)


@dataclass(frozen=True)
class SAM2Config:
    """Hyper-parameters; the defaults are the released SAM 2.0 Hiera-L configuration."""

    img_size: int = 1024
    embed_dim: int = 144
    num_heads: int = 2
    stages: tuple[int, ...] = (2, 6, 36, 4)
    global_att_blocks: tuple[int, ...] = (23, 33, 43)
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (7, 7)
    window_spec: tuple[int, ...] = (8, 4, 16, 8)
    d_model: int = 256
    fpn_top_down_levels: tuple[int, ...] = (2, 3)
    decoder_depth: int = 2
    decoder_heads: int = 8
    decoder_mlp_dim: int = 2048
    mask_in_chans: int = 16
    detail_base: int = 32


TINY_CONFIG = SAM2Config(
    img_size=256, embed_dim=16, num_heads=1, stages=(1, 1, 2, 1), global_att_blocks=(3,),
    window_pos_embed_bkg_spatial_size=(4, 4), window_spec=(8, 4, 4, 4), d_model=64,
    decoder_depth=2, decoder_heads=2, decoder_mlp_dim=128, detail_base=8,
)


class SEMatSAM2(nn.Module):
    """SEMat (SAM2). Attribute names mirror the checkpoint (minus ``sam_model.``)."""

    def __init__(self, config: SAM2Config = SAM2Config()) -> None:
        super().__init__()
        c = config
        if c.img_size % 16:
            raise ValueError(f"img_size must be a multiple of 16, got {c.img_size}")
        self.config = c
        self.img_size = c.img_size
        trunk = HieraBBoxMask(
            embed_dim=c.embed_dim, num_heads=c.num_heads, stages=c.stages,
            global_att_blocks=c.global_att_blocks,
            window_pos_embed_bkg_spatial_size=c.window_pos_embed_bkg_spatial_size,
            window_spec=c.window_spec)
        neck = FpnNeckNoPos(
            position_encoding=PositionEmbeddingSine(num_pos_feats=c.d_model, warmup_cache=False),
            d_model=c.d_model, backbone_channel_list=list(trunk.channel_list),
            fpn_top_down_levels=list(c.fpn_top_down_levels), fpn_interp_model="nearest")
        self.image_encoder = ImageEncoder(trunk=trunk, neck=neck, scalp=1)

        grid = c.img_size // 16
        self.sam_prompt_encoder = PromptEncoder(
            embed_dim=c.d_model, image_embedding_size=(grid, grid),
            input_image_size=(c.img_size, c.img_size), mask_in_chans=c.mask_in_chans)
        del self.sam_prompt_encoder.mask_downscaling  # mask prompts are not part of SEMat
        self.sam_mask_decoder = MaskDecoderMattingToken(
            transformer_dim=c.d_model,
            transformer=TwoWayTransformer(depth=c.decoder_depth, embedding_dim=c.d_model,
                                          mlp_dim=c.decoder_mlp_dim, num_heads=c.decoder_heads),
            num_multimask_outputs=3, use_high_res_features=True, pred_obj_scores=True,
            pred_obj_scores_mlp=True)
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, c.d_model))
        self.matting_decoder = MattingDetailDecoder(
            sam2_multi_scale=True, base=c.detail_base, embed_dim=c.d_model,
            high_res_dims=(c.d_model // 8, c.d_model // 4))
        del self.matting_decoder.vit_feat_aggregation  # built by the reference, never called
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), persistent=False)

    def _check_inputs(self, images: torch.Tensor, boxes: torch.Tensor,
                      points: tuple[torch.Tensor, torch.Tensor] | None) -> None:
        s = self.img_size
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != s or images.shape[3] != s:
            raise ValueError(f"images must have shape [B,3,{s},{s}], got {tuple(images.shape)}")
        b = images.shape[0]
        if boxes.shape != (b, 4):
            raise ValueError(f"boxes must have shape [{b},4], got {tuple(boxes.shape)}")
        if points is not None:
            coords, labels = points
            if coords.ndim != 3 or coords.shape[0] != b or coords.shape[2] != 2:
                raise ValueError(f"point coords must have shape [{b},K,2], got {tuple(coords.shape)}")
            if labels.shape != coords.shape[:2]:
                raise ValueError(f"point labels must have shape {tuple(coords.shape[:2])}, "
                                 f"got {tuple(labels.shape)}")

    def encode_prompts(self, boxes: torch.Tensor, points: tuple[torch.Tensor, torch.Tensor] | None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse/dense prompt embeddings the way SEMat's SAM2 predictor builds them: the box as two
        points labelled 2 and 3, extra points after the box corners (sam2's predictor order),
        ``boxes=None`` so sam2 appends its padding point. Coordinates stay float64 (where the device
        has it) until the prompt encoder divides by S, as in the reference (its box is float64)."""
        b = boxes.shape[0]
        dt = exact_dtype(boxes.device)
        coords = boxes.to(dt).reshape(b, 2, 2)
        labels = torch.tensor([[2, 3]], dtype=torch.int32, device=boxes.device).expand(b, 2)
        if points is not None:
            coords = torch.cat((coords, points[0].to(device=boxes.device, dtype=dt)), 1)
            labels = torch.cat((labels, points[1].to(device=boxes.device, dtype=torch.int32)), 1)
        return self.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)

    def forward(self, images: torch.Tensor, boxes: torch.Tensor,
                points: tuple[torch.Tensor, torch.Tensor] | None = None) -> SEMatOutput:
        self._check_inputs(images, boxes, points)
        s = self.img_size
        x = (images - self.pixel_mean) / self.pixel_std
        mask = box_mask(boxes, s).to(device=x.device, dtype=x.dtype)

        fpn = self.image_encoder((x, mask))["backbone_fpn"]  # [S/4, S/8, S/16] levels, d_model ch.
        dec = self.sam_mask_decoder
        feat_s0 = dec.conv_s0(fpn[0])
        feat_s1 = dec.conv_s1(fpn[1])
        image_embed = fpn[2] + self.no_mem_embed.view(1, -1, 1, 1)
        del fpn

        sparse, dense = self.encode_prompts(boxes, points)
        sam_logits, matting_logits = dec(
            image_embeddings=image_embed, image_pe=self.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse.to(x.dtype), dense_prompt_embeddings=dense,
            high_res_features=[feat_s0, feat_s1])
        mask_logits = F.interpolate(sam_logits, size=(s, s), mode="bilinear", align_corners=False)
        matting_logits = F.interpolate(matting_logits, size=(s, s), mode="bilinear", align_corners=False)
        alpha = self.matting_decoder(
            x, matting_logits, {"image_embed": image_embed, "high_res_feats": [feat_s0, feat_s1]})
        return SEMatOutput(alpha=alpha, matting_logits=matting_logits, mask_logits=mask_logits,
                           image_embedding=image_embed)


def build_semat_sam2(tiny: bool = False) -> SEMatSAM2:
    """The released SEMat (SAM2) architecture (random weights, eval mode), or a tiny one (S=256)."""
    return SEMatSAM2(TINY_CONFIG if tiny else SAM2Config()).eval()
