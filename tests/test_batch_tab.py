"""The app's Batch tab (tiny random models): the per-photo loop, and the tab through gradio_client."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from semat.app.batch_tab import MODES, batch_images
from semat.errors import InputError
from semat.io.images import save_png
from semat.settings import Settings

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def tiny_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEMAT_TEST_MODELS", "tiny")
    monkeypatch.setenv("SEMAT_UI_OUTPUT_DIR", str(tmp_path / "ui-out"))


def photos(root: Path, n: int = 4) -> list[str]:
    rng = np.random.default_rng(1)
    out = [str(save_png(root / f"p{i}.png", rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))) for i in range(n)]
    (root / "broken.jpg").write_bytes(b"nope")
    return [*out[:2], str(root / "broken.jpg"), *out[2:]]


def test_words_batch_streams_progress_and_skips_failures(tmp_path: Path) -> None:
    states = []
    for st in batch_images(photos(tmp_path), MODES[0], "thing", 0.0, 0.0, "SEMat SAM", out_dir=tmp_path):
        states.append((st.done, st.status(), len(st.gallery), len(st.errors)))
    assert [s[0] for s in states] == [0, 1, 2, 3, 4, 5]
    assert states[0][1].startswith("⏳ Photo 1 of 5") and "left" in states[2][1]
    assert states[-1][2:] == (4, 1) and "4 of 5 photo(s) matted" in states[-1][1]
    with zipfile.ZipFile(tmp_path / "batch.zip") as zf:
        names = set(zf.namelist())
        rows = list(csv.DictReader(io.StringIO(zf.read("summary.csv").decode())))
    assert {f"p{i}.png" for i in range(4)} | {f"p{i}_rgba.png" for i in range(4)} | {"summary.csv"} == names
    assert [r["status"] for r in rows] == ["ok", "ok", "error", "ok", "ok"]


def test_human_mode_cap_and_empty_words(tmp_path: Path) -> None:
    paths = photos(tmp_path, 2)
    last = list(batch_images(paths[:2], MODES[1], None, out_dir=tmp_path))[-1]
    assert last.done == 2 and len(last.gallery) == 2
    with pytest.raises(InputError, match="more than"):
        next(batch_images(paths * 30, MODES[0], "x", out_dir=tmp_path))
    with pytest.raises(InputError):
        next(batch_images(paths, MODES[0], "  ", out_dir=tmp_path))
    with pytest.raises(InputError, match="photos"):
        next(batch_images([], MODES[0], "x", out_dir=tmp_path))


def test_batch_tab_through_gradio_client(tmp_path: Path) -> None:
    gr = pytest.importorskip("gradio")
    from gradio_client import Client, handle_file

    from semat.app.batch_tab import batch_tab

    with gr.Blocks() as demo, gr.Tabs():
        batch_tab(Settings.from_env())
    demo.queue()
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(url, verbose=False)
        status, gallery, zip_path, errors = client.predict(
            [handle_file(p) for p in photos(tmp_path, 2)], MODES[0], "thing", 0.0, 0.0, "SEMat SAM",
            api_name="/matte_batch")
    finally:
        demo.close()
    assert "2 of 3 photo(s) matted" in status and len(gallery) == 2
    assert zipfile.ZipFile(zip_path).namelist()[-1] == "summary.csv"
    assert len(errors["data"]) == 1 and "broken.jpg" in errors["data"][0][0]
