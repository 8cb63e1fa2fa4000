"""Exceptions → what the user sees: one ``gr.Error`` with a title and a next step, mapped by
``isinstance`` over :mod:`semat.errors`. Expected errors log one line; only bugs log a traceback."""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable

import gradio as gr

from semat.errors import ImageInputError, InputError, ModelError, SematError, WeightsUnavailable

log = logging.getLogger("semat.app")

#: extra advice appended to a class's own message
_ADVICE: list[tuple[type[BaseException], str]] = [
    (ImageInputError, " Upload a JPEG, PNG or WebP photo instead."),
    (WeightsUnavailable, " The app keeps running: try another tab or model, or place the file and run again."),
]


def user_error(message: str, title: str) -> gr.Error:
    """A gr.Error for an expected user-side problem (no server traceback in the log)."""
    return gr.Error(message, title=title, print_exception=False)


def to_gr_error(exc: BaseException) -> gr.Error:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    if msg.split(" ", 1)[0].isalpha() and msg[:1].islower():  # a word, not a file name such as holiday.png
        msg = msg[:1].upper() + msg[1:]
    if isinstance(exc, SematError):
        extra = next((a for cls, a in _ADVICE if isinstance(exc, cls)), "")
        log.info("%s: %s", type(exc).__name__, msg[:300])
        return user_error(msg.rstrip(".") + "." + extra if extra else msg, exc.title)
    if isinstance(exc, MemoryError) or "out of memory" in msg.lower():
        log.warning("out of memory: %s", msg[:200])
        return user_error("Ran out of memory for this image. Try a smaller image or fewer boxes.", "Out of memory")
    log.error("unexpected error in the app:\n%s", "".join(traceback.format_exception(exc)))
    return gr.Error(f"Unexpected error ({type(exc).__name__}: {msg[:200]}). Try again; if it persists, try a "
                    "smaller image or another model.", title="Something went wrong")


def friendly(fn: Callable) -> Callable:
    """Turn failures into one gr.Error that says what to do next; the app keeps serving."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:
            raise to_gr_error(exc) from exc

    return wrapper


def InputImage(**kwargs) -> gr.Image:
    """A ``gr.Image`` whose unreadable uploads end in one friendly gr.Error (not a bare "Error").

    Wraps the instance's ``preprocess`` (a subclass would make Gradio write a ``.pyi`` stub
    next to this module at import).
    """
    img = gr.Image(**kwargs)
    original = img.preprocess

    def preprocess(payload):
        try:
            if img.type == "filepath" and (getattr(payload, "url", None) or "")[:5].lower() == "data:":
                from semat.app.editor import data_url_file

                return data_url_file(payload.url, img.GRADIO_CACHE, getattr(payload, "orig_name", None))
            return original(payload)
        except gr.Error:
            raise
        except SematError as exc:  # a limit of ours (data: URL caps): its own message
            raise to_gr_error(exc) from exc
        except Exception as exc:
            from semat.io.images import unreadable_message

            name = getattr(payload, "orig_name", None) or "The file"
            raise gr.Error(f"{unreadable_message(name)}. Upload a JPEG, PNG or WebP photo instead.",
                           title="Can't read this image", print_exception=False) from exc

    img.preprocess = preprocess  # type: ignore[method-assign]
    return img


__all__ = ["InputError", "InputImage", "ModelError", "friendly", "to_gr_error", "user_error"]
