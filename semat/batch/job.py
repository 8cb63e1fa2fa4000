"""The batch job: many images, each with its prompt, through one :class:`MattingPipeline`.

:func:`run_batch` is the local engine (the CLI's ``semat matte A.jpg B.jpg ... -o DIR`` and
``semat batch --engine local``); :mod:`semat.batch.ray_engine` runs the same
:func:`process_chunk` inside Ray actors. Per image the result is exactly what ``semat matte``
gives for that image alone: the pipeline applies every product rule (box clipping and merging,
top-k detections, point ownership, derived boxes), the batch only decides the order of work.

**Across-image batching.** Images are taken ``chunk`` at a time. For every image of a chunk
whose objects are boxes (drawn, or found by the detector first) and no clicks, the SEMat
forwards of the whole chunk run together, ``batch_size`` boxes per forward, whatever their image
sizes (every image is resized and padded into the same square working frame), and their mattes
are put into the pipeline's cache under the keys it uses; the pipeline's own run then finds
them there. Any box this prediction misses is simply computed by the pipeline, so the batching
can never change which objects are matted. Memory: ``batch_size`` frames per forward (as for
boxes within one image) plus the chunk's decoded images and mattes.

**Failures.** An unreadable file, a prompt that does not fit the image, or words that find
nothing are one summary row each (status ``error`` / ``nothing found``) and the run goes on.
A model failure (:class:`~semat.errors.ModelError`: weights, memory, device) stops the run;
a rerun resumes (:mod:`semat.batch.outputs`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semat.batch.across import prefill
from semat.batch.items import BatchItem, PromptSpec
from semat.batch.outputs import (
    SUMMARY,
    OutputDir,
    append_rows,
    done_rows,
    open_output,
    output_names,
    scratch_dir,
    start_summary,
)
from semat.errors import InputError, NoDetectionError, clip_text

__all__ = ["BatchOptions", "BatchSummary", "Loaded", "load_item", "plan", "process_chunk", "run_batch",
           "signature"]

#: bump when the output pixels of the same prompt and options change
FORMAT_VERSION = 1


@dataclass(frozen=True)
class BatchOptions:
    """Everything besides the prompt that decides a batch's outputs."""

    variant: str | None = None  # None: the registry's default SEMat
    box_threshold: float = 0.35
    text_threshold: float = 0.25
    max_objects: int | None = None
    rgba: bool = True
    zip: bool = False
    foreground_estimation: bool = True
    batch_size: int = 4  # boxes per SEMat forward, across the images of a chunk
    chunk: int = 8  # images decoded and predicted together
    max_megapixels: float | None = None  # None: SEMAT_MAX_MEGAPIXELS
    checkpoint: str | None = None

    def names(self, stem: str) -> list[str]:
        return output_names(stem, self.rgba, self.zip)


def signature(spec: PromptSpec, options: BatchOptions) -> str:
    """A short hash of what an image's outputs depend on (the resume rule compares it)."""
    from semat import registry

    data = {"v": FORMAT_VERSION, "prompt": spec.as_dict(), "variant": options.variant or registry.default("semat"),
            "checkpoint": options.checkpoint, "box_threshold": float(options.box_threshold),
            "text_threshold": float(options.text_threshold), "max_objects": options.max_objects,
            "rgba": options.rgba, "zip": options.zip, "fg": options.foreground_estimation,
            "max_megapixels": options.max_megapixels}
    return hashlib.blake2b(json.dumps(data, sort_keys=True).encode(), digest_size=8).hexdigest()


@dataclass
class BatchSummary:
    total: int = 0
    skipped: int = 0  # done by an earlier run (resume)
    ok: int = 0
    nothing_found: int = 0
    failed: int = 0
    seconds: float = 0.0
    rows: list[dict] = field(default_factory=list)  # this run's rows, in completion order
    summary_path: str = ""

    @property
    def processed(self) -> int:
        return self.ok + self.nothing_found + self.failed

    def line(self) -> str:
        parts = [f"{self.ok} matted"]
        if self.nothing_found:
            parts.append(f"{self.nothing_found} with nothing found")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.skipped:
            parts.append(f"{self.skipped} already done")
        rate = f", {self.processed / self.seconds:.2f} images/s" if self.seconds > 0 and self.processed else ""
        return f"{self.total} image(s): " + ", ".join(parts) + f" in {self.seconds:.1f} s{rate}; summary {self.summary_path}"


# ---------------------------------------------------------------------------------- planning


def plan(items: Sequence[BatchItem], out: OutputDir, options: BatchOptions) -> tuple[list[BatchItem], dict]:
    """The items still to do under the resume rule, and the kept rows of those already done.
    Rewrites ``summary.csv`` with only the kept rows (done-again images get a fresh row)."""
    sigs = {it.stem: signature(it.prompt, options) for it in items}
    done = done_rows(out, sigs)
    todo = [it for it in items if it.stem not in done]
    start_summary(out, done.values())
    return todo, done


# --------------------------------------------------------------------------------- one chunk


@dataclass
class Loaded:
    item: BatchItem
    image: Any = None  # LoadedImage
    prompt: Any = None  # semat.pipeline.Prompt in working pixels
    scale: tuple[float, float] = (1.0, 1.0)  # working / original
    notices: list[str] = field(default_factory=list)
    error: str | None = None
    status: str = "ok"
    timings: dict[str, float] = field(default_factory=dict)


def load_item(item: BatchItem, data: bytes | None = None, options: BatchOptions | None = None) -> Loaded:
    """Decode the image (``data``: its bytes, e.g. read by Ray; else the item's path) and build the
    pipeline prompt in working pixels, as ``semat matte`` does for one image."""
    from semat.io.images import FROM_SETTINGS, load_image
    from semat.pipeline import Prompt
    from semat.validate import check_boxes, check_points

    options = options or BatchOptions()
    t0 = time.perf_counter()
    out = Loaded(item)
    if item.problem:
        out.error, out.status = item.problem, "error"
        return out
    name = item.source.rsplit("/", 1)[-1]
    mp = FROM_SETTINGS if options.max_megapixels is None else options.max_megapixels
    try:
        if data is not None:
            loaded = load_image(data, max_megapixels=mp, name=name)
        elif "://" in item.source:
            loaded = load_image(_read_uri(item.source), max_megapixels=mp, name=name)
        else:
            loaded = load_image(item.source, max_megapixels=mp)
        (w0, h0), (w1, h1) = loaded.original_size, loaded.size
        sx, sy = w1 / w0, h1 / h0
        spec = item.prompt
        boxes = check_boxes(list(spec.boxes), (h0, w0), max_boxes=None, notices=out.notices, allow_empty=True)
        points = check_points(list(spec.points), (h0, w0))
        out.prompt = Prompt(text=spec.text,
                            boxes=[(min(x1 * sx, w1), min(y1 * sy, h1), min(x2 * sx, w1), min(y2 * sy, h1))
                                   for x1, y1, x2, y2 in boxes],
                            points=[(min(x * sx, w1), min(y * sy, h1), lab) for x, y, lab in points],
                            box_threshold=options.box_threshold if spec.box_threshold is None else spec.box_threshold,
                            text_threshold=options.text_threshold if spec.text_threshold is None
                            else spec.text_threshold)
        out.image, out.scale = loaded, (sx, sy)
        out.notices[:0] = list(loaded.notices)
    except InputError as exc:
        out.error, out.status = _one_line(exc), "error"
    out.timings["load"] = time.perf_counter() - t0
    return out


def _read_uri(uri: str) -> bytes:
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(uri)
    with filesystem.open_input_stream(path) as f:
        return f.read()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def process_chunk(pipe: Any, loaded: Sequence[Loaded], out: OutputDir, options: BatchOptions,
                  on_row: Callable[[dict], Any] | None = None) -> list[dict]:
    """Matte and write every image of a chunk; one summary row each (returned, and passed to
    ``on_row`` as each image finishes)."""
    spent = prefill(pipe, loaded, options)
    rows = []
    for i, ld in enumerate(loaded):
        row = _matte_one(pipe, ld, out, options, spent.get(i, 0.0))
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def _matte_one(pipe: Any, ld: Loaded, out: OutputDir, options: BatchOptions, prefill_s: float) -> dict:
    from semat import registry

    t0 = time.perf_counter()
    row: dict[str, Any] = {"image": ld.item.source, "stem": ld.item.stem,
                           "signature": signature(ld.item.prompt, options),
                           "seconds_load": _s(ld.timings.get("load", 0.0))}
    if ld.image is not None:
        row["width"], row["height"] = ld.image.original_size
    if ld.error is None:
        try:
            result = pipe.run(ld.image.rgb, ld.prompt, variant=options.variant or registry.default("semat"),
                              max_objects=options.max_objects)
            t1 = time.perf_counter()
            names = write_outputs(out, ld, result, options)
            sx, sy = ld.scale
            row.update({
                "status": "ok", "objects": len(result.objects),
                "labels": ";".join(o.label for o in result.objects),
                "scores": ";".join("" if o.score is None else f"{o.score:.3f}" for o in result.objects),
                "boxes": json.dumps([[round(o.box[0] / sx, 1), round(o.box[1] / sy, 1), round(o.box[2] / sx, 1),
                                      round(o.box[3] / sy, 1)] for o in result.objects]),
                "seconds_detect": _s(result.timings.get("detect", 0.0)),
                "seconds_semat": _s(result.timings.get("semat", 0.0) + result.timings.get("derive_box", 0.0)
                                    + prefill_s),
                "seconds_write": _s(time.perf_counter() - t1),
                "outputs": ";".join(names),
            })
            ld.notices += result.notices
        except NoDetectionError as exc:
            row.update({"status": "nothing found", "objects": 0, "error": _one_line(exc), "outputs": ""})
        except InputError as exc:
            row.update({"status": "error", "error": _one_line(exc), "outputs": ""})
    else:
        row.update({"status": "error", "error": ld.error, "outputs": ""})
    row["notices"] = clip_text(" | ".join(ld.notices), 500) if ld.notices else ""
    row["seconds_total"] = _s(time.perf_counter() - t0 + ld.timings.get("load", 0.0) + prefill_s)
    return row


def _s(v: float) -> str:
    return f"{v:.3f}"


def write_outputs(out: OutputDir, ld: Loaded, result: Any, options: BatchOptions) -> list[str]:
    """``<stem>.png``, ``<stem>_rgba.png`` and ``<stem>.zip`` at the original size (as ``semat matte``)."""
    import cv2

    from semat import compose
    from semat.io.images import encode_png

    stem = ld.item.stem
    size = ld.image.original_size
    alphas = [o.alpha if (o.alpha.shape[1], o.alpha.shape[0]) == tuple(size)
              else np.clip(cv2.resize(o.alpha, size, interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
              for o in result.objects]
    union = np.zeros(alphas[0].shape, np.float32)  # as semat.pipeline.union: sum clipped to 1
    for a in alphas:
        union += a
    np.clip(union, 0.0, 1.0, out=union)
    names = options.names(stem)
    out.write_bytes(f"{stem}.png", encode_png(compose.alpha_to_png8(union)))
    if options.rgba:
        image = ld.image.rgb
        if ld.image.downscaled:
            image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        fg = compose.estimate_foreground(image, union) if options.foreground_estimation else None
        out.write_bytes(f"{stem}_rgba.png", encode_png(compose.rgba(image, union, fg)))
    if options.zip:
        w0, h0 = size
        local = out.local_path(f"{stem}.zip")
        tmp = local if local is not None else scratch_dir() / f"{stem}.zip"
        compose.write_zip(result, tmp, foreground_estimation=options.foreground_estimation,
                          manifest_extra={"source": {"file": ld.item.source.rsplit("/", 1)[-1],
                                                     "original_size": {"width": w0, "height": h0}}})
        if local is None:
            out.write_file(f"{stem}.zip", tmp)
    return names


# ------------------------------------------------------------------------------ local engine


Progress = Callable[[dict, "BatchSummary"], Any]


def _count(summary: BatchSummary, row: dict) -> None:
    summary.rows.append(row)
    status = row.get("status")
    if status == "ok":
        summary.ok += 1
    elif status == "nothing found":
        summary.nothing_found += 1
    else:
        summary.failed += 1


def run_batch(items: Sequence[BatchItem], pipeline: Any, out_dir: str | Path | OutputDir,
              options: BatchOptions | None = None, progress: Progress | None = None,
              on_plan: Callable[[int, int], Any] | None = None) -> BatchSummary:
    """Matte ``items`` into ``out_dir`` on this machine (module docstring), resuming an earlier
    run there. ``on_plan(to_do, already_done)`` is called once the resume rule has been applied,
    ``progress(row, summary)`` after every image (the row is already in ``summary.csv``)."""
    options = options or BatchOptions()
    if options.batch_size < 1 or options.chunk < 1:
        raise InputError("batch size and chunk must be at least 1")
    out = out_dir if isinstance(out_dir, OutputDir) else open_output(out_dir)
    t0 = time.perf_counter()
    todo, done = plan(items, out, options)
    summary = BatchSummary(total=len(items), skipped=len(done), summary_path=out.path_of(SUMMARY))
    if on_plan is not None:
        on_plan(len(todo), len(done))

    def on_row(row: dict) -> None:
        append_rows(out, [row])
        _count(summary, row)
        if progress is not None:
            progress(row, summary)

    for s in range(0, len(todo), options.chunk):
        loaded = [load_item(it, options=options) for it in todo[s:s + options.chunk]]
        process_chunk(pipeline, loaded, out, options, on_row)
        summary.seconds = time.perf_counter() - t0
    summary.seconds = time.perf_counter() - t0
    return summary


def options_dict(options: BatchOptions) -> dict:
    return asdict(options)
