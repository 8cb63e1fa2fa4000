"""Hugging Face ZeroGPU: one ``@spaces.GPU`` call per user action, with a budget that fits the quota.

Inference runs in module-level functions wrapped with ``spaces.GPU(duration=<callable>)``; on
ZeroGPU they run in a forked worker and their arguments and results cross the process boundary
by pickle, so results travel compact (uint16 alphas, no copy of the input image) and are
expanded again here. Outside ZeroGPU the decorator is a no-op (CPU, plain CUDA).

The matte call is a generator: in the worker it runs the pipeline and yields each stage it reports
(``("stage", fraction, message)``, e.g. "Matting object 2 of 5...") as it happens, then
``("result", compact result)``; ``spaces`` pickles every item across as it is yielded, so the
status line shows the same per-object stages and ETA on ZeroGPU as off it.

Each user action is exactly one call: Text-tab Matte sends the reviewed detections with the
prompt (no second detector run in the worker), Matte without Detect detects and mattes in the
same call. Durations come from the request (megapixels × objects × model), times the platform's
``duration_factor``; a request whose estimate exceeds an anonymous visitor's daily quota is refused
up front with a message saying what to shrink.
"""

from __future__ import annotations

import contextvars
import functools
import math
import queue
import threading
from collections.abc import Callable, Generator
from dataclasses import replace
from typing import Any

import numpy as np

from semat.app.services import SERVICES
from semat.errors import InputError, ModelError, SematError
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


def _dur_matte(image, prompt, variant, selected=None, max_objects=None, with_stages=False) -> int:
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


# ------------------------------------------------------------------ errors across the worker


class WorkerError:
    """A :class:`SematError` raised in the GPU worker, carried back as a value.

    ``spaces`` re-raises only ``gr.Error`` from its worker; any other exception reaches the caller
    as "ZeroGPU worker error: <ClassName>", so "Nothing found for 'cat'" or "image too large"
    would lose their message, and callers that catch by class (the Batch tab's per-photo
    ``NoDetectionError``) would see a different class. The envelope keeps the class, its args and
    its attributes (built again without calling a custom ``__init__``)."""

    def __init__(self, exc: SematError) -> None:
        self.cls, self.args, self.state = type(exc), exc.args, dict(vars(exc))

    def rebuild(self) -> SematError:
        exc = self.cls.__new__(self.cls)
        Exception.__init__(exc, *self.args)
        exc.__dict__.update(self.state)
        return exc


def errors_as_values(fn: Callable) -> Callable:
    """On ZeroGPU, ``fn`` returns a :class:`WorkerError` instead of raising a ``SematError``
    (undo with :func:`raised`). Regular functions only."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SematError as exc:
            if not on_zero_gpu():
                raise
            return WorkerError(exc)

    return wrapper


def raised(value: Any) -> Any:
    """``value``, or the error it carries raised again (see :class:`WorkerError`)."""
    if isinstance(value, WorkerError):
        raise value.rebuild()
    return value


# ------------------------------------------------------------------------- GPU entry points
# Module-level, picklable arguments only (ZeroGPU forks a worker and pickles them).


def stages(call: Callable[[Callable[[float, str], None]], Any], join_on_close: bool = False,
           poll: float | None = None) -> Generator[tuple, None, Any]:
    """Run ``call(report)`` in a thread and yield ``("stage", fraction, message)`` for each
    ``report(fraction, message)`` as it comes; return ``call``'s value (or raise its exception).
    With ``poll``, ``("wait", 0.0, "")`` comes every ``poll`` seconds without a stage (the caller
    can look at a Cancel flag). Closed early (a cancelled run) it leaves ``call`` to finish in its
    thread, or with ``join_on_close`` waits for it (the GPU worker: the next call must not overlap
    the model)."""
    items: queue.Queue[tuple | None] = queue.Queue()
    out: dict[str, Any] = {}

    def report(frac: float, message: str) -> None:
        items.put(("stage", float(frac), str(message)))

    def work() -> None:
        try:
            out["value"] = call(report)
        except BaseException as exc:  # re-raised in the caller's thread
            out["error"] = exc
        finally:
            items.put(None)

    ctx = contextvars.copy_context()  # the caller's context (ZeroGPU reads the request from it)
    worker = threading.Thread(target=ctx.run, args=(work,), daemon=True, name="semat-stages")
    worker.start()
    try:
        while True:
            try:
                item = items.get(timeout=poll)
            except queue.Empty:
                yield ("wait", 0.0, "")
                continue
            if item is None:
                break
            yield item
    except GeneratorExit:
        if join_on_close:
            worker.join()
        raise
    worker.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


@gpu_function(_dur_matte)
def _gpu_matte(image, prompt, variant, selected=None, max_objects=None, with_stages=False):
    """The pipeline's stages as ``("stage", fraction, message)`` while it runs (``with_stages``:
    a listener waits for them, so objects are matted one call each), then ``("result", compact
    result)``; on ZeroGPU each item is pickled across as it is yielded."""
    def run(report):
        return SERVICES.pipeline().run(image, prompt, variant=variant, selected=selected, max_objects=max_objects,
                                       progress=report if with_stages else None)

    try:
        result = yield from stages(run, join_on_close=True)
    except SematError as exc:  # a message for the user: as a value (see WorkerError)
        yield ("error", WorkerError(exc))
        return
    yield ("result", compact(result))


@gpu_function(_dur_detect)
@errors_as_values
def _gpu_detect(image, text, box_threshold, text_threshold):
    pipe = SERVICES.pipeline()
    before = pipe.detector_forwards
    dets = pipe.detect(image, text, box_threshold, text_threshold)
    return dets, pipe.detector_forwards - before


@gpu_function(_dur_human)
@errors_as_values
def _gpu_human(image):
    result = SERVICES.pipeline().matte_human(image)
    return compact(result) if on_zero_gpu() else result


# Counted here, in the serving process (on ZeroGPU the functions above run in a worker).
def gpu_matte(image: np.ndarray, prompt: Prompt, variant: str, selected: list[int] | None = None,
              max_objects: int | None = None, progress: Any = None) -> MatteResult:
    """``progress(fraction, message)`` hears the pipeline's stages as they happen (on ZeroGPU too:
    they are items of the one GPU call's generator). Off ZeroGPU the pipeline is called here
    directly: the decorator is a no-op there, and the result needs no packing for a pickle."""
    if on_zero_gpu():
        check_quota(_dur_matte(image, prompt, variant, selected, max_objects))
        packed = None
        for kind, *item in _gpu_matte(image, prompt, variant, selected, max_objects, progress is not None):
            if kind == "stage" and progress is not None:
                progress(*item)
            elif kind == "error":
                raise item[0].rebuild()
            elif kind == "result":
                packed = item[0]
        if packed is None:
            raise ModelError("the GPU worker ended without a result; try again")
        result = expand(packed, image)
    else:
        result = SERVICES.pipeline().run(image, prompt, variant=variant, selected=selected, max_objects=max_objects,
                                         progress=progress)
    SERVICES.record("matte", result)
    return result


def gpu_detect(image: np.ndarray, text: str, box_threshold: float, text_threshold: float) -> list[Any]:
    dets, forwards = raised(_gpu_detect(image, text, float(box_threshold), float(text_threshold)))
    SERVICES.record("detect", detector_forwards=forwards)
    return list(dets)


def gpu_human(image: np.ndarray) -> MatteResult:
    result = expand(raised(_gpu_human(image)), image)
    SERVICES.record("human", result)
    return result
