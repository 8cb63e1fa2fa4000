"""Unit tests of the prompt canvas's Python side (no browser): value checks, helpers, text sync."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

canvas = pytest.importorskip("semat.app.canvas")
from semat.app.canvas import (  # noqa: E402
    CANVAS_TO_TEXT_JS,
    MAX_BOXES,
    CanvasValueError,
    PromptCanvas,
    canvas_from_text,
    canvas_to_text,
    canvas_value,
    keep_best,
    mask_file,
    parse_canvas_value,
    preview_file,
    sanitize_canvas_value,
    updated,
    uploaded_path,
    with_mask,
)

URL = "https://example.org/preview.jpg"


def _value(boxes=(), points=(), w=4000, h=3000, **extra):
    return {"image": {"src": URL, "width": w, "height": h}, "boxes": list(boxes), "points": list(points), **extra}


# ------------------------------------------------------------------------------ parsing

def test_parse_keeps_original_pixels_and_drops_unticked_boxes():
    v = _value(boxes=[[10, 20, 300, 400], [500, 600, 700, 800, {"label": "cat", "score": 0.9, "enabled": False}],
                      [900, 100, 1000, 200, "dog"]],
               points=[[5, 6, 1], [7, 8, 0], [9, 10]], selected=2)
    p = parse_canvas_value(v)
    assert p.size == (4000, 3000)
    assert p.boxes == [(10, 20, 300, 400), (900, 100, 1000, 200)]
    assert p.box_index == [0, 2] and p.labels == ["", "dog"] and p.scores == [None, None]
    assert p.points == [(5, 6, 1), (7, 8, 0), (9, 10, 1)]
    assert p.selected == 2
    boxes, points, *_ = p  # unpacks like a tuple
    assert len(boxes) == 2 and len(points) == 3


def test_reversed_corners_are_sorted_and_edge_rounding_is_clamped():
    v = sanitize_canvas_value(_value(boxes=[[300, 400, 10, 20], [-1.5, -2, 4001, 3002]], points=[[4000.4, -1, 0]]))
    assert v["boxes"] == [[10, 20, 300, 400], [0, 0, 4000, 3000]]
    assert v["points"] == [[3999, 0, 0]]


@pytest.mark.parametrize("bad, words", [
    ([[float("nan"), 0, 10, 10]], "finite"),
    ([[0, 0, math.inf, 10]], "finite"),
    ([["12", 0, 10, 10]], "must be a number"),
    ([[True, 0, 10, 10]], "must be a number"),
    ([[0, 0, 10]], "must be [x1, y1, x2, y2]"),
    ([[0, 0, 10, 10, 5, 6]], "must be [x1, y1, x2, y2]"),
    ([[5, 5, 5, 200]], "no area"),
    ([[0, 0, 90000, 10]], "does not fit the 4000×3000 image"),
    ([[-500, 0, -100, 10]], "does not fit"),
    ([[0, 0, 10, 10, 42]], "label or a dict"),
    ([[0, 0, 10, 10, {"score": "high"}]], "score must be a number"),
    ("0, 0, 10, 10", "boxes must be a list"),
])
def test_bad_boxes_are_rejected_with_a_clear_message(bad, words):
    with pytest.raises(CanvasValueError, match=r"box") as e:
        parse_canvas_value({**_value(), "boxes": bad})
    assert words in str(e.value)
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize("bad, words", [
    ([[1, 2, 2]], "label must be 1 (include) or 0 (exclude)"),
    ([[1, 2, "1"]], "label must be 1"),
    ([[1, 2, -1]], "label must be 1"),
    ([[1, float("nan"), 1]], "finite"),
    ([[1]], "must be [x, y, label]"),
    ([[9000, 10, 1]], "lies outside the 4000×3000 image"),
    ({"x": 1}, "points must be a list"),
])
def test_bad_points_are_rejected(bad, words):
    with pytest.raises(CanvasValueError) as e:
        parse_canvas_value({**_value(), "points": bad})
    assert words in str(e.value)


def test_huge_counts_are_rejected():
    with pytest.raises(CanvasValueError, match=r"too many boxes \(257; at most 256\)"):
        sanitize_canvas_value(_value(boxes=[[0, 0, 10, 10]] * (MAX_BOXES + 1)))
    with pytest.raises(CanvasValueError, match="too many points"):
        sanitize_canvas_value(_value(points=[[1, 1, 1]] * 100_000))
    # and a smaller app limit can be asked for
    with pytest.raises(CanvasValueError, match="at most 2"):
        sanitize_canvas_value(_value(boxes=[[0, 0, 10, 10]] * 3), max_boxes=2)


@pytest.mark.parametrize("image, words", [
    ({"src": URL, "width": -4000, "height": 3000}, "image width must be a whole number of pixels"),
    ({"src": URL, "width": 0, "height": 3000}, "image width"),
    ({"src": URL, "width": 4000, "height": 2.5}, "image height"),
    ({"src": URL, "width": 4000, "height": float("nan")}, "finite"),
    ({"src": URL, "width": "4000", "height": 3000}, "must be a number"),
    ({"src": "javascript:alert(1)", "width": 40, "height": 30}, "image src must be"),
    ({"src": "data:image/svg+xml,<svg/>", "width": 40, "height": 30}, "image src must be"),
    ("cat.jpg", "image must be an object"),
])
def test_bad_images_are_rejected(image, words):
    with pytest.raises(CanvasValueError) as e:
        sanitize_canvas_value({"image": image})
    assert words in str(e.value)


def test_prompt_without_image_is_rejected_and_empty_values_are_fine():
    with pytest.raises(CanvasValueError, match="upload an image first"):
        parse_canvas_value({"image": None, "boxes": [[0, 0, 10, 10]]})
    for empty in (None, "", {}, "null"):
        p = parse_canvas_value(empty)
        assert p.boxes == [] and p.points == [] and p.size is None


def test_json_text_and_bad_json():
    v = _value(boxes=[[1, 2, 30, 40]])
    assert parse_canvas_value(json.dumps(v)).boxes == [(1, 2, 30, 40)]
    with pytest.raises(CanvasValueError, match="not valid JSON"):
        parse_canvas_value("{boxes: [")
    with pytest.raises(CanvasValueError, match="JSON object"):
        parse_canvas_value([[1, 2, 3, 4]])


def test_metadata_is_bounded_and_unknown_keys_dropped():
    v = sanitize_canvas_value(_value(boxes=[[0, 0, 10, 10, {"label": "x" * 500, "score": 7, "colour": 70,
                                                            "evil": "<img onerror=alert(1)>"}]],
                                     extra="dropped", selected=99, rev=3))
    meta = v["boxes"][0][4]
    assert len(meta["label"]) == 80 and meta["score"] == 1.0 and meta["colour"] == 6 and "evil" not in meta
    assert "extra" not in v and v["selected"] is None and v["rev"] == 3


def test_mask_checks():
    v = sanitize_canvas_value(_value(mask={"src": "/gradio_api/file=/tmp/m.png", "opacity": 3}))
    assert v["mask"] == {"src": "/gradio_api/file=/tmp/m.png", "opacity": 1.0, "mode": "luminance"}
    with pytest.raises(CanvasValueError, match="mask mode"):
        sanitize_canvas_value(_value(mask={"src": URL, "mode": "xor"}))
    with pytest.raises(CanvasValueError, match="mask opacity must be a finite number"):
        sanitize_canvas_value(_value(mask={"src": URL, "opacity": float("nan")}))


# ------------------------------------------------------------------------------ building

def test_canvas_value_from_array_writes_a_small_preview(tmp_path):
    photo = np.zeros((3000, 4000, 3), np.uint8)
    photo[:, 2000:] = 255
    v = canvas_value(photo, boxes=[[10, 20, 300, 400]], points=[[5, 6, 0]])
    assert v["image"]["width"] == 4000 and v["image"]["height"] == 3000
    f = v["image"]["file"]
    assert f["meta"] == {"_type": "gradio.FileData"}
    with Image.open(f["path"]) as im:
        assert im.format == "JPEG" and max(im.size) == 2048 and im.size == (2048, 1536)
    p = preview_file(photo, max_side=512, directory=tmp_path)
    assert p.parent == tmp_path and preview_file(photo, max_side=512, directory=tmp_path) == p  # by content
    # an RGBA preview is flattened on white; a mask becomes a small greyscale PNG
    rgba = Image.new("RGBA", (100, 50), (0, 0, 0, 0))
    with Image.open(preview_file(rgba, directory=tmp_path)) as im:
        assert im.mode == "RGB" and im.getpixel((3, 3)) == (255, 255, 255)
    m = mask_file(np.ones((3000, 4000), np.float32), directory=tmp_path)
    with Image.open(m) as im:
        assert im.mode == "L" and im.size == (1024, 768) and im.getpixel((5, 5)) == 255


def test_canvas_value_with_detections_and_best():
    v = canvas_value(URL, 640, 480, [[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 90, 90]],
                     labels=["cat", "dog", "cat"], scores=[0.5, 0.9, 0.7], best=2)
    p = parse_canvas_value(v)
    assert p.box_index == [1, 2] and p.labels == ["dog", "cat"] and p.scores == [0.9, 0.7]
    assert v["boxes"][0][4] == {"label": "cat", "score": 0.5, "enabled": False}
    assert parse_canvas_value(keep_best(v, 3)).box_index == [0, 1, 2]
    assert parse_canvas_value(keep_best(v, 0)).boxes == []
    with pytest.raises(ValueError, match="width and height"):
        canvas_value(URL)


def test_with_mask_and_updated_keep_the_edit_counter(tmp_path):
    v = _value(boxes=[[0, 0, 100, 100]], rev=7)
    m = with_mask(v, np.zeros((30, 40), np.uint8), opacity=0.3)
    assert m["rev"] == 7 and m["mask"]["opacity"] == 0.3 and m["mask"]["file"]["path"].endswith(".png")
    assert m["boxes"] == [[0, 0, 100, 100]]
    assert with_mask(m, None)["mask"] is None
    assert updated(v, selected=0)["selected"] == 0 and updated(v, selected=0)["rev"] == 7


# ------------------------------------------------------------------------------ keyboard text

def test_canvas_to_text_matches_the_keyboard_formats():
    v = _value(boxes=[[10, 20, 300.5, 400], [1, 1, 5, 5, {"enabled": False}]], points=[[5, 6, 1], [7.25, 8, 0]])
    boxes_text, points_text = canvas_to_text(v)
    assert boxes_text == "10, 20, 300.5, 400"
    assert points_text == "5, 6, 1\n7.2, 8, 0"
    from semat.app.canvas import parse_boxes, parse_points

    assert parse_boxes(boxes_text) == [(10, 20, 300.5, 400)]
    assert parse_points(points_text)[0] == (5, 6, 1)


def test_canvas_from_text_keeps_labels_and_unticked_boxes():
    v = _value(boxes=[[0, 0, 10, 10, {"label": "cat", "score": 0.8}], [20, 20, 30, 30, {"label": "dog", "enabled": False}]],
               points=[[1, 1, 1]], rev=4)
    same = canvas_from_text(v, "0, 0, 10, 10", "1, 1, 1")
    assert same == sanitize_canvas_value(v)               # nothing typed differently: unchanged
    new = canvas_from_text(v, "0, 0, 12, 12\n100, 100, 200, 200", "50, 60, 0\n70, 80")
    assert new["boxes"] == [[0, 0, 12, 12, {"label": "cat", "score": 0.8}],
                            [20, 20, 30, 30, {"label": "dog", "enabled": False}], [100, 100, 200, 200]]
    assert new["points"] == [[50, 60, 0], [70, 80, 1]] and "rev" not in new
    assert canvas_from_text(v, "", "")["boxes"] == [[20, 20, 30, 30, {"label": "dog", "enabled": False}]]
    with pytest.raises(ValueError, match="needs 4 numbers"):
        canvas_from_text(v, "1, 2, 3", "")
    with pytest.raises(CanvasValueError, match="does not fit"):
        canvas_from_text(v, "0, 0, 90000, 10", "")
    with pytest.raises(CanvasValueError, match="upload an image first"):
        canvas_from_text(None, "0, 0, 10, 10", "")


def test_js_formatter_is_plain_js():
    assert CANVAS_TO_TEXT_JS.startswith("(v, b, p) =>") and '"\\n"' in CANVAS_TO_TEXT_JS


# ------------------------------------------------------------------------------ component

def test_component_config_preprocess_and_api_info():
    from gradio_client.utils import json_schema_to_python_type

    c = PromptCanvas(max_boxes=5, elem_id="c")
    cfg = c.get_config()
    assert cfg["props"]["max_boxes"] == 5 and cfg["apply_default_css"] is False
    assert "pc-root" in cfg["html_template"] and "touch-action: none" in cfg["css_template"]
    assert "trigger(\"upload\"" in cfg["js_on_load"] and "trigger(\"select\"" in cfg["js_on_load"]
    for bad in ("`", "${", "{{", "\\"):  # gradio evaluates these two as templates
        assert bad not in cfg["html_template"] and bad not in cfg["css_template"]
    assert c.preprocess(_value(boxes=[[3, 4, 1, 2]]))["boxes"] == [[1, 2, 3, 4]]
    import gradio as gr

    with pytest.raises(gr.Error, match="finite"):
        c.preprocess(_value(boxes=[[0, 0, float("inf"), 1]]))
    assert "boxes" in json_schema_to_python_type(c.api_info())
    assert c.postprocess(json.dumps(_value()))["image"]["width"] == 4000
    # events the front end triggers are listenable
    for ev in ("change", "input", "upload", "select"):
        assert callable(getattr(c, ev))


def test_no_pyi_stub_is_written_next_to_the_module():
    from pathlib import Path

    assert not Path(canvas.__file__).with_suffix(".pyi").exists()


def test_uploaded_path_accepts_only_gradio_uploads(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    (tmp_path / "gradio" / "abc").mkdir(parents=True)
    ok = tmp_path / "gradio" / "abc" / "photo.png"
    ok.write_bytes(b"x")
    assert uploaded_path({"path": str(ok)}) == ok.resolve()

    import gradio as gr

    assert uploaded_path(gr.EventData(None, {"path": str(ok)})) == ok.resolve()
    for bad in ({"path": "/etc/passwd"}, {"path": str(tmp_path / "gradio" / ".." / "x")}, {}, {"path": 3}):
        with pytest.raises(CanvasValueError):
            uploaded_path(bad)


def test_a_photo_path_is_shown_upright_with_its_upright_size(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown rotated by 90°
    Image.new("RGB", (40, 30), (10, 200, 10)).save(path, exif=exif)
    v = canvas_value(path)
    assert (v["image"]["width"], v["image"]["height"]) == (30, 40)
    assert v["image"]["file"]["path"] == str(path)
    with Image.open(preview_file(path, directory=tmp_path)) as im:
        assert im.size == (30, 40)
