"""Notices in the status line (issue 12): a run's notices end its status lines ("✓ … ℹ️ …"), not
only a toast, and a fresh image's loading notices come back with its first result."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from semat.app import handlers as H
from semat.app import progress as P
from semat.app.canvas_text import canvas_to_text
from semat.app.session import TabSession, load_into

NO_BG = "Upload a background image (or pick another background); showing a checkerboard."


def test_notice_text_is_one_line_with_file_names_kept_literal():
    assert P.notice_text([]) == ""
    text = P.notice_text(["my_photo*.jpg is 4000×3000 (12.0 MP); downscaled to 400×300 (0.1 MP).", "box 1 clipped"])
    assert text == r" ℹ️ my\_photo\*.jpg is 4000×3000 (12.0 MP); downscaled to 400×300 (0.1 MP). · box 1 clipped."
    assert P.repeated(["No person found: SGHM's person mask is empty", "x"]) == ["x"]


def _run(s: TabSession, bg_mode: str) -> tuple[list[str], str]:
    h, w = s.image.shape[:2]
    value = {"image": {"src": "/gradio_api/file=x.jpg", "width": w, "height": h},
             "boxes": [[5, 5, w - 20, h - 20]], "points": []}
    rows = list(H.cut_matte(value, *canvas_to_text(value), "", 0.35, 0.25, "SEMat SAM", bg_mode, "#00ff00", None, 0,
                            s))
    done = H.prepare_downloads(bg_mode, "#00ff00", None, 0, s)[-1]
    return [r[1] for r in rows], done


def test_a_run_says_its_notices_and_a_fresh_image_its_loading_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMAT_TEST_MODELS", "tiny")
    monkeypatch.setenv("SEMAT_UI_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("SEMAT_MAX_MEGAPIXELS", "0.01")
    photo = tmp_path / "big_photo.png"
    yy, xx = np.mgrid[0:150, 0:200]
    Image.fromarray(np.dstack([xx % 256, yy % 256, np.full_like(xx, 90)]).astype(np.uint8)).save(photo)
    s = TabSession()
    s.notices = load_into(s, str(photo))
    assert any("downscaled" in n for n in s.notices), s.notices
    loading = P.notice_text(s.notices)

    rows, done = _run(s, "Image")  # Image mode without an image: a notice, and a checkerboard
    assert rows[-1].startswith("✓ 1 object matted") and rows[-1].endswith(loading + P.notice_text([NO_BG])), rows[-1]
    assert done.startswith("✓ **Done.**") and done.endswith(P.notice_text([*s.notices, NO_BG])), done
    assert r"big\_photo.png" in done and NO_BG.rstrip(".") in done

    rows, done = _run(s, "Transparent")  # the same image again, nothing to say: no notice
    assert "ℹ️" not in rows[-1] and "ℹ️" not in done, (rows[-1], done)

    # a background switched after the run: its notice in the status line, and in the Done line after
    with pytest.warns(UserWarning, match="Upload a background image"):  # still a toast too (gr.Warning)
        mode, _, _, said = H.recomposite_as("Image")("Transparent", "#00ff00", None, 0, s)
    assert mode == "Image" and said == P.notice_text([NO_BG]), said
    done = H.prepare_downloads("Image", "#00ff00", None, 0, s)[-1]
    assert done.startswith("✓ **Done.**") and done.endswith(P.notice_text([NO_BG])), done
