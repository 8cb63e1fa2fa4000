"""The app/CLI pipeline over the model registry (:func:`default_pipeline`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from semat import registry
from semat.pipeline.matting import MattingPipeline
from semat.settings import Settings

__all__ = ["default_pipeline"]


def default_pipeline(device: str = "auto", dtype: Any = None, detector: str | None = None,
                     progress: Callable[[str], Any] | None = None, settings: Settings | None = None,
                     checkpoint: str | None = None, detector_size: int | None = None) -> MattingPipeline:
    """The app/CLI pipeline over the model registry, loaded lazily on first use: released weights,
    or tiny random-weight models under ``SEMAT_TEST_MODELS=tiny`` (the registry decides).
    ``detector_size`` (shortest side, px) overrides ``SEMAT_DETECTOR_SIZE``."""
    s = settings or Settings.from_env()
    if detector_size is not None:
        s = dataclasses.replace(s, detector_size=int(detector_size))
    det = detector or s.detector or registry.default("detector")
    kw: dict[str, Any] = {"settings": s, "device": device, "dtype": dtype, "progress": progress}
    return MattingPipeline(lambda v: registry.load(v, checkpoint=checkpoint, **kw),
                           lambda: registry.load(det, **kw),
                           human_factory=lambda: registry.load(registry.default("human"), **kw),
                           max_loaded_variants=s.max_loaded_variants, max_boxes=s.max_boxes)
