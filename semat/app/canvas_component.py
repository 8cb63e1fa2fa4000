"""The :class:`PromptCanvas` component: a ``gr.HTML`` subclass whose front end is
``static/canvas.{html,css,js}``; the gestures, the value and the events are documented in
:mod:`semat.app.canvas`."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import gradio as gr
import gradio.component_meta as _component_meta

from semat.app.canvas_contract import (
    MAX_BOXES,
    MAX_POINTS,
    CanvasValueError,
    load_json,
    sanitize_canvas_value,
)

__all__ = ["PromptCanvas"]

_STATIC = "static"


@cache
def _asset(name: str) -> str:
    try:
        return resources.files("semat.app").joinpath(_STATIC, name).read_text(encoding="utf-8")
    except FileNotFoundError:  # an install built without package data
        raise RuntimeError(f"semat/app/{_STATIC}/{name} is missing from this install; the package must ship "
                           "semat/app/static/* (setuptools package-data)") from None


def _checked_template(text: str, name: str) -> str:
    # html_template/css_template are evaluated as a JS template literal + Handlebars
    for bad in ("`", "${", "{{", "\\"):
        if bad in text:
            raise RuntimeError(f"{name} must not contain {bad!r} (gradio evaluates it as a template)")
    return text


def _no_pyi(*_args: Any, **_kwargs: Any) -> None:
    return None


# gradio's ComponentMeta writes a ``<module>.pyi`` stub next to the source of every Component
# subclass it creates; for PromptCanvas that would litter the package (and a read-only install),
# so the hook is switched off while the class is created.
_create_pyi = _component_meta.create_or_modify_pyi
_component_meta.create_or_modify_pyi = _no_pyi
try:

    class PromptCanvas(gr.HTML):
        """Boxes and ± points drawn on the picture, all in the browser (see :mod:`semat.app.canvas`).

        Parameters: ``value`` (a canvas value, e.g. from :func:`canvas_value`); ``max_boxes``, the
        app's matting limit (the canvas warns above it, "keep best N" starts at it);
        ``max_picture_height``, the largest height in CSS px of the picture (default 70 % of the window); ``mask_colour``, the
        tint of the mask overlay; the usual ``label``, ``elem_id``, ``elem_classes``, ``visible``,
        ``render``, ``key``, ``scale``, ``min_width``.
        """

        def __init__(
            self,
            value: dict[str, Any] | None = None,
            *,
            max_boxes: int = 16,
            max_picture_height: int | None = None,
            mask_colour: str = "#ff2d87",
            label: str | None = None,
            elem_id: str | None = None,
            elem_classes: list[str] | str | None = None,
            visible: bool = True,
            render: bool = True,
            key: int | str | None = None,
            scale: int | None = None,
            min_width: int | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(
                value=value,
                label=label,
                html_template=_checked_template(_asset("canvas.html"), "canvas.html"),
                css_template=_checked_template(_asset("canvas.css"), "canvas.css"),
                js_on_load=_asset("canvas.js"),
                apply_default_css=False,
                elem_id=elem_id,
                elem_classes=elem_classes,
                visible=visible,
                render=render,
                key=key,
                scale=scale,
                min_width=min_width,
                max_boxes=int(max_boxes),
                max_picture_height=max_picture_height,
                mask_colour=str(mask_colour),
                hard_max_boxes=MAX_BOXES,
                hard_max_points=MAX_POINTS,
                **kwargs,
            )

        def preprocess(self, payload: Any) -> dict[str, Any]:  # type: ignore[override]
            """The browser's value, checked: :func:`sanitize_canvas_value` (a bad one is a gr.Error)."""
            try:
                return sanitize_canvas_value(payload)
            except CanvasValueError as e:
                raise gr.Error(str(e), print_exception=False) from None

        def postprocess(self, value: Any) -> dict[str, Any] | None:  # type: ignore[override]
            if value is None:
                return None
            if isinstance(value, str):  # an API caller or a Python handler may pass JSON text
                value = load_json(value)
            return value

        def api_info(self) -> dict[str, Any]:
            num = {"type": "number"}
            return {
                "type": "object",
                "description": "Prompt canvas value; coordinates in original image pixels",
                "properties": {
                    "image": {"anyOf": [{"type": "null"}, {"type": "object", "properties": {
                        "src": {"type": "string"}, "width": {"type": "integer"}, "height": {"type": "integer"}},
                        "required": ["width", "height"]}]},
                    "boxes": {"type": "array", "maxItems": MAX_BOXES, "description": "[x1, y1, x2, y2, meta?]",
                              "items": {"type": "array", "items": {"anyOf": [num, {"type": "string"},
                                                                              {"type": "object"}]},
                                        "minItems": 4, "maxItems": 5}},
                    "points": {"type": "array", "maxItems": MAX_POINTS, "description": "[x, y, 1 include | 0 exclude]",
                               "items": {"type": "array", "items": num, "minItems": 2, "maxItems": 3}},
                    "mask": {"anyOf": [{"type": "null"}, {"type": "object"}]},
                    "selected": {"anyOf": [{"type": "null"}, {"type": "integer"}]},
                },
            }

        def example_payload(self) -> Any:
            return {"image": {"src": None, "width": 640, "height": 480}, "boxes": [[110, 40, 518, 470]],
                    "points": [[320, 200, 1]], "mask": None, "selected": None}

        def example_value(self) -> Any:
            return self.example_payload()

finally:
    _component_meta.create_or_modify_pyi = _create_pyi
