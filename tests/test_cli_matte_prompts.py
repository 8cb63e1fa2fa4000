"""``semat matte`` with words, clicks, backgrounds and ZIP export (tiny random models)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from semat.cli.main import main
from semat.io.images import read_png, save_png

H, W = 72, 96


@pytest.fixture(autouse=True)
def tiny_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMAT_TEST_MODELS", "tiny")


@pytest.fixture()
def photo(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    return save_png(tmp_path / "photo.png", rng.integers(0, 256, (H, W, 3), dtype=np.uint8))


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    rc = main(["matte", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("semat: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_text_prompt_with_zip(photo: Path, tmp_path: Path, capsys) -> None:
    out, zpath = tmp_path / "alpha.png", tmp_path / "layers.zip"
    rc, stdout, err = _run(capsys, str(photo), "--text", "cat", "--box-threshold", "0", "--text-threshold", "0",
                           "--max-objects", "2", "--variant", "sam2", "-o", str(out), "--zip", str(zpath))
    assert rc == 0, err
    alpha = read_png(out)
    assert alpha.shape == (H, W) and alpha.dtype == np.uint8
    assert str(zpath) in stdout and str(out) in stdout
    assert "cat" in err and "timings" in err  # detections and per-stage timings are reported
    with zipfile.ZipFile(zpath) as zf:
        names = set(zf.namelist())
        man = json.loads(zf.read("manifest.json"))
    n = len(man["objects"])
    assert 1 <= n <= 2
    assert {f"object_{i}.png" for i in range(n)} | {"union.png", "manifest.json"} <= names
    assert man["prompt"]["text"] == "cat"
    assert man["thresholds"] == {"box_threshold": 0.0, "text_threshold": 0.0}
    assert man["model"]["variant"] == "sam2"
    assert man["image_size"] == {"width": W, "height": H}
    assert all(o["label"] == "cat" and o["source"] == "text" for o in man["objects"])
    assert "semat" in man["timings_s"] and "detect" in man["timings_s"]


def test_no_detection_is_one_helpful_line(photo: Path, tmp_path: Path, capsys) -> None:
    rc, _, err = _run(capsys, str(photo), "--text", "cat. dog", "--box-threshold", "1", "-o",
                      str(tmp_path / "a.png"))
    assert rc == 2
    line = _error_line(err)
    assert "no 'cat; dog' found" in line and "lower the box threshold" in line and "draw a box" in line
    assert not (tmp_path / "a.png").exists()


def test_clicks_without_a_box(photo: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "clicked.png"
    zpath = tmp_path / "clicked.zip"
    rc, _, err = _run(capsys, str(photo), "--point", "40,30", "--point", "60,50,1", "--point", "5,5,0",
                      "--variant", "sam2", "-o", str(out), "--zip", str(zpath))
    assert rc == 0, err
    assert read_png(out).shape == (H, W)
    with zipfile.ZipFile(zpath) as zf:
        man = json.loads(zf.read("manifest.json"))
    assert man["prompt"]["points"] == [[40.0, 30.0, 1], [60.0, 50.0, 1], [5.0, 5.0, 0]]
    (obj,) = man["objects"]
    assert obj["source"] == "points" and len(obj["points"]) == 3
    x1, y1, x2, y2 = obj["box"]
    assert 0 <= x1 < x2 <= W and 0 <= y1 < y2 <= H


def test_box_with_points_and_backgrounds(photo: Path, tmp_path: Path, capsys) -> None:
    bg = save_png(tmp_path / "beach.png", np.full((30, 200, 3), 200, np.uint8))
    for spec, channels in (("white", 3), ("#00ff00", 3), ("blur", 3), ("checker", 3), (str(bg), 3),
                           ("transparent", 4)):
        comp = tmp_path / f"comp_{channels}_{abs(hash(spec))}.png"
        rc, stdout, err = _run(capsys, str(photo), "--box", "10,10,70,60", "--point", "30,30,1",
                               "--point", "50,40,0", "--variant", "sam2", "--background", spec,
                               "--composite", str(comp), "-o", str(tmp_path / "a.png"))
        assert rc == 0, (spec, err)
        img = read_png(comp)
        assert img.shape == (H, W, channels), spec
        assert str(comp) in stdout


def test_background_defaults_next_to_output_and_fg_switch(photo: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "res.png"
    rc, _, err = _run(capsys, str(photo), "--box", "10,10,70,60", "--variant", "sam2", "--background", "blue",
                      "--no-foreground-estimation", "-o", str(out))
    assert rc == 0, err
    assert read_png(tmp_path / "res_composite.png").shape == (H, W, 3)


@pytest.mark.parametrize("bad", ["1,2,3,4", "a,b", "1,2,5", "1"])
def test_bad_point_syntax_is_an_argument_error(photo: Path, tmp_path: Path, bad: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["matte", str(photo), "--point", bad, "-o", str(tmp_path / "a.png")])
    assert info.value.code == 2
    assert "--point" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--point", "5,5,0"], "include click"),
        (["--point", "500,5"], "outside"),
        (["--box", "10,10,70,60", "--background", "no-such-colour"], "background"),
        (["--text", "  .  "], "empty"),
        (["--box", "60,60,10,10", "--zip", "z.zip"], "reversed"),
    ],
)
def test_bad_prompts_are_one_line_errors(photo: Path, tmp_path: Path, args: list[str], expected: str,
                                         capsys) -> None:
    rc, _, err = _run(capsys, str(photo), *args, "--variant", "sam2", "-o", str(tmp_path / "a.png"))
    assert rc == 2
    assert expected in _error_line(err)


def test_bad_image_file_is_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("hello")
    rc, _, err = _run(capsys, str(bad), "--text", "cat", "-o", str(tmp_path / "a.png"))
    assert rc == 2
    assert "notes.jpg cannot be read as an image" in _error_line(err)
