"""Fast tests of the app's Gradio-free logic: prompt parsing/editing, overlays, GPU budgets."""

from __future__ import annotations

import numpy as np
import pytest

from semat.app import editor as L


def test_parse_boxes_lines_json_and_sorting():
    assert L.parse_boxes("") == []
    assert L.parse_boxes("10, 20, 30, 40\n 50 60 70 80 ") == [(10, 20, 30, 40), (50, 60, 70, 80)]
    assert L.parse_boxes("[[30, 40, 10, 20]]") == [(10, 20, 30, 40)]  # corners in any order
    assert L.parse_boxes("1.5,2,3,4; 5,6,7,8") == [(1.5, 2, 3, 4), (5, 6, 7, 8)]
    with pytest.raises(L.PromptError, match="4 numbers"):
        L.parse_boxes("1, 2, 3")
    with pytest.raises(L.PromptError, match="4 numbers"):
        L.parse_boxes("[[1, 2, 3, 4, 5]]")


def test_parse_points_labels():
    assert L.parse_points("10, 20\n30 40 0\n5,6,+\n7,8,neg") == [(10, 20, 1), (30, 40, 0), (5, 6, 1), (7, 8, 0)]
    with pytest.raises(L.PromptError, match="label"):
        L.parse_points("1, 2, 7")
    with pytest.raises(L.PromptError, match="numbers"):
        L.parse_points("a, b")


def test_check_prompt_fits():
    L.check_prompt_fits([(0, 0, 10, 10)], [(5, 5, 1)], (20, 20))
    with pytest.raises(L.PromptError, match="no area"):
        L.check_prompt_fits([(5, 5, 5, 9)], [], (20, 20))
    with pytest.raises(L.PromptError, match="outside"):
        L.check_prompt_fits([(30, 30, 40, 40)], [], (20, 20))
    with pytest.raises(L.PromptError, match="outside"):
        L.check_prompt_fits([], [(25, 5, 1)], (20, 20))
    with pytest.raises(L.PromptError, match="too many boxes"):
        L.check_prompt_fits([(0, 0, 10, 10)] * (L.max_boxes() + 1), [], (20, 20))


def test_max_boxes_env(monkeypatch):
    monkeypatch.setenv("SEMAT_MAX_BOXES", "3")
    assert L.max_boxes() == 3
    monkeypatch.setenv("SEMAT_MAX_BOXES", "junk")
    assert L.max_boxes() == L.DEFAULT_MAX_BOXES


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


def test_gpu_duration_scales_with_work_and_is_clamped():
    small = L.gpu_duration(0.3, 1, "hq-sam")
    assert 10 <= small <= 20
    assert L.gpu_duration(12, 16, "hq-sam", detection=True) > L.gpu_duration(1, 4, "hq-sam", detection=True)
    assert L.gpu_duration(4, 4, "sam2") < L.gpu_duration(4, 4, "hq-sam")
    assert L.gpu_duration(50, 100, "hq-sam") == 120
    assert 10 <= L.gpu_duration(1, 0, None, human=True) <= 20


def test_background_spec_and_colours():
    assert L.background_spec("Transparent") == "transparent"
    assert L.background_spec("Checkerboard") == "checker"
    assert L.background_spec("Colour", "#12ab34") == "#12ab34"
    assert L.background_spec("Colour", "rgba(255, 0, 16, 1)") == "#ff0010"
    assert L.background_spec("Blur", None, 7) == "blur:7.0"
    assert L.background_spec("Image") == "image"
    with pytest.raises(L.PromptError):
        L.background_spec("Plaid")


def test_variant_of():
    assert L.variant_of("SEMat SAM2") == "sam2"
    assert L.variant_of("hq") == "hq-sam"
    assert L.variant_of(None) == "hq-sam"
    with pytest.raises(L.PromptError, match="unknown model"):
        L.variant_of("vit-h")


def test_output_dirs_and_names(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMAT_UI_OUTPUT_DIR", str(tmp_path))
    d = L.new_output_dir()
    assert d.parent == tmp_path and d.is_dir()
    assert L.safe_stem("my photo (1).JPG") == "my_photo_1"
    assert L.safe_stem("../../etc/passwd") == "passwd"
    f = d / "x.bin"
    f.write_bytes(b"abc")
    assert L.file_sha(f) == L.file_sha(str(f)) and L.file_sha(d / "missing") is None
