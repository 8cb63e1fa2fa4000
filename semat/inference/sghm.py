"""Automatic human matting with SGHM: checkpoint loading and the reference inference pipeline.

:class:`HumanPredictor` reproduces ``inference.single_inference`` of the reference repository
(cxgincsu/SemanticGuidedHumanMatting): the RGB image as float in [0,1] (no normalisation) is
resized bilinearly so the short side is 1280 and each side is floored to a multiple of 64, the
network gives the coarse person probability and alphas at 1/8, 1/4 and 1/1 scale, and the
progressive fusion keeps OS8, replaces its uncertain band (dilated 15x15) with OS4, then the
new uncertain band (dilated 7x7) with OS1. Alpha and segment are resized back to the original
size.

Differences from the reference, all without changing the output:

* BN and spectral norm are folded into the convs at load, the model runs channels-last under
  ``torch.inference_mode``;
* the full-resolution OS1 branch (about half of the FLOPs) is evaluated only on tiles that
  touch the OS1 fusion region; convolutions are local, so a tile with a wide enough halo gives
  the same values. The OS4 alpha is only computed when its region is not empty.

``max_side`` (default :data:`DEFAULT_MAX_SIDE`) caps the longer network side, which the
reference does not: a 4000x1000 photo would become a 1280x5120 network input there. With the
cap, the network input never exceeds 1280x2560 pixels, which bounds memory (measured peak RSS
of the whole process on CPU in float32, weights included: 2.2 GB at 1280x2560, 1.5 GB for a
1920x1080 photo, 1.1 GB for 1024x1024; see benchmarks/bench_sghm.py). Images whose reference network input fits (every aspect ratio up to 2:1,
e.g. all 4:3, 3:2 and 16:9 photos) are processed exactly as the reference does. ``max_side=None``
restores the reference behaviour.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from semat.errors import InputError
from semat.models.sghm import SGHM, Coarse, SGHMConfig, fold_spectral_norm, logits_to_alpha
from semat.runtime import Runtime, select_runtime
from semat.validate import as_rgb
from semat.weights.checkpoint import CheckpointError, load_exact, read_state_dict
from semat.weights.hub import Progress, resolve
from semat.weights.integrity import check_finite_output

INFER_SIZE = 1280  # reference short side
DEFAULT_MAX_SIDE = 2560  # cap on the longer network side (multiple of 64); None = reference (no cap)
WEIGHTS_NAME = "sghm"
OS4_KERNEL = 15  # elliptical dilation sizes of the reference fusion
OS1_KERNEL = 7
TILE = 32  # OS1 tile edge, in 1/4-resolution pixels (128 network pixels)
TILE_HALO = 6  # receptive-field margin of the OS1 branch, in 1/4-resolution pixels (needs >= 4)
BAND_ROWS = 256  # shortcut 0 is computed in row bands of this height to bound memory


def convert_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Released SGHM state dict (``module.`` already stripped) -> :class:`SGHM` keys.

    Folds each spectral-norm triple into a plain weight (eval behaviour, no power iteration).
    """
    if any(k.startswith("module.") for k in sd):
        sd = {k.removeprefix("module."): v for k, v in sd.items()}
    try:
        return fold_spectral_norm(sd)
    except KeyError as exc:
        raise CheckpointError(f"SGHM checkpoint: {exc.args[0]}") from None


def load_sghm(checkpoint: str | os.PathLike | None = None, runtime: Runtime | None = None,
              progress: Progress | None = None, fuse: bool = True) -> tuple[SGHM, Path]:
    """Build SGHM from a checkpoint path or registry name (default: the official weights).

    Every checkpoint key must be used and every model parameter present (``load_exact``).
    """
    runtime = runtime or select_runtime()
    path = resolve(checkpoint if checkpoint is not None else WEIGHTS_NAME, progress)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; expected the SGHM-ResNet50.pth file")
    sd = convert_state_dict(read_state_dict(path))
    model = SGHM(SGHMConfig.full())
    load_exact(model, sd, source=str(path))
    del sd
    model.eval()
    if fuse:
        model.fuse_()
    model.to(device=runtime.device, dtype=runtime.dtype)
    return model, path


def network_size(h: int, w: int, short_side: int = INFER_SIZE, max_side: int | None = DEFAULT_MAX_SIDE,
                 upscale: bool = True) -> tuple[int, int]:
    """Network (H, W): short side -> ``short_side`` (long side truncated), then both floored to 64.

    ``upscale=False`` keeps the native size when the short side is already small (the reference
    video rule). ``max_side`` caps the longer side (applied before flooring); sides stay >= 64.
    """
    if h < 1 or w < 1:
        raise InputError(f"empty image ({w}x{h})")
    if short_side < 64:
        raise InputError(f"short side must be at least 64, got {short_side}")
    if max_side is not None and max_side < 64:
        raise InputError(f"max_side must be at least 64, got {max_side}")
    if not upscale and min(h, w) <= short_side:
        rh, rw = h, w
    elif w >= h:
        rh, rw = short_side, int(w / h * short_side)
    else:
        rh, rw = int(h / w * short_side), short_side
    if max_side is not None and max(rh, rw) > max_side:
        if w >= h:
            rh, rw = int(h / w * max_side), max_side
        else:
            rh, rw = max_side, int(w / h * max_side)
    rh, rw = rh - rh % 64, rw - rw % 64
    return max(rh, 64), max(rw, 64)


_KERNELS: dict[int, np.ndarray] = {}


def _dilated_unknown(alpha: torch.Tensor, k: int) -> np.ndarray:
    """Uncertain pixels (not < 1/255 and not > 1-1/255) of a [H,W] alpha, dilated with a k x k ellipse."""
    unknown = ~((alpha < 1.0 / 255.0) | (alpha > 1.0 - 1.0 / 255.0))
    u8 = unknown.to(torch.uint8).cpu().numpy()
    if not u8.any():
        return u8.astype(bool)
    if k not in _KERNELS:
        _KERNELS[k] = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    return cv2.dilate(u8, _KERNELS[k]).astype(bool)


def _tile_runs(region: np.ndarray, tile: int) -> list[tuple[int, int, int, int]]:
    """Tiles (in units of ``tile`` pixels) that touch ``region``, merged into horizontal runs.

    Returns (y0, y1, x0, x1) pixel boxes, clipped to the region's shape.
    """
    h, w = region.shape
    th, tw = -(-h // tile), -(-w // tile)
    padded = np.zeros((th * tile, tw * tile), dtype=bool)
    padded[:h, :w] = region
    hit = padded.reshape(th, tile, tw, tile).any(axis=(1, 3))
    boxes = []
    for ty in range(th):
        tx = 0
        while tx < tw:
            if not hit[ty, tx]:
                tx += 1
                continue
            start = tx
            while tx < tw and hit[ty, tx]:
                tx += 1
            boxes.append((ty * tile, min(h, (ty + 1) * tile), start * tile, min(w, tx * tile)))
    return boxes


@dataclass
class HumanResult:
    alpha: np.ndarray  # HxW float32 in [0,1], fused alpha at the original size
    segment: np.ndarray  # HxW float32, coarse person probability at the original size
    timings: dict[str, float] = field(default_factory=dict)
    network_hw: tuple[int, int] = (0, 0)
    debug: dict[str, Any] | None = None

    @property
    def mask(self) -> np.ndarray:
        """The binary person mask the network itself used (segment > 0.5)."""
        return self.segment > 0.5


class HumanPredictor:
    """SGHM human matting with the reference pipeline (see the module docstring)."""

    def __init__(self, model: SGHM, runtime: Runtime | None = None, checkpoint_path: Path | None = None,
                 short_side: int = INFER_SIZE, tile: int = TILE) -> None:
        self.runtime = runtime or Runtime(torch.device("cpu"), torch.float32)
        self.model = model.eval().to(device=self.runtime.device, dtype=self.runtime.dtype)
        self.checkpoint_path = checkpoint_path
        self.short_side = short_side
        self.tile = tile
        # False: run the whole OS1 branch like the reference (same output, slower; for benchmarks)
        self.lazy_os1 = True

    @classmethod
    def from_pretrained(cls, checkpoint: str | os.PathLike | None = None, runtime: Runtime | None = None,
                        progress: Progress | None = None) -> HumanPredictor:
        runtime = runtime or select_runtime()
        model, path = load_sghm(checkpoint, runtime, progress)
        return cls(model, runtime, path)

    @classmethod
    def tiny(cls, seed: int = 0, fuse: bool = True, device: str = "cpu") -> HumanPredictor:
        """Random-weight, narrow SGHM working at short side 128 (tests and SEMAT_TEST_MODELS=tiny)."""
        gen = torch.Generator().manual_seed(seed)
        model = SGHM(SGHMConfig.tiny())
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * (0.1 if name.endswith("bias") else 0.5))
            for name, b in model.named_buffers():
                if name.endswith("running_var"):
                    b.copy_(0.5 + torch.rand(b.shape, generator=gen))
        model.eval()
        if fuse:
            model.fuse_(channels_last=False)  # small tensors run faster channels-first
        return cls(model, Runtime(torch.device(device), torch.float32), None, short_side=128, tile=8)

    @property
    def label(self) -> str:
        return f"SGHM ResNet-50 ({self.runtime.label})"

    def network_size(self, h: int, w: int, max_side: int | None = DEFAULT_MAX_SIDE, upscale: bool = True,
                     short_side: int | None = None) -> tuple[int, int]:
        return network_size(h, w, short_side or self.short_side, max_side, upscale)

    # ------------------------------------------------------------------ pipeline

    def predict(self, image: np.ndarray, max_side: int | None = DEFAULT_MAX_SIDE, *, upscale: bool = True,
                short_side: int | None = None, return_debug: bool = False) -> HumanResult:
        """Alpha and person probability for an HxWx3 uint8 RGB image, both at its original size.

        ``max_side``: cap on the longer network side (None = no cap, as the reference).
        ``upscale=False``: do not enlarge images whose short side is below ``short_side``.
        ``return_debug``: run every branch at full size and add the network-resolution arrays
        (segment, alpha_os1/4/8, logits_os1/4/8, alpha_fused_net) as numpy arrays.
        """
        image = as_rgb(image)
        t0 = time.perf_counter()
        h, w = image.shape[:2]
        rh, rw = self.network_size(h, w, max_side, upscale, short_side)
        dev, dt = self.runtime.device, self.runtime.dtype
        timings: dict[str, float] = {}
        with torch.inference_mode():
            # ToTensor: uint8 HWC -> float CHW / 255 (division, as torchvision does)
            x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0).float().div(255)
            if (rh, rw) != (h, w):
                x = F.interpolate(x, size=(rh, rw), mode="bilinear", align_corners=False)
            x = x.to(device=dev, dtype=dt)
            if self.model.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            t1 = time.perf_counter()
            timings["preprocess"] = t1 - t0
            c = self.model.coarse(x)
            t2 = time.perf_counter()
            timings["network_coarse"] = t2 - t1
            debug: dict[str, Any] | None = None
            if return_debug or not self.lazy_os1:
                a0 = self.model.shortcut0(x, c.mask, band=BAND_ROWS)
                os1_full = self.model.fine(c.feat4, a0).float()
                del a0
                fused = self._fuse(c, x, os1_full=os1_full)
                if return_debug:
                    debug = self._debug_arrays(c, os1_full, (rh, rw))
                    debug["alpha_fused_net"] = fused[0, 0].cpu().numpy()
                del os1_full
            else:
                fused = self._fuse(c, x)
            timings["network_fine_and_fusion"] = time.perf_counter() - t2
            t3 = time.perf_counter()
            alpha = F.interpolate(fused, size=(h, w), mode="bilinear", align_corners=False) if (rh, rw) != (h, w) \
                else fused
            segment = c.segment.float()
            if (rh, rw) != (h, w):
                segment = F.interpolate(segment, size=(h, w), mode="bilinear", align_corners=False)
            alpha_np = alpha[0, 0].cpu().numpy().astype(np.float32, copy=False)
            segment_np = segment[0, 0].cpu().numpy().astype(np.float32, copy=False)
            timings["postprocess"] = time.perf_counter() - t3
        timings["total"] = time.perf_counter() - t0
        check_finite_output(alpha_np, "the SGHM alpha")
        return HumanResult(alpha_np, segment_np, timings, (rh, rw), debug)

    def _fuse(self, c: Coarse, x: torch.Tensor, os1_full: torch.Tensor | None = None) -> torch.Tensor:
        """Progressive OS8 -> OS4 -> OS1 fusion at network resolution; returns [1,1,H,W] float32."""
        size = tuple(x.shape[-2:])
        a = logits_to_alpha(c.logits_os8.float(), size).contiguous()
        region4 = _dilated_unknown(a[0, 0], OS4_KERNEL)
        if region4.any():
            a4 = logits_to_alpha(c.logits_os4.float(), size)
            m = torch.from_numpy(region4).to(a.device)
            a[0, 0][m] = a4[0, 0][m]
            del a4
        region1 = _dilated_unknown(a[0, 0], OS1_KERNEL)
        if region1.any():
            m = torch.from_numpy(region1).to(a.device)
            if os1_full is None:
                os1_vals = self._os1_on_region(c, x, region1)
            else:
                os1_vals = logits_to_alpha(os1_full)[0, 0][m]
            a[0, 0][m] = os1_vals
        return a

    def _os1_on_region(self, c: Coarse, x: torch.Tensor, region: np.ndarray) -> torch.Tensor:
        """OS1 alpha at the pixels of ``region`` (network resolution), computed tile by tile."""
        a0 = self.model.shortcut0(x, c.mask, band=BAND_ROWS)
        h4, w4 = c.feat4.shape[-2:]
        region4 = region.reshape(h4, 4, w4, 4).any(axis=(1, 3))
        out = torch.zeros(x.shape[-2:], dtype=torch.float32, device=x.device)
        halo = TILE_HALO
        # even when the region covers every tile, tiles cost about the same time as one whole
        # pass (measured) and keep the full-resolution activations small, so always tile
        for y0, y1, x0, x1 in _tile_runs(region4, self.tile):
            s0, s1 = max(0, y0 - halo), min(h4, y1 + halo)
            r0, r1 = max(0, x0 - halo), min(w4, x1 + halo)
            logits = self.model.fine(c.feat4[:, :, s0:s1, r0:r1], a0[:, :, 4 * s0:4 * s1, 4 * r0:4 * r1])
            core = logits[0, 0, 4 * (y0 - s0):4 * (y1 - s0), 4 * (x0 - r0):4 * (x1 - r0)].float()
            out[4 * y0:4 * y1, 4 * x0:4 * x1] = logits_to_alpha(core)
        return out[torch.from_numpy(region).to(x.device)]

    @staticmethod
    def _debug_arrays(c: Coarse, os1: torch.Tensor, size: tuple[int, int]) -> dict[str, Any]:
        def np_(t: torch.Tensor) -> np.ndarray:
            return t.float()[0, 0].cpu().numpy()

        return {"segment": np_(c.segment), "alpha_os1": np_(logits_to_alpha(os1)),
                "alpha_os4": np_(logits_to_alpha(c.logits_os4.float(), size)),
                "alpha_os8": np_(logits_to_alpha(c.logits_os8.float(), size)),
                "logits_os1": np_(os1), "logits_os4": np_(c.logits_os4), "logits_os8": np_(c.logits_os8),
                "network_hw": size}
