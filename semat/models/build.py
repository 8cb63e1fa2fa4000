"""Builder registry for the three SEMat variants (random weights; see :mod:`semat.weights.convert`).

``build_semat(variant, tiny=False)``: ``tiny`` gives a small working size (256) and narrow
widths, same structure and code paths, for fast tests and ``SEMAT_TEST_MODELS=tiny``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

__all__ = ["SAM_CONFIGS", "VARIANTS", "SAMConfig", "build_semat", "build_semat_sam"]

@dataclass(frozen=True)
class SAMConfig:
    """Hyper-parameters of a SEMat model on a SAM ViT (released: ViT-L at 1024)."""

    img_size: int = 1024
    patch_size: int = 16
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    window_size: int = 14
    global_attn_indexes: tuple[int, ...] = (5, 11, 17, 23)
    prompt_dim: int = 256        # neck output = prompt/transformer width
    transformer_mlp_dim: int = 2048
    transformer_heads: int = 8
    mask_in_chans: int = 16
    matting_tokens: int = 3
    detail_tiny: bool = False


SAM_CONFIGS = {
    "vit_l": SAMConfig(),
    # 16x16 tokens; windows of 6 (so window padding is exercised); 4 global blocks as in ViT-L.
    "tiny": SAMConfig(img_size=256, embed_dim=64, depth=6, num_heads=2, window_size=6,
                      global_attn_indexes=(1, 2, 4, 5), prompt_dim=32, transformer_mlp_dim=64,
                      transformer_heads=2, detail_tiny=True),
}


def build_semat_sam(hq: bool, tiny: bool = False, config: SAMConfig | None = None) -> nn.Module:
    from semat.models.detail_decoder import MattingDetailDecoder
    from semat.models.prompt import SEMatPromptEncoder
    from semat.models.sam_decoders import MattingMaskDecoder, SDPATwoWayTransformer
    from semat.models.sam_encoder import SEMatImageEncoder
    from semat.models.semat_sam import SEMatSAM

    c = config or SAM_CONFIGS["tiny" if tiny else "vit_l"]
    grid = c.img_size // c.patch_size
    encoder = SEMatImageEncoder(img_size=c.img_size, patch_size=c.patch_size, embed_dim=c.embed_dim,
                                depth=c.depth, num_heads=c.num_heads, out_chans=c.prompt_dim,
                                window_size=c.window_size, global_attn_indexes=c.global_attn_indexes)
    prompt = SEMatPromptEncoder(embed_dim=c.prompt_dim, image_embedding_size=(grid, grid),
                                input_image_size=(c.img_size, c.img_size), mask_in_chans=c.mask_in_chans)
    transformer = SDPATwoWayTransformer(depth=2, embedding_dim=c.prompt_dim, num_heads=c.transformer_heads,
                                        mlp_dim=c.transformer_mlp_dim)
    decoder = MattingMaskDecoder(transformer_dim=c.prompt_dim, transformer=transformer, vit_dim=c.embed_dim,
                                 hq=hq, num_matting_tokens=c.matting_tokens)
    detail = MattingDetailDecoder(sam2_multi_scale=False, vit_dim=c.embed_dim,
                                  num_vit_feats=len(c.global_attn_indexes), tiny=c.detail_tiny)
    return SEMatSAM(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder, matting_decoder=detail)


def _build_sam2(tiny: bool) -> nn.Module:
    from semat.models.semat_sam2 import build_semat_sam2

    return build_semat_sam2(tiny)


_BUILDERS: dict[str, Callable[[bool], nn.Module]] = {
    "sam": lambda tiny: build_semat_sam(hq=False, tiny=tiny),
    "hq-sam": lambda tiny: build_semat_sam(hq=True, tiny=tiny),
    "sam2": _build_sam2,
}


VARIANTS = tuple(_BUILDERS)  # the builder registry's keys, in its order


def check_variant(variant: str) -> str:
    if variant not in _BUILDERS:
        raise ValueError(f"unknown SEMat variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return variant


def build_semat(variant: str, tiny: bool = False) -> nn.Module:
    """A SEMat model with random weights, in eval mode. ``variant``: "sam", "hq-sam" or "sam2"."""
    model = _BUILDERS[check_variant(variant)](tiny)
    return model.eval()
