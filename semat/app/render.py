"""Result files and recompositing: what a run writes for the page and the download buttons."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semat import compose
from semat.app import editor as L
from semat.app.services import SERVICES
from semat.app.session import Shown, TabSession, resolve_image
from semat.app.zerogpu import on_zero_gpu
from semat.pipeline import MatteResult
from semat.settings import Settings


def test_mode() -> bool:
    return Settings.from_env().test_models


@functools.lru_cache(maxsize=1)
def _runtime_label() -> str:
    from semat.runtime import select_runtime

    try:
        return select_runtime().label
    except Exception as exc:
        return f"unavailable ({exc})"


def device_label(result_label: str | None = None) -> str:
    label = result_label or _runtime_label()
    return f"ZeroGPU · {label}" if on_zero_gpu() else label


@dataclass
class Rendered:
    mask: str | None
    alpha: str | None
    composite: str | None
    rgba: str | None
    alpha_dl: str | None
    zip: str | None
    info: str

    @property
    def files(self) -> tuple:
        return self.mask, self.alpha, self.composite, self.rgba, self.alpha_dl, self.zip, self.info


def composite_path(s: TabSession, background: compose.Background, bg_image: np.ndarray | None = None,
                   out_dir: Path | None = None) -> str:
    """Blend the session's result onto ``background`` and write it as a PNG."""
    from semat.io.images import save_png

    r = s.result
    assert r is not None
    if s.foreground is None:
        s.foreground = compose.estimate_foreground(r.image, r.alpha)
    out = compose.composite(r.image, r.alpha, background, bg_image=bg_image, foreground=s.foreground)
    label = background.kind if background.kind != "color" else background.label
    out_dir = out_dir or L.new_output_dir()
    path = out_dir / f"{s.stem}_composite_{L.safe_stem(str(label).replace('#', '').replace(':', '-'))}.png"
    save_png(path, out, compress_level=1)
    return str(path)


def ui_background(bg_mode: str | None, colour: str | None, bg_image: str | None,
                  blur: float | None) -> tuple[compose.Background, np.ndarray | None, list[str]]:
    """The UI's background controls → (Background, uploaded background array, notices)."""
    spec = L.background_spec(bg_mode, colour, blur)
    if spec != "image":
        return compose.parse_background(spec), None, []
    if not bg_image:
        return compose.parse_background("checker"), None, [
            "Upload a background image (or pick another background); showing a checkerboard."]
    from semat.io.images import load_image

    return compose.parse_background("image"), load_image(bg_image, name="background").rgb, []


def render(s: TabSession, result: MatteResult, background: compose.Background, bg_image: np.ndarray | None = None,
           extra_info: dict[str, Any] | None = None) -> Rendered:
    """Write the result's files and previews; remember the result for recompositing."""
    from semat.io.images import save_png

    s.result, s.foreground = result, None
    d = L.new_output_dir()
    stem = s.stem
    t0 = time.perf_counter()
    mask_path = save_png(d / f"{stem}_mask.png", (np.asarray(result.mask) > 0).astype(np.uint8) * 255)
    alpha_path = compose.save_alpha_png(d / f"{stem}_alpha.png", result.alpha)
    s.alpha_sha = L.file_sha(alpha_path)
    s.foreground = compose.estimate_foreground(result.image, result.alpha)
    rgba_path = save_png(d / f"{stem}_rgba.png", compose.rgba(result.image, result.alpha, s.foreground))
    zip_path = compose.write_zip(result, d / f"{stem}_layers.zip", foreground=s.foreground,
                                 manifest_extra={"app": "semat-space", "test_mode": test_mode()})
    comp = composite_path(s, background, bg_image, d)
    timings = dict(result.timings or {})
    timings["export"] = time.perf_counter() - t0
    info = L.timings_markdown(timings, device_label(result.device_label), extra_info)
    if test_mode():
        info += f"\n\n`test mode` inference calls so far: {json.dumps(SERVICES.calls)}"
    return Rendered(str(mask_path), str(alpha_path), comp, str(rgba_path), str(alpha_path), str(zip_path), info)


def recomposite_session(s: TabSession, background: compose.Background, bg_image: np.ndarray | None,
                        image_path: str | None, alpha_path: str | None) -> str | None:
    """Background changed: blend again from the cached alpha (no model call). Uses the session's
    result when the alpha on screen is the one it produced; otherwise (a cached example's
    outputs) rebuilds image + alpha from the files shown. None when there is nothing to blend."""
    if not alpha_path:
        return None
    alpha_sha = L.file_sha(alpha_path)
    if s.result is None or s.alpha_sha != alpha_sha:
        from semat.io.images import read_png

        if not image_path:
            return None
        image, _ = resolve_image(s, image_path)
        alpha = read_png(alpha_path)
        alpha = alpha[..., 0] if alpha.ndim == 3 else alpha
        if alpha.shape != image.shape[:2]:
            return None
        s.result = Shown(image, compose.as_alpha(alpha, image.shape[:2]))
        s.foreground, s.alpha_sha = None, alpha_sha
    return composite_path(s, background, bg_image)


def api_info(result: MatteResult, extra: dict[str, Any]) -> dict[str, Any]:
    """The info JSON of the named API endpoints."""
    return {
        "objects": [{"box": [float(v) for v in o.box], "label": o.label,
                     "score": None if o.score is None else float(o.score), "source": o.source}
                    for o in result.objects],
        "variant": result.variant,
        "device": device_label(result.device_label),
        "timings_s": {k: round(float(v), 4) for k, v in (result.timings or {}).items()},
        "notices": list(result.notices or []),
        "test_mode": test_mode(),
        **extra,
    }
