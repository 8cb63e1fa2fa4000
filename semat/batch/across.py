"""Across-image batching: images that share a size go through the model together, and the
results prefill the pipeline's matte cache so each image's own run finds them (see :mod:`semat.batch.job`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from semat.errors import InputError

if TYPE_CHECKING:
    from semat.batch.job import BatchOptions, Loaded

__all__ = ["prefill"]


def prefill(pipe: Any, loaded: Sequence[Loaded], options: BatchOptions) -> dict[int, float]:
    """Across-image batching (module docstring): the SEMat mattes of every box-only object of the
    chunk, ``batch_size`` per forward, into the pipeline's cache (:meth:`MattingPipeline.prefill`).
    Returns seconds per item index (its share of the forwards, and its detection time)."""
    from semat import registry
    from semat.pipeline.cache import image_hash
    from semat.pipeline.matting import top_scoring
    from semat.pipeline.objects import build_jobs
    from semat.validate import check_boxes

    if options.batch_size < 1 or not hasattr(pipe, "prefill"):
        return {}
    variant = options.variant or registry.default("semat")
    owners: list[int] = []  # item index per request
    requests: list[tuple[np.ndarray, tuple[float, ...]]] = []
    keys: list[str] = []
    spent: dict[int, float] = {}
    for i, ld in enumerate(loaded):
        if ld.error or ld.prompt is None or ld.prompt.points:
            continue
        image = ld.image.rgb
        hw = image.shape[:2]
        key = image_hash(image)
        try:
            boxes = check_boxes(ld.prompt.boxes, hw, max_boxes=pipe.max_boxes, notices=[], allow_empty=True)
            dets = []
            if ld.prompt.text:
                t0 = time.perf_counter()
                found = pipe.detect(image, ld.prompt.text, ld.prompt.box_threshold, ld.prompt.text_threshold,
                                    raise_if_empty=False, image_key=key)
                spent[i] = spent.get(i, 0.0) + time.perf_counter() - t0
                room = max(0, pipe.max_boxes - len(boxes))
                k = room if options.max_objects is None else min(room, max(1, int(options.max_objects)))
                dets = [found[j] for j in top_scoring(found, range(len(found)), k)]
            if not dets and not len(boxes):
                continue
            jobs = build_jobs(dets, [tuple(b) for b in boxes], [], hw, [])
        except InputError:
            continue  # the pipeline's run reports it
        if len(jobs) > pipe.max_boxes:
            continue
        for j in jobs:
            owners.append(i)
            requests.append((image, tuple(float(v) for v in j.box)))
            keys.append(key)
    if not requests:
        return spent
    t0 = time.perf_counter()
    took = pipe.prefill(requests, variant, options.batch_size, image_keys=keys)
    per = (time.perf_counter() - t0) / max(1, sum(took))
    for i, forward in zip(owners, took):
        if forward:
            spent[i] = spent.get(i, 0.0) + per
    return spent
