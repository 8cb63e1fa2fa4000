"""The padded square working frame shared by every SEMat variant: pixel normalisation constants
and the box map that injects a box prompt into the encoder (semat-spec §1)."""

from __future__ import annotations

import torch

__all__ = ["PIXEL_MEAN", "PIXEL_STD", "box_mask", "exact_dtype"]

PIXEL_MEAN = (0.485, 0.456, 0.406)
PIXEL_STD = (0.229, 0.224, 0.225)


def exact_dtype(device: torch.device) -> torch.dtype:
    """float64 for prompt coordinates (the reference keeps its box in float64), except on devices
    without float64 support (Apple MPS), where float32 is exact for integer pixel coordinates."""
    return torch.float32 if device.type == "mps" else torch.float64


def box_mask(boxes: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """[B,4] xyxy boxes -> [B,1,H,W] float mask, as SEMat builds it (semat-spec §1).

    Coordinates are truncated toward zero (Python ``int()``) and the end is exclusive: rows
    ``int(y1) .. int(y2)-1`` and columns ``int(x1) .. int(x2)-1`` are 1, so the inclusive max
    row/column of the box is not covered. Coordinates are clamped to the frame first (the
    reference relies on its caller clipping to [0, S-1]).
    """
    h, w = (size, size) if isinstance(size, int) else size
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must have shape [B,4], got {tuple(boxes.shape)}")
    dt = exact_dtype(boxes.device)
    b = torch.trunc(boxes.detach().to(dt))
    x1, y1, x2, y2 = (b[:, i].clamp(0, lim) for i, lim in zip(range(4), (w, h, w, h)))
    rows = torch.arange(h, dtype=dt, device=boxes.device)
    cols = torch.arange(w, dtype=dt, device=boxes.device)
    in_rows = (rows[None] >= y1[:, None]) & (rows[None] < y2[:, None])  # [B,H]
    in_cols = (cols[None] >= x1[:, None]) & (cols[None] < x2[:, None])  # [B,W]
    return (in_rows[:, :, None] & in_cols[:, None, :]).unsqueeze(1).to(torch.float32)
