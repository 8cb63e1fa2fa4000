"""The models behind the app: one pipeline shared by every session, preload, and honest counters.

This is the app's only composition root: models come from :func:`semat.pipeline.default_pipeline`
(and so from :mod:`semat.registry`, the one test-mode decision point).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from pathlib import Path
from typing import Any

from semat import registry
from semat.errors import SematError
from semat.pipeline import MatteResult, MattingPipeline, default_pipeline
from semat.settings import Settings

log = logging.getLogger("semat.app")


class Services:
    """Lazily built pipeline plus counters of inference calls (recompositing never counts)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._pipeline: MattingPipeline | None = None
        self.calls = {"detect": 0, "matte": 0, "human": 0}
        self.forwards = {"semat": 0, "detector": 0, "human": 0}  # counted from results: worker processes too
        self.variants_used: set[str] = set()
        self.unavailable: dict[str, str] = {}  # model name -> why it could not be preloaded
        self.started = time.time()

    @property
    def settings(self) -> Settings:
        return Settings.from_env()

    def pipeline(self) -> MattingPipeline:
        with self._lock:
            if self._pipeline is None:
                self._pipeline = default_pipeline(settings=self.settings)
            return self._pipeline

    def preload(self, variants: list[str]) -> None:
        """Load models now (ZeroGPU packs weights placed on the device at import time). A model that
        fails (Hub hiccup, corrupt file) is logged and left to load on first use; the app starts."""
        pipe = self.pipeline()
        steps: list[tuple[str, Any]] = [(v, functools.partial(pipe.predictor, v)) for v in variants]
        steps += [(registry.default("detector"), pipe.detector), (registry.default("human"), pipe.human)]
        for name, load in steps:
            try:
                load()
                self.unavailable.pop(name, None)
                if name in registry.names("semat"):
                    self.variants_used.add(name)
            except Exception as exc:
                why = str(exc) if isinstance(exc, SematError) else f"{type(exc).__name__}: {exc}"
                self.unavailable[name] = why[:300]
                log.warning("preload: %s is unavailable (%s); it will load on first use", name, why[:300])

    def record(self, kind: str, result: MatteResult | None = None, detector_forwards: int = 0) -> None:
        """Count one inference call in the serving process, with the forwards its result reports."""
        self.calls[kind] = self.calls.get(kind, 0) + 1
        if result is not None:
            self.forwards["semat"] += int(result.stats.get("model_forwards", 0))
            self.forwards["detector"] += int(result.stats.get("detector_forwards", 0))
            self.forwards["human"] += int(result.stats.get("human_forwards", 0))
            if result.variant in registry.names("semat"):
                self.variants_used.add(result.variant)
        self.forwards["detector"] += detector_forwards

    def status(self, zero_gpu: bool, device: str) -> dict[str, Any]:
        s = self.settings
        return {
            "test_mode": s.test_models,
            "zero_gpu": zero_gpu,
            "device": device,
            "inference_calls": dict(self.calls),
            "semat_forwards": self.forwards["semat"],
            "detector_forwards": self.forwards["detector"],
            "human_forwards": self.forwards["human"],
            "loaded_variants": sorted(self.variants_used),
            "unavailable_models": dict(self.unavailable),
            "max_boxes": s.max_boxes,
            "uptime_s": round(time.time() - self.started, 1),
        }


def prune_folder(root: Path, max_age_s: float = 3600.0, max_bytes: int = 1 << 30) -> int:
    """Delete files under ``root`` older than ``max_age_s``, then the oldest until the rest fits in
    ``max_bytes``; remove emptied folders. Returns the bytes freed. For the app's output folder and
    Gradio's upload cache, whose copies otherwise survive restarts."""
    if not root.is_dir():
        return 0
    now, freed = time.time(), 0
    files = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                st = path.stat()
                files.append((st.st_mtime, st.st_size, path))
        except OSError:
            continue
    files.sort()
    total = sum(size for _, size, _ in files)
    for mtime, size, path in files:
        if now - mtime <= max_age_s and total <= max_bytes:
            break
        try:
            path.unlink()
            freed += size
            total -= size
        except OSError:
            pass
    for d in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        try:
            d.rmdir()  # only empty ones
        except OSError:
            pass
    return freed


def prune_at_start_up() -> None:
    """Clean stale outputs and Gradio cache copies left by an earlier run (even after SIGTERM)."""
    from semat.app.editor import gradio_cache_dir, outputs_root

    out_bytes = int(Settings.from_env().output_max_mb * 1e6)
    for root, max_bytes in ((outputs_root(), out_bytes), (gradio_cache_dir(), max(out_bytes, 1 << 30))):
        freed = prune_folder(root, max_bytes=max_bytes)
        if freed:
            log.info("start-up: removed %.1f MB of stale files from %s", freed / 1e6, root)


def warm_up_inputs() -> tuple[Any, Any]:
    """A small ``uint8`` image and ``float32`` matte whose unknown band spans two row strips, so the
    warm-up runs the foreground estimator the way a request does: the same dtypes and layouts, and
    two strips in parallel threads (pymatting's kernels have one explicit signature each, so there
    is no other specialisation to compile; what a request would pay on top is the load itself)."""
    import numpy as np

    h, w = 160, 96
    yy = np.arange(h, dtype=np.float32)[:, None] + np.zeros((1, w), np.float32)
    alpha = np.clip(np.abs(yy - h / 2) / 12.0 - 2.0, 0.0, 1.0).astype(np.float32)  # two soft edges
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return image, alpha


def warm_up() -> threading.Thread:
    """Compile (or load from numba's cache) the foreground estimator's kernels now, in a background
    thread outside any GPU function, so the first visitor does not pay the JIT. Only the three
    kernels of pymatting's ML estimator are compiled (:func:`semat.compose.foreground.pymatting_ml`);
    a request that arrives meanwhile waits for this one load instead of starting its own."""

    def run() -> None:
        from semat.compose import estimate_foreground

        t0 = time.perf_counter()
        try:
            estimate_foreground(*warm_up_inputs())
            log.info("foreground estimation warmed up in %.1f s", time.perf_counter() - t0)
        except Exception as exc:
            log.warning("foreground estimation warm-up failed: %s", exc)

    thread = threading.Thread(target=run, name="semat-warm-up", daemon=True)
    thread.start()
    return thread


SERVICES = Services()
