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

__all__ = ["predict_across", "prefill"]


def prefill(pipe: Any, loaded: Sequence[Loaded], options: BatchOptions) -> dict[int, float]:
    """Across-image batching (module docstring): the SEMat mattes of every box-only object of the
    chunk, ``batch_size`` per forward, into the pipeline's cache. Returns seconds per item index
    (its share of the forwards, and its detection time)."""
    from semat import registry
    from semat.pipeline.cache import Entry, box_key, image_hash
    from semat.pipeline.matting import top_scoring
    from semat.pipeline.objects import build_jobs
    from semat.validate import check_boxes

    cache = getattr(pipe, "_cache", None)
    if cache is None or options.batch_size < 1:
        return {}
    variant = options.variant or registry.default("semat")
    requests: list[tuple[int, str, tuple[float, ...]]] = []  # (item index, image key, box)
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
            if cache.get((key, variant, box_key(j.box), ())) is None:
                requests.append((i, key, tuple(float(v) for v in j.box)))
    if not requests:
        return spent
    pred = pipe.predictor(variant)
    t0 = time.perf_counter()
    results = predict_across(pred, [(loaded[i].image.rgb, box) for i, _, box in requests], options.batch_size)
    per = (time.perf_counter() - t0) / len(requests)
    pipe.model_forwards += len(requests)
    for (i, key, box), (alpha, mask) in zip(requests, results):
        cache.put((key, variant, box_key(box), ()), Entry(alpha, mask))
        spent[i] = spent.get(i, 0.0) + per
    return spent


def predict_across(pred: Any, requests: Sequence[tuple[np.ndarray, Sequence[float]]],
                   batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(alpha, mask)`` for each ``(image, box)``, images of any size mixed in one forward of up
    to ``batch_size`` frames (box-only prompts; the predictor's own pre/post-processing)."""
    import torch

    from semat.inference.predictor import preprocess_image, validate_boxes

    size = pred.img_size
    frames: dict[int, tuple] = {}
    prepared = []
    for image, box in requests:
        k = id(image)
        if k not in frames:
            frames[k] = preprocess_image(image, size)
        padded, new_hw, scale = frames[k]
        b = validate_boxes([box], image.shape[:2])[0]
        fb = np.clip((b * scale + 0.5).astype(np.int64), 0, size - 1).astype(np.float32)
        prepared.append((padded, fb, b, image.shape[:2], new_hw))
    out: list[tuple[np.ndarray, np.ndarray]] = []
    with torch.inference_mode():
        for s in range(0, len(prepared), batch_size):
            group = prepared[s:s + batch_size]
            imgs = torch.cat([g[0] for g in group])
            boxes = torch.from_numpy(np.stack([g[1] for g in group]))
            res = pred.forward_frame(imgs, boxes)
            for j, (_, _, b, hw, new_hw) in enumerate(group):
                m = pred._postprocess(res, j, b, hw, new_hw, False)
                out.append((np.asarray(m.alpha, np.float32), np.asarray(m.mask, bool)))
            del res
    return out
