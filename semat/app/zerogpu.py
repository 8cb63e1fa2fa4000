"""Hugging Face ZeroGPU: one ``@spaces.GPU`` call per user action, with a budget that fits the quota.

Inference runs in module-level functions wrapped with ``spaces.GPU(duration=<callable>)``; on
ZeroGPU they run in a forked worker and their arguments and results cross the process boundary
by pickle, so results travel compact (uint16 alphas, no copy of the input image) and are
expanded again here. Outside ZeroGPU the decorator is a no-op (CPU, plain CUDA).

Each user action is exactly one call: Text-tab Matte sends the reviewed detections with the
prompt (no second detector run in the worker), Matte without Detect detects and mattes in the
same call. Durations come from the request (megapixels × objects × model), times the platform's
``duration_factor``; a request whose estimate exceeds an anonymous visitor's daily quota is refused
up front with a message saying what to shrink.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from semat.app.services import SERVICES
from semat.errors import InputError
from semat.pipeline import MatteResult, ObjectResult, Prompt
from semat.settings import zero_gpu_mode

try:  # on ZeroGPU `spaces` must be imported before torch initialises CUDA (app.py imports it first)
    import spaces as _spaces
except ImportError:  # pragma: no cover - the platform installs spaces; local runs work without it
    _spaces = None

#: Seconds per object at <= 1 MP on a ZeroGPU slice, by variant, with headroom for eager PyTorch.
SECONDS_PER_OBJECT = {"sam": 2.0, "hq-sam": 2.5, "sam2": 1.5}
DURATION_FACTOR = 1.5  # ZeroGPU bills a call's duration times this on the current cards
ANONYMOUS_QUOTA_S = 120  # an anonymous visitor's daily GPU quota


def on_zero_gpu() -> bool:
    """ZeroGPU hardware: ``spaces`` imported and in ZeroGPU mode (:func:`semat.settings.zero_gpu_mode`,
    which also picks ``SEMAT_CONCURRENCY``'s default)."""
    return _spaces is not None and zero_gpu_mode()


def gpu_function(duration: Callable[..., int]) -> Callable[[Callable], Callable]:
    """``spaces.GPU(duration=...)`` when available (a no-op off ZeroGPU), else identity."""
    if _spaces is None:
        return lambda f: f
    return _spaces.GPU(duration=duration)


def gpu_seconds(megapixels: float, n_objects: int, variant: str | None, detection: bool = False,
                human: bool = False) -> int:
    """Requested GPU seconds for one call: 5 s start + 3 s GroundingDINO + per-object SEMat time
    scaled by the image size above 1 MP (SGHM: 4 s + 2 s/MP). At least 10 s."""
    mp = max(0.0, float(megapixels))
    if human:
        seconds = 5 + 4 + 2 * mp
    else:
        per = SECONDS_PER_OBJECT.get(variant or "hq-sam", 2.5)
        seconds = 5 + (3 if detection else 0) + max(1, n_objects) * per * max(1.0, mp) ** 0.5
    return max(10, math.ceil(seconds))


def check_quota(seconds: int) -> int:
    """Refuse up front a request that would exceed an anonymous visitor's quota once billed."""
    if seconds * DURATION_FACTOR > ANONYMOUS_QUOTA_S:
        raise InputError(f"this request needs about {seconds} s of GPU time ({seconds * DURATION_FACTOR:.0f} s "
                         f"billed), more than a visitor's {ANONYMOUS_QUOTA_S} s daily quota; use fewer boxes, "
                         "a smaller image or SEMat SAM2")
    return seconds


def _mp(image: np.ndarray) -> float:
    return image.shape[0] * image.shape[1] / 1e6


def _objects(prompt: Prompt, selected: list[int] | None, max_objects: int | None) -> int:
    if selected is not None:
        n = len(selected)
    elif prompt.detections:
        n = len(prompt.detections)
    elif prompt.text:
        n = max_objects or 4
    else:
        n = 0
    return max(1, n + len(prompt.boxes) + (1 if prompt.points else 0))


def _dur_matte(image, prompt, variant, selected=None, max_objects=None, progress=None) -> int:
    detect = bool(prompt.text and not prompt.detections)
    return gpu_seconds(_mp(image), _objects(prompt, selected, max_objects), variant, detection=detect)


def _dur_detect(image, text, box_threshold, text_threshold) -> int:
    return gpu_seconds(_mp(image), 0, None, detection=True)


def _dur_human(image) -> int:
    return gpu_seconds(_mp(image), 1, None, human=True)


# --------------------------------------------------------------- compact results across pickle


def compact(result: MatteResult) -> MatteResult:
    """The result with uint16 alphas and no image (what crosses the worker boundary)."""
    objs = [replace(o, alpha=_u16(o.alpha)) for o in result.objects]
    return replace(result, image=None, objects=objs, alpha=_u16(result.alpha))  # type: ignore[arg-type]


def expand(result: MatteResult, image: np.ndarray) -> MatteResult:
    """Undo :func:`compact` (a no-op for a result that was never compacted)."""
    if result.image is not None:
        return result
    objs: list[ObjectResult] = [replace(o, alpha=_f32(o.alpha)) for o in result.objects]
    return replace(result, image=image, objects=objs, alpha=_f32(result.alpha))


def _u16(a: np.ndarray) -> np.ndarray:
    return np.round(np.clip(a, 0.0, 1.0) * 65535.0).astype(np.uint16)


def _f32(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) / 65535.0 if a.dtype == np.uint16 else a


# ------------------------------------------------------------------------- GPU entry points
# Module-level, picklable arguments only (ZeroGPU forks a worker and pickles them).


@gpu_function(_dur_matte)
def _gpu_matte(image, prompt, variant, selected=None, max_objects=None, progress=None):
    result = SERVICES.pipeline().run(image, prompt, variant=variant, selected=selected, max_objects=max_objects,
                                     progress=progress)
    return compact(result) if on_zero_gpu() else result


@gpu_function(_dur_detect)
def _gpu_detect(image, text, box_threshold, text_threshold):
    pipe = SERVICES.pipeline()
    before = pipe.detector_forwards
    dets = pipe.detect(image, text, box_threshold, text_threshold)
    return dets, pipe.detector_forwards - before


@gpu_function(_dur_human)
def _gpu_human(image):
    result = SERVICES.pipeline().matte_human(image)
    return compact(result) if on_zero_gpu() else result


# Counted here, in the serving process (on ZeroGPU the functions above run in a worker).
def gpu_matte(image: np.ndarray, prompt: Prompt, variant: str, selected: list[int] | None = None,
              max_objects: int | None = None, progress: Any = None) -> MatteResult:
    """``progress(fraction, message)`` hears the pipeline's stages (not on ZeroGPU: another process)."""
    if on_zero_gpu():
        check_quota(_dur_matte(image, prompt, variant, selected, max_objects))
        progress = None
    result = expand(_gpu_matte(image, prompt, variant, selected, max_objects, progress), image)
    SERVICES.record("matte", result)
    return result


def gpu_detect(image: np.ndarray, text: str, box_threshold: float, text_threshold: float) -> list[Any]:
    dets, forwards = _gpu_detect(image, text, float(box_threshold), float(text_threshold))
    SERVICES.record("detect", detector_forwards=forwards)
    return list(dets)


def gpu_human(image: np.ndarray) -> MatteResult:
    result = expand(_gpu_human(image), image)
    SERVICES.record("human", result)
    return result
