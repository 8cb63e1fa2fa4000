"""Fast tests of the app's Gradio-free logic: prompt editing, overlays, background controls, files."""

from __future__ import annotations

import pytest

from semat.app import editor as L


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
