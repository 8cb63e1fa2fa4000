"""``semat matte`` with tiny random models (SEMAT_TEST_MODELS=tiny): files, sizes, errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semat.cli.main import main
from semat.cli.matte import parse_box, per_object_path, union_alpha

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def tiny_models(monkeypatch):
    monkeypatch.setenv("SEMAT_TEST_MODELS", "tiny")


@pytest.fixture()
def photo(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, size=(90, 130, 3), dtype=np.uint8)).save(path)
    return path


def test_single_box_writes_gray_alpha_at_original_size(tiny_models, photo: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out" / "alpha.png"
    assert main(["matte", str(photo), "--box", "10,5,100,80", "--variant", "sam", "-o", str(out)]) == 0
    img = Image.open(out)
    assert img.mode == "L" and img.size == (130, 90)
    assert not per_object_path(out, 1).exists()
    assert str(out) in capsys.readouterr().out


def test_several_boxes_union_and_per_object(tiny_models, photo: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.png"
    rgba = tmp_path / "cut.png"
    rc = main(["matte", str(photo), "--box", "10,5,100,80", "--box", "0,0,130,90", "--variant", "hq-sam",
               "--batch-size", "1", "-o", str(out), "--rgba", str(rgba)])
    assert rc == 0
    objects = [np.asarray(Image.open(tmp_path / f"a_{i}.png")) for i in (1, 2)]
    assert not (tmp_path / "a_3.png").exists()
    union = np.asarray(Image.open(out)).astype(int)
    expected = np.clip(objects[0].astype(int) + objects[1].astype(int), 0, 255)
    assert np.abs(union - expected).max() <= 2  # rounding of each 8-bit file
    cut = Image.open(rgba)
    assert cut.mode == "RGBA" and cut.size == (130, 90)
    np.testing.assert_array_equal(np.asarray(cut)[..., 3], np.asarray(Image.open(out)))


@pytest.mark.parametrize(("box", "message"), [
    ("200,10,250,50", "outside the 130x90 image"),
    ("10,10,10,50", "zero area"),
    ("50,10,10,50", "reversed"),
    ("10,x,20,30", "four numbers"),
    ("10,20,30", "four numbers"),
])
def test_bad_box_is_one_line_error(tiny_models, photo: Path, tmp_path: Path, capsys, box: str,
                                   message: str) -> None:
    out = tmp_path / "alpha.png"
    assert main(["matte", str(photo), f"--box={box}", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("semat: error:") and message in err[0]
    assert not out.exists()


def test_missing_box_and_missing_image(tiny_models, photo: Path, tmp_path: Path, capsys) -> None:
    assert main(["matte", str(photo), "-o", str(tmp_path / "a.png")]) == 2
    assert "--box" in capsys.readouterr().err
    assert main(["matte", str(tmp_path / "nope.jpg"), "--box", "1,1,5,5", "-o", str(tmp_path / "a.png")]) == 2
    assert "nope.jpg" in capsys.readouterr().err


def test_helpers() -> None:
    assert parse_box(" 1, 2.5,3 ,4") == (1.0, 2.5, 3.0, 4.0)
    assert per_object_path(Path("x/out.png"), 2) == Path("x/out_2.png")
    a = np.full((2, 2), 0.7, np.float32)
    np.testing.assert_allclose(union_alpha([a, a]), np.ones((2, 2)))


def test_console_script(photo: Path, tmp_path: Path) -> None:
    """The installed entry point runs end to end (subprocess, tiny model)."""
    out = tmp_path / "cli.png"
    env = dict(os.environ, SEMAT_TEST_MODELS="tiny")
    proc = subprocess.run([sys.executable, "-m", "semat.cli.main", "matte", str(photo), "--box", "5,5,60,60",
                           "--variant", "sam", "-o", str(out)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(out).size == (130, 90)
