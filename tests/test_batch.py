"""Folder batches (``semat matte A B ... -o DIR``, ``semat batch``, :func:`semat.batch.run_batch`)
with tiny random models: failures skipped, prompts files, resume, across-image batching."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from semat.batch import BatchOptions, collect_items, read_prompts, run_batch
from semat.batch.items import PromptSpec
from semat.cli.main import main
from semat.errors import InputError
from semat.io.images import read_png, save_png

pytestmark = pytest.mark.usefixtures("one_thread")

N = 20
SIZES = [(60, 80), (72, 96)]  # two sizes: forwards are batched across them anyway


@pytest.fixture(autouse=True)
def tiny_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMAT_TEST_MODELS", "tiny")


@pytest.fixture(scope="module")
def pipe():
    import os

    os.environ["SEMAT_TEST_MODELS"] = "tiny"
    try:
        from semat.pipeline import default_pipeline

        yield default_pipeline()
    finally:
        os.environ.pop("SEMAT_TEST_MODELS", None)


def make_folder(root: Path, n: int = N, corrupt: str | None = "broken.jpg") -> Path:
    rng = np.random.default_rng(7)
    folder = root / "photos"
    folder.mkdir()
    for i in range(n):
        h, w = SIZES[i % 2]
        save_png(folder / f"img_{i:02d}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    if corrupt:
        (folder / corrupt).write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def summary(out: Path) -> list[dict]:
    with open(out / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_folder_with_corrupt_file_and_nothing_found(tmp_path: Path, capsys) -> None:
    folder = make_folder(tmp_path, N - 1)  # 19 good images + 1 corrupt = 20 files
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("image,boxes,points,text,box_threshold\n"
                       "photos/img_03.png,,,cat,0\n"            # words, found at threshold 0
                       "photos/img_07.png,,,cat,0.99\n"         # words, nothing found
                       "img_05.png,,\"20,20,1\",,\n"            # a click (derived box), matched by name
                       "photos/img_09.png,\"5,5,40,40;30,20,70,55\",,,\n")  # two boxes
    out = tmp_path / "out"
    rc = main(["matte", str(folder), "--box", "4,4,50,40", "--prompts", str(prompts), "--text-threshold", "0",
               "--max-objects", "1", "--no-foreground-estimation", "--variant", "sam", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 1  # something failed: the exit status says so
    rows = {r["stem"]: r for r in summary(out)}
    assert len(rows) == N
    assert rows["broken"]["status"] == "error" and "broken.jpg" in rows["broken"]["error"]
    assert rows["img_07"]["status"] == "nothing found" and "threshold" in rows["img_07"]["error"]
    assert "broken.jpg" in err and "nothing found" in err
    ok = [s for s, r in rows.items() if r["status"] == "ok"]
    assert len(ok) == N - 2
    for stem in ok:
        h, w = SIZES[int(stem[-2:]) % 2]
        alpha = read_png(out / f"{stem}.png")
        assert alpha.shape == (h, w) and alpha.dtype == np.uint8
        assert read_png(out / f"{stem}_rgba.png").shape == (h, w, 4)
        r = rows[stem]
        assert int(r["width"]) == w and int(r["height"]) == h and float(r["seconds_total"]) >= 0
    assert not (out / "img_07.png").exists() and not (out / "broken.png").exists()
    assert rows["img_03"]["labels"] == "cat" and rows["img_03"]["scores"]
    assert rows["img_05"]["labels"] == "clicked object"
    assert rows["img_09"]["objects"] == "2" and len(json.loads(rows["img_09"]["boxes"])) == 2
    assert rows["img_00"]["labels"] == "box 1" and json.loads(rows["img_00"]["boxes"]) == [[4, 4, 50, 40]]


def test_batch_alpha_equals_single_image_matte(tmp_path: Path, capsys) -> None:
    """Across-image batching changes nothing: each alpha is what `semat matte` gives alone."""
    folder = make_folder(tmp_path, 5, corrupt=None)
    out = tmp_path / "out"
    assert main(["matte", *(str(p) for p in sorted(folder.iterdir())), "--box", "4,4,50,40", "--box", "10,10,60,55",
                 "--no-rgba", "--variant", "sam", "--chunk", "5", "--batch-size", "3", "-o", str(out)]) == 0
    for i in (0, 1, 4):
        single = tmp_path / f"single_{i}.png"
        assert main(["matte", str(folder / f"img_{i:02d}.png"), "--box", "4,4,50,40", "--box", "10,10,60,55",
                     "--variant", "sam", "-o", str(single)]) == 0
        np.testing.assert_array_equal(read_png(out / f"img_{i:02d}.png"), read_png(single))
    assert not list(out.glob("*_rgba.png"))
    capsys.readouterr()


def test_across_image_batching_fills_forwards(tmp_path: Path, pipe) -> None:
    folder = make_folder(tmp_path, 6, corrupt=None)
    items, _ = collect_items([str(folder)], PromptSpec(boxes=((4.0, 4.0, 50.0, 40.0),)))
    pred = pipe.predictor("sam")
    calls = []
    original = pred.forward_frame

    def counting(images, boxes, points=None):
        calls.append(int(images.shape[0]))
        return original(images, boxes, points)

    pred.forward_frame = counting
    try:
        s = run_batch(items, pipe, tmp_path / "out", BatchOptions(variant="sam", rgba=False, batch_size=4, chunk=6))
    finally:
        del pred.forward_frame
    assert s.ok == 6 and calls == [4, 2]  # 6 images of two sizes in two forwards, not six


def test_pipeline_prefill_and_predict_many_are_what_run_finds(pipe) -> None:
    """The public across-image API: prefill puts predict_many's mattes where run looks first."""
    from semat.pipeline import Prompt

    rng = np.random.default_rng(3)
    a, b = (rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in SIZES)
    box = (4.0, 4.0, 50.0, 40.0)
    pipe.clear_cache()
    many = pipe.predict_many([(a, box), (b, box)], "sam", batch_size=2)
    assert [m[0].shape for m in many] == [SIZES[0], SIZES[1]] and many[0][1].dtype == bool
    assert pipe.prefill([(a, box), (b, box), (a, box)], "sam", 2) == [True, True, False]  # a repeat is one
    assert pipe.prefill([(a, box)], "sam") == [False]  # cached already
    res = pipe.run(a, Prompt(boxes=[box]), variant="sam")
    assert res.stats["cache_hits"] == 1 and res.stats["model_forwards"] == 0
    np.testing.assert_array_equal(res.objects[0].alpha, many[0][0])
    pipe.clear_cache()


def test_resume_after_interruption_does_no_image_twice(tmp_path: Path, pipe) -> None:
    folder = make_folder(tmp_path, N, corrupt=None)
    items, _ = collect_items([str(folder)], PromptSpec(boxes=((4.0, 4.0, 50.0, 40.0),)))
    out = tmp_path / "out"
    opts = BatchOptions(variant="sam", rgba=False, zip=True, foreground_estimation=False, chunk=4)
    first: list[str] = []

    def stop_after_7(row, summary):
        first.append(row["stem"])
        if len(first) == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(items, pipe, out, opts, progress=stop_after_7)
    assert len(summary(out)) == 7
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "summary.csv"}
    # an image whose files are gone is done again, even with its summary row
    (out / f"{first[0]}.zip").unlink()
    second: list[str] = []
    plan: list[tuple[int, int]] = []
    s = run_batch(items, pipe, out, opts, progress=lambda row, _: second.append(row["stem"]),
                  on_plan=lambda todo, done: plan.append((todo, done)))
    assert plan == [(N - 6, 6)] and s.skipped == 6 and s.ok == N - 6
    assert sorted(second) == sorted({it.stem for it in items} - set(first[1:]))
    assert not set(second) & set(first[1:])
    rows = summary(out)
    assert sorted(r["stem"] for r in rows) == sorted(it.stem for it in items)  # one row per image
    for name, t in mtimes.items():
        if not name.startswith(first[0]):
            assert (out / name).stat().st_mtime_ns == t, name  # done images untouched
    with zipfile.ZipFile(out / f"{first[0]}.zip") as zf:
        assert "manifest.json" in zf.namelist()
    # a third run has nothing to do; a changed prompt redoes everything
    assert run_batch(items, pipe, out, opts).processed == 0
    items2, _ = collect_items([str(folder)], PromptSpec(boxes=((5.0, 4.0, 50.0, 40.0),)))
    assert run_batch(items2[:2], pipe, out, opts).processed == 2


def test_prompts_file_forms(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"")
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text(json.dumps({"image": "a.jpg", "boxes": [[1, 2, 30, 40]], "points": [[5, 6, 0]]}) + "\n\n"
                     + json.dumps({"image": "sub/b.png", "text": "dog. cat.", "box_threshold": 0.2}) + "\n")
    rows = read_prompts(jsonl)
    assert rows[0] == ("a.jpg", PromptSpec(None, ((1.0, 2.0, 30.0, 40.0),), ((5.0, 6.0, 0),)))
    assert rows[1][1].text == "dog. cat." and rows[1][1].box_threshold == 0.2
    items, _ = collect_items([], PromptSpec(text="cat"), str(jsonl))
    assert [it.source for it in items] == [str(tmp_path / "a.jpg"), str(tmp_path / "sub" / "b.png")]
    csvf = tmp_path / "p.csv"
    csvf.write_text("image,boxes\na.jpg,\"[[1,2,3,4],[5,6,7,8]]\"\nc.jpg,\n")
    items, _ = collect_items([], PromptSpec(text="cat"), str(csvf))
    assert items[0].prompt.boxes == ((1.0, 2.0, 3.0, 4.0), (5.0, 6.0, 7.0, 8.0))
    assert items[1].prompt.text == "cat"  # a row without a prompt takes the command line's
    for bad, msg in [("image,boxes\na.jpg,1 2 3\n", "4 numbers"), ("name\na.jpg\n", "'image'"),
                     ("image,box_threshold\na.jpg,2\n", "box_threshold")]:
        csvf.write_text(bad)
        with pytest.raises(InputError, match=msg):
            read_prompts(csvf)
    with pytest.raises(InputError, match="line 1"):
        jsonl.write_text("[1]\n")
        read_prompts(jsonl)


def test_jsonl_prompts_through_the_cli_without_inputs(tmp_path: Path, capsys) -> None:
    make_folder(tmp_path, 3, corrupt=None)
    jsonl = tmp_path / "prompts.jsonl"
    jsonl.write_text("".join(json.dumps({"image": f"photos/img_{i:02d}.png", "boxes": [[2, 3, 40 + i, 50]]}) + "\n"
                             for i in range(3)) + json.dumps({"image": "photos/missing.png", "boxes": [[1, 1, 9, 9]]}))
    out = tmp_path / "out"
    rc = main(["batch", "--prompts", str(jsonl), "-o", str(out), "--no-rgba", "--variant", "sam", "--no-progress",
               "--zip"])
    stdout = capsys.readouterr().out
    assert rc == 1 and "3 matted, 1 failed" in stdout
    rows = {r["stem"]: r for r in summary(out)}
    assert rows["img_02"]["boxes"] == "[[2.0, 3.0, 42.0, 50.0]]" and (out / "img_02.zip").is_file()
    assert rows["missing"]["status"] == "error"


def test_batch_argument_errors(tmp_path: Path, capsys) -> None:
    folder = make_folder(tmp_path, 2, corrupt=None)
    for args, msg in [([str(folder), "-o", str(tmp_path / "o")], "--prompts"),
                      ([str(folder), "--box", "1,1,9,9", "--rgba", "x.png", "-o", str(tmp_path / "o")], "--no-rgba"),
                      ([str(folder), "--box", "1,1,9,9", "--zip", "a.zip", "-o", str(tmp_path / "o")], "no file name"),
                      ([str(folder), "--box", "1,1,9,9", "--background", "white", "-o", str(tmp_path / "o")],
                       "one image"),
                      ([str(folder / "img_00.png"), "--box", "1,1,9,9", "--zip", "-o", str(tmp_path / "a.png")],
                       "file name")]:
        assert main(["matte", *args]) == 2
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1].startswith("semat: error:") and msg in err, err


def test_the_core_does_not_import_ray() -> None:
    import subprocess
    import sys

    code = ("import sys, semat.batch, semat.batch.job, semat.cli.main, semat.cli.batch; "
            "semat.cli.main.build_parser(); assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_output_on_a_pyarrow_filesystem(tmp_path: Path, pipe) -> None:
    """Outputs through pyarrow (the s3:// path), here on pyarrow's local filesystem via file://."""
    pytest.importorskip("pyarrow", reason="pyarrow comes with the ray extra")
    from semat.batch.outputs import ArrowDir

    folder = make_folder(tmp_path, 2, corrupt=None)
    items, _ = collect_items([str(folder)], PromptSpec(boxes=((4.0, 4.0, 50.0, 40.0),)))
    out = ArrowDir(f"file://{tmp_path / 'arrow'}")
    opts = BatchOptions(variant="sam", zip=True, foreground_estimation=False)
    assert run_batch(items, pipe, out, opts).ok == 2
    assert sorted(p.name for p in (tmp_path / "arrow").iterdir()) == [
        "img_00.png", "img_00.zip", "img_00_rgba.png", "img_01.png", "img_01.zip", "img_01_rgba.png", "summary.csv"]
    assert run_batch(items, pipe, ArrowDir(f"file://{tmp_path / 'arrow'}"), opts).skipped == 2  # resume
