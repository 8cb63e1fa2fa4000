"""Fast tests of the app's Gradio-free logic: prompt editing, overlays, background controls, files."""

from __future__ import annotations

import numpy as np
import pytest

from semat.app import editor as L


def test_editor_box_by_two_clicks_points_undo_clear():
    ed = L.PromptEditor()
    assert "First corner" in ed.click(50, 60, "Box corner")
    assert ed.corner == (50, 60) and ed.boxes_text == ""
    assert "Box 1" in ed.click(10, 20, "Box corner")
    assert ed.prompts() == ([(10, 20, 50, 60)], [])
    ed.click(30, 30, "Positive point")
    ed.click(40, 40, "Negative point")
    assert ed.prompts()[1] == [(30, 30, 1), (40, 40, 0)]
    ed.undo()
    assert ed.prompts()[1] == [(30, 30, 1)]
    ed.undo()
    ed.undo()  # the second corner
    assert ed.prompts() == ([], []) and ed.corner == (50, 60)
    ed.undo()
    assert ed.corner is None
    assert ed.undo() == "Nothing to undo."
    ed.click(1, 1, "Positive point")
    ed.clear()
    assert ed.prompts() == ([], []) and ed.corner is None
    ed.undo()  # clear is undoable
    assert ed.prompts()[1] == [(1, 1, 1)]


def test_editor_degenerate_box_and_typed_text():
    ed = L.PromptEditor()
    ed.click(5, 5, "Box corner")
    with pytest.raises(L.PromptError, match="no area"):
        ed.click(5, 40, "Box corner")
    assert ed.corner is None and ed.boxes_text == ""
    ed.sync("1, 2, 3, 4", "")  # typed by the user
    ed.click(10, 10, "Box corner")
    ed.click(20, 30, "Box corner")
    assert ed.prompts()[0] == [(1, 2, 3, 4), (10, 10, 20, 30)]
    ed.undo()
    ed.undo()
    ed.undo()
    assert ed.boxes_text == ""


def test_draw_overlay_marks_prompts_without_touching_input():
    img = np.full((60, 80, 3), 128, np.uint8)
    out = L.draw_overlay(img, [(10, 10, 50, 40)], [(70, 50, 1), (5, 55, 0)], ["cat 0.9"], {0}, (30, 30))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert (img == 128).all()
    assert not np.array_equal(out, img)
    assert tuple(out[50, 70]) == (0, 200, 0)  # positive point is green
    assert tuple(out[55, 5]) == (230, 0, 0)  # negative point is red


def test_background_spec_and_colours():
    assert L.background_spec("Transparent") == "transparent"
    assert L.background_spec("Checkerboard") == "checker"
    assert L.background_spec("Colour", "#12ab34") == "#12ab34"
    assert L.background_spec("Colour", "rgba(255, 0, 16, 1)") == "#ff0010"
    assert L.background_spec("Blur", None, 7) == "blur:7.0"
    assert L.background_spec("Image") == "image"
    with pytest.raises(L.PromptError):
        L.background_spec("Plaid")


def test_output_dirs_and_names(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMAT_UI_OUTPUT_DIR", str(tmp_path))
    d = L.new_output_dir()
    assert d.parent == tmp_path and d.is_dir()
    assert L.safe_stem("my photo (1).JPG") == "my_photo_1"
    assert L.safe_stem("../../etc/passwd") == "passwd"
    f = d / "x.bin"
    f.write_bytes(b"abc")
    assert L.file_sha(f) == L.file_sha(str(f)) and L.file_sha(d / "missing") is None
