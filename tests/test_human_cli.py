"""`semat human` on tiny inputs with the tiny random SGHM (SEMAT_TEST_MODELS=tiny)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from semat.cli.main import main


@pytest.fixture(autouse=True)
def tiny_models(monkeypatch):
    monkeypatch.setenv("SEMAT_TEST_MODELS", "tiny")


def _image(path, w, h, seed=0):
    Image.fromarray(np.random.RandomState(seed).randint(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


def test_folder_with_a_bad_file_is_reported_and_the_rest_continue(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    _image(src / "a.png", 40, 30, 1)
    _image(src / "b.jpg", 33, 57, 2)
    (src / "broken.png").write_bytes(b"not a png at all")
    (src / "notes.txt").write_text("ignored: not an image extension")
    out = tmp_path / "out"
    rc = main(["human", str(src), "-o", str(out), "--rgba", "--composite", "#00ff00"])
    err = capsys.readouterr().err
    assert rc == 1  # one input failed
    assert "broken.png" in err and "Traceback" not in err
    for stem, (w, h) in {"a": (40, 30), "b": (33, 57)}.items():
        alpha = np.array(Image.open(out / f"{stem}.png"))
        assert alpha.dtype == np.uint8 and alpha.shape == (h, w)
        assert np.array(Image.open(out / f"{stem}_rgba.png")).shape == (h, w, 4)
        assert np.array(Image.open(out / f"{stem}_composite.png")).shape == (h, w, 3)
    assert not (out / "broken.png").exists()


def test_files_and_progress_bar(tmp_path, capsys):
    _image(tmp_path / "x.png", 20, 24)
    out = tmp_path / "out"
    assert main(["human", str(tmp_path / "x.png"), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "human matting" in captured.err  # tqdm bar on stderr
    assert "1 alpha matte(s)" in captured.out
    assert (out / "x.png").is_file()


def test_gt_dir_scores(tmp_path, capsys):
    src, gt = tmp_path / "in", tmp_path / "gt"
    src.mkdir()
    gt.mkdir()
    for i, stem in enumerate(["p", "q"]):
        _image(src / f"{stem}.png", 32, 24, i)
        Image.fromarray((np.random.RandomState(9 + i).rand(24, 32) * 255).astype(np.uint8)).save(gt / f"{stem}.png")
    out = tmp_path / "out"
    assert main(["human", str(src), "-o", str(out), "--gt-dir", str(gt), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "mean" in text and "SAD" in text and "Conn" in text
    data = json.loads((out / "metrics.json").read_text())
    assert data["count"] == 2
    assert set(data["mean"]) >= {"MSE", "SAD", "Grad", "Conn"}
    sad_mean = np.mean([r["SAD"] for r in data["per_image"]])
    assert data["mean"]["SAD"] == pytest.approx(sad_mean)


@pytest.mark.parametrize("args, needle", [
    (["human", "nope.png", "-o", "OUT"], "no input images"),
    (["human", "IMG", "-o", "OUT", "--composite", "not-a-colour"], "background"),
    (["human", "IMG", "-o", "OUT", "--max-side", "10"], "max-side"),
])
def test_usage_errors_are_one_line(tmp_path, capsys, args, needle):
    _image(tmp_path / "img.png", 16, 16)
    args = [str(tmp_path / "img.png") if a == "IMG" else str(tmp_path / "out") if a == "OUT" else a for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_only_bad_files_is_an_error(tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    assert main(["human", str(tmp_path / "bad.png"), "-o", str(tmp_path / "out"), "--no-progress"]) == 2
    assert "no image could be processed" in capsys.readouterr().err
