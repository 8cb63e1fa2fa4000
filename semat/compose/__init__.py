"""Compositing and exports: turn an image + alpha into the files and previews people want.

Everything here is CPU NumPy/OpenCV work on finished mattes, so changing a background never
touches a model. Modules:

* :mod:`~semat.compose.alpha`: the alpha check, 8/16-bit alpha conversions;
* :mod:`~semat.compose.background`: :class:`Background`, :func:`parse_background` (paths only with
  ``allow_path=True``; bounded blur and colours), checkerboard, blur and image backgrounds;
* :mod:`~semat.compose.foreground`: foreground colour estimation on the matte's unknown band;
* :mod:`~semat.compose.blend`: :func:`rgba` and :func:`composite`;
* :mod:`~semat.compose.export`: alpha / RGBA PNG writers, the layered ZIP and its manifest.

Conventions:

* ``image``: ``HxWx3`` ``uint8`` RGB following :func:`semat.validate.check_image`; ``alpha``: ``HxW``
  float in [0, 1] (values outside are clipped); outputs are ``uint8`` (RGB, or RGBA for the
  transparent background).
* Alpha is *straight* (not premultiplied): an RGBA pixel stores the estimated foreground colour
  and the alpha separately, as PNG expects.
* **Foreground colour estimation** (``foreground_estimation=True``, the default) replaces the
  image colours in semi-transparent pixels with an estimate of the object's own colour
  (pymatting's ``estimate_foreground_ml`` by default), so hair edges stop carrying the old
  background's colour onto the new one. Fully opaque pixels keep their exact original colours.
  Switch it off to blend the raw image.
"""

from __future__ import annotations

from semat.compose.alpha import alpha_to_png8, alpha_to_png16, as_alpha
from semat.compose.background import (
    BACKGROUND_KINDS,
    DEFAULT_BLUR_FRACTION,
    MAX_BLUR_SIGMA,
    NAMED_COLOURS,
    REFUSED_BACKGROUND,
    Background,
    background_array,
    blurred,
    checkerboard,
    fit_cover,
    parse_background,
    parse_colour,
)
from semat.compose.blend import composite, rgba
from semat.compose.export import manifest, save_alpha_png, save_rgba_png, write_zip
from semat.compose.foreground import (
    DEFAULT_FOREGROUND_METHOD,
    FOREGROUND_METHODS,
    estimate_foreground,
    foreground_colours,
    unknown_band,
)

__all__ = [
    "BACKGROUND_KINDS", "DEFAULT_BLUR_FRACTION", "DEFAULT_FOREGROUND_METHOD", "FOREGROUND_METHODS",
    "MAX_BLUR_SIGMA", "NAMED_COLOURS", "REFUSED_BACKGROUND", "Background", "alpha_to_png8", "alpha_to_png16",
    "as_alpha", "background_array", "blurred", "checkerboard", "composite", "estimate_foreground",
    "fit_cover", "foreground_colours", "manifest", "parse_background", "parse_colour", "rgba",
    "save_alpha_png", "save_rgba_png", "unknown_band", "write_zip",
]
