"""Files: alpha PNGs (8/16-bit), the RGBA cut-out PNG, and the layered ZIP with its manifest."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semat.compose.alpha import alpha_to_png8, alpha_to_png16
from semat.compose.blend import rgba
from semat.compose.foreground import estimate_foreground
from semat.errors import InputError
from semat.validate import check_image

if TYPE_CHECKING:  # pragma: no cover
    from semat.pipeline import MatteResult

__all__ = ["manifest", "save_alpha_png", "save_rgba_png", "write_zip"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def manifest(result: MatteResult, extra: dict | None = None) -> dict:
    """The ``manifest.json`` content for ``result`` (prompt, boxes, scores, model, timings)."""
    h, w = result.image.shape[:2]
    prompt = result.prompt
    data: dict[str, Any] = {
        "format": "semat-matte-zip/1",
        "image_size": {"width": int(w), "height": int(h)},
        "prompt": {
            "text": prompt.text,
            "boxes": [list(map(float, b)) for b in prompt.boxes],
            "points": [list(p) for p in prompt.points],
        },
        "thresholds": {"box_threshold": prompt.box_threshold, "text_threshold": prompt.text_threshold},
        "model": {"variant": result.variant, "checkpoint_sha256": result.checkpoint_sha256,
                  "device": result.device_label, "detector": getattr(result, "detector", None)},
        "objects": [],
        "timings_s": {k: round(float(v), 4) for k, v in result.timings.items()},
        "notices": list(result.notices),
    }
    for i, obj in enumerate(result.objects):
        data["objects"].append({
            "index": i, "label": obj.label, "score": None if obj.score is None else float(obj.score),
            "source": obj.source, "box": [float(v) for v in obj.box],
            "points": [list(p) for p in getattr(obj, "points", ())],
            "files": {"rgba": f"object_{i}.png", "alpha": f"alpha_{i}.png"},
        })
    data["files"] = {"union_rgba": "union.png", "union_alpha": "union_alpha.png",
                     "union_alpha_16bit": "union_alpha16.png"}
    if extra:
        data.update(_jsonable(extra))
    return _jsonable(data)


def save_rgba_png(path: str | os.PathLike, image: np.ndarray, alpha: np.ndarray,
                  foreground_estimation: bool = True, foreground: np.ndarray | None = None) -> Path:
    """Write the cut-out as an RGBA PNG (straight alpha, estimated foreground colours;
    ``foreground``: an :func:`estimate_foreground` result already computed for ``alpha``)."""
    from semat.io.images import save_png

    if foreground is None and foreground_estimation:
        foreground = estimate_foreground(image, alpha)
    return save_png(path, rgba(image, alpha, foreground))


def save_alpha_png(path: str | os.PathLike, alpha: np.ndarray, bits: int = 8) -> Path:
    """Write the alpha matte as an 8-bit or 16-bit grayscale PNG."""
    from semat.io.images import save_png

    if bits not in (8, 16):
        raise InputError(f"alpha PNGs are 8 or 16 bit, not {bits}")
    return save_png(path, alpha_to_png8(alpha) if bits == 8 else alpha_to_png16(alpha))


def write_zip(result: MatteResult, path: str | os.PathLike, manifest_extra: dict | None = None,
              foreground_estimation: bool = True, sixteen_bit: bool = False,
              foreground: np.ndarray | None = None) -> Path:
    """Write a ZIP: ``object_k.png`` (RGBA) + ``alpha_k.png`` per object, ``union.png`` (RGBA),
    ``union_alpha.png`` (8-bit), ``union_alpha16.png`` (16-bit) and ``manifest.json``.

    ``sixteen_bit=True`` also stores per-object 16-bit alphas (``alpha16_k.png``).
    The colours come from **one** foreground estimate, for the union alpha, used by the union
    and by every object's layer (each object's alpha is part of the union's):
    ``foreground`` when given (an :func:`estimate_foreground` result for ``result.alpha``),
    else computed once here. ``foreground_estimation=False`` stores the raw image colours.
    """
    from semat.io.images import encode_png

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = check_image(result.image)
    data = manifest(result, manifest_extra)
    data["foreground_estimation"] = bool(foreground_estimation)
    colours = None
    if foreground_estimation:
        colours = estimate_foreground(image, result.alpha) if foreground is None else foreground
    tmp = path.with_name(path.name + ".part")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for i, obj in enumerate(result.objects):
                zf.writestr(f"object_{i}.png", encode_png(rgba(image, obj.alpha, colours)))
                zf.writestr(f"alpha_{i}.png", encode_png(alpha_to_png8(obj.alpha)))
                if sixteen_bit:
                    zf.writestr(f"alpha16_{i}.png", encode_png(alpha_to_png16(obj.alpha)))
                    data["objects"][i]["files"]["alpha16"] = f"alpha16_{i}.png"
            zf.writestr("union.png", encode_png(rgba(image, result.alpha, colours)))
            zf.writestr("union_alpha.png", encode_png(alpha_to_png8(result.alpha)))
            zf.writestr("union_alpha16.png", encode_png(alpha_to_png16(result.alpha)))
            zf.writestr("manifest.json", json.dumps(data, indent=2))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path
