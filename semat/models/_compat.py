"""Import-order shims for the pinned third-party stack.

torchvision 0.28.0 on the package registry is a CUDA build. On a CPU-only torch its C++
extension cannot load, and ``import torchvision`` then dies while registering fake kernels
for ``torchvision::nms``. ``segment_anything``, ``sam2.sam2_image_predictor`` and the
``transformers`` vision models import torchvision, so :func:`import_torchvision` must run
before them. It defines a pure-torch ``nms``/``qnms`` in the ``torchvision`` op namespace and
retries the import. Where the extension loads normally (CUDA torch) it does nothing.
"""

from __future__ import annotations

import sys
import types

import torch

_LIBRARY: torch.library.Library | None = None  # kept alive: dropping it unregisters the ops


def _nms_reference(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS, same contract as ``torchvision.ops.nms`` (indices by decreasing score)."""
    if dets.numel() == 0:
        return torch.empty((0,), dtype=torch.long, device=dets.device)
    x1, y1, x2, y2 = dets.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort(descending=True)
    suppressed = torch.zeros(dets.shape[0], dtype=torch.bool, device=dets.device)
    keep: list[int] = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        w = (torch.minimum(x2[i], x2) - torch.maximum(x1[i], x1)).clamp(min=0)
        h = (torch.minimum(y2[i], y2) - torch.maximum(y1[i], y1)).clamp(min=0)
        inter = w * h
        suppressed |= inter / (areas[i] + areas - inter) > iou_threshold
    return torch.tensor(keep, dtype=torch.long, device=dets.device)


def _register_python_ops() -> None:
    global _LIBRARY
    if _LIBRARY is not None:
        return
    lib = torch.library.Library("torchvision", "DEF")
    for op in ("nms", "qnms"):
        lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.impl(op, _nms_reference, "CompositeExplicitAutograd")
    _LIBRARY = lib


def import_torchvision() -> types.ModuleType:
    """Import torchvision, installing the pure-torch op shim first if its C++ ops cannot load."""
    try:
        import torchvision

        return torchvision
    except RuntimeError as exc:  # "operator torchvision::nms does not exist"
        if "torchvision::nms" not in str(exc):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    _register_python_ops()
    import torchvision
    import torchvision.extension

    # ops.nms dispatches to our op; roi_align keeps its pure-python fallback.
    torchvision.extension._has_ops = lambda: True
    return torchvision
