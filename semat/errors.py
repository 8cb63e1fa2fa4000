"""The package's error hierarchy: every failure a user can see is a :class:`SematError`.

* :class:`InputError` — the request is wrong and the user can fix it (an unreadable image, a box
  outside the picture, an empty text prompt, a threshold out of range, a bad background, ...).
* :class:`ModelError` — the request is fine but a model cannot serve it (weights missing or
  corrupt, out of memory, an unusable device, a non-finite output).

Each message is one line that says what to do next. The CLI prints ``semat: error: <message>``
for any :class:`SematError` and a traceback for anything else (a bug); the app maps them by
``isinstance`` (:mod:`semat.app.errors`). ``InputError`` is also a ``ValueError`` and
``ModelError`` a ``RuntimeError``, so callers written against the builtin types keep working.
"""

from __future__ import annotations

__all__ = [
    "BoxError", "CheckpointError", "ImageInputError", "InputError", "ModelError", "NoDetectionError",
    "PointError", "PromptError", "SampleError", "SematError", "VideoInputError", "WeightsCorrupt",
    "WeightsUnavailable", "clip_text",
]

MAX_ECHO = 80  # characters of user input echoed back in a message


def clip_text(value: object, limit: int = MAX_ECHO) -> str:
    """``repr``-like echo of user input, cut to ``limit`` characters (messages never quote a
    whole 10,000-character field back)."""
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SematError(Exception):
    """Base of every error this package raises on purpose (one-line, user-facing message)."""

    title = "Error"


class InputError(SematError, ValueError):
    """The input cannot be used; the message says how to fix it."""

    title = "Check the input"


class ImageInputError(InputError):
    """An image (or background image) that cannot be read or is outside the accepted limits."""

    title = "Can't read this image"


class PromptError(InputError):
    """A text, box or point prompt that cannot be used."""

    title = "Check the prompt"


class BoxError(PromptError):
    """A box prompt that cannot be used."""


class PointError(PromptError):
    """A point (click) prompt that cannot be used."""


class NoDetectionError(PromptError):
    """The text prompt found nothing at the given thresholds (``best_score``: the highest score
    seen, so a message can say which threshold would have found something)."""

    title = "Nothing found"

    def __init__(self, message: str, best_score: float | None = None):
        super().__init__(message)
        self.best_score = best_score


class VideoInputError(InputError):
    """A video that cannot be read or written."""

    title = "Can't use this video"


class SampleError(InputError):
    """An evaluation sample (image / ground-truth pair) that cannot be scored."""


class ModelError(SematError, RuntimeError):
    """A model cannot run: weights, memory or device."""

    title = "Model unavailable"


class WeightsUnavailable(ModelError):
    """A weights file is missing and could not be downloaded (offline, hub down, ...)."""

    title = "Model weights missing"


class WeightsCorrupt(ModelError):
    """A weights file has the wrong size or sha256, or fails its integrity check."""

    title = "Model weights corrupt"


class CheckpointError(ModelError):
    """A checkpoint that does not fit the model (missing / unexpected / mis-shaped keys, or a
    file that is not a plain tensor state dict)."""

    title = "Model weights do not fit"
