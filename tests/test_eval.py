"""Benchmark evaluation: dataset layouts, pairing, the paper protocol, resume, bad files, folder scoring."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from semat.cli.main import main as cli_main
from semat.errors import InputError
from semat.evaluation import metrics as M
from semat.evaluation import runner as E


# ------------------------------------------------------------------------------- synthetic datasets
def _alpha(h: int, w: int, seed: int) -> np.ndarray:
    """A soft disc with a wispy edge, uint8, touching no border."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    cy, cx = h * rng.uniform(0.4, 0.6), w * rng.uniform(0.4, 0.6)
    r = np.hypot(yy - cy, xx - cx) / (min(h, w) * rng.uniform(0.25, 0.35))
    a = np.clip((1.0 - r) * 5, 0, 1)
    return np.round(a * 255).astype(np.uint8)


def _image(alpha: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 100)
    h, w = alpha.shape
    fg = np.array(rng.integers(150, 255, 3), np.float64)
    bg = rng.integers(0, 90, (h, w, 3)).astype(np.float64)
    a = alpha[..., None] / 255.0
    return np.round(a * fg + (1 - a) * bg).astype(np.uint8)


SIZES = [(40, 56), (52, 36), (33, 47)]  # (H, W); odd sizes exercise the resize rounding


def _write_pair(img_dir: Path, alpha_dir: Path, img_stem: str, alpha_stem: str, hw: tuple[int, int],
                seed: int, img_ext: str = ".jpg") -> np.ndarray:
    img_dir.mkdir(parents=True, exist_ok=True)
    alpha_dir.mkdir(parents=True, exist_ok=True)
    a = _alpha(*hw, seed)
    Image.fromarray(_image(a, seed)).save(img_dir / f"{img_stem}{img_ext}", quality=95)
    Image.fromarray(a).save(alpha_dir / f"{alpha_stem}.png")
    return a


def make_dataset(root: Path, name: str, n: int = 2) -> list[str]:
    """Write ``n`` samples of ``name`` in its real layout under ``root``; returns the sample ids."""
    layout = E.DATASETS[name]
    ids = []
    if layout.categories:
        for i in range(n):
            cat = ["defocus", "fire"][i % 2]
            base = root / layout.base / cat
            _write_pair(base / layout.image_dir, base / layout.alpha_dir, f"s{i}", f"s{i}", SIZES[i % 3], i)
            ids.append(f"{cat}/s{i}")
    elif layout.instance_suffix:
        base = root / layout.base
        for i in range(n):  # one image, mask "<stem>_<k>" per instance
            _write_pair(base / layout.image_dir, base / layout.alpha_dir, "photo", f"photo_{i}", SIZES[0], i)
            ids.append(f"photo_{i}")
    else:
        base = root / layout.base
        for i in range(n):
            _write_pair(base / layout.image_dir, base / layout.alpha_dir, f"img{i}", f"img{i}", SIZES[i % 3], i,
                        img_ext=".jpg" if i % 2 == 0 else ".png")
            ids.append(f"img{i}")
    return sorted(ids)


class GTMatter:
    """A fake model that returns the ground truth itself (through the real frame geometry)."""

    img_size = 64

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, image: np.ndarray, gt: np.ndarray) -> E.FramePrediction:
        self.calls += 1
        h, w = gt.shape
        nh, nw = E.resized_hw(h, w, self.img_size)
        frame = E.resize_like_reference(gt / np.float32(255), (nh, nw))
        return E.FramePrediction(frame, (gt / 255.0).astype(np.float32), (0.0, 0.0, 1.0, 1.0))


def _csv_rows(out: Path) -> list[dict[str, str]]:
    with (out / "per_image.csv").open(newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------------------- discovery
@pytest.mark.parametrize("name", list(E.DATASETS))
def test_discover_each_layout(tmp_path: Path, name: str) -> None:
    ids = make_dataset(tmp_path, name, n=3)
    layout, samples, problems = E.discover(name, tmp_path)
    assert layout.name == name
    assert [s.id for s in samples] == ids
    assert not problems
    for s in samples:
        assert s.image.is_file() and s.alpha.is_file()
        assert s.alpha.suffix == ".png"
    # The dataset folder itself is accepted as --root too.
    if not layout.categories:
        assert [s.id for s in E.discover(name, tmp_path / layout.base)[1]] == ids


def test_dataset_names_and_wrong_root(tmp_path: Path) -> None:
    assert E.dataset_layout("aim-500").name == "AIM500"
    assert E.dataset_layout("P3M-500-NP").name == "P3M500"
    with pytest.raises(ValueError, match="unknown dataset"):
        E.dataset_layout("COCO")
    with pytest.raises(InputError, match=r"AIM-500/\{original,mask\}"):
        E.discover("AIM500", tmp_path)


def test_unpaired_and_ambiguous_files_are_reported(tmp_path: Path) -> None:
    make_dataset(tmp_path, "AM2K", n=2)
    base = tmp_path / "AM-2K" / "validation"
    Image.fromarray(_image(_alpha(30, 30, 9), 9)).save(base / "original" / "lonely.jpg")
    Image.fromarray(_alpha(30, 30, 9)).save(base / "mask" / "orphan.png")
    Image.fromarray(_image(_alpha(30, 30, 9), 9)).save(base / "original" / "img0.png")  # img0.jpg exists too
    (base / "mask" / "notes.txt").write_text("ignored")
    _, samples, problems = E.discover("AM2K", tmp_path)
    assert [s.id for s in samples] == ["img1"]
    reasons = {p.id: p.reason for p in problems}
    assert set(reasons) == {"img0", "lonely", "orphan"}
    assert "several images" in reasons["img0"]
    assert "no alpha" in reasons["lonely"] and "no image" in reasons["orphan"]


# ---------------------------------------------------------------------------------- paper protocol
def test_quantize_and_paper_gt_follow_the_evaluator() -> None:
    a = np.array([[0.0, 0.5 / 255, 0.999, 1.0, 0.2]], np.float32)
    ref = np.uint8(a * 255.0 + 0.5)
    np.testing.assert_array_equal(E.quantize(a), ref)
    gt = _alpha(37, 51, 3)
    nh, nw = E.resized_hw(37, 51, 1024)
    assert (nh, nw) == (int(37 * (1024 / 51) + 0.5), 1024)
    t = torch.from_numpy(gt).float().div(255)[None, None]
    want = F.interpolate(t, size=(nh, nw), mode="bilinear", align_corners=False)[0, 0].numpy() * 255.0 / 255.0
    np.testing.assert_array_equal(E.paper_gt(gt, (nh, nw)), want)


def test_perfect_prediction_scores_zero_at_original_size() -> None:
    gt = _alpha(45, 60, 1)
    row = E.score_prediction(GTMatter()(np.zeros((45, 60, 3), np.uint8), gt), gt)
    for k in M.METRIC_KEYS["semat"]:
        assert row[f"orig_{k}"] == 0.0
    sghm = E.score_prediction(GTMatter()(np.zeros((45, 60, 3), np.uint8), gt), gt, convention="sghm")
    assert sghm["orig_MSE"] == pytest.approx(0.0, abs=1e-9) and sghm["orig_IoU"] == pytest.approx(100.0)
    # In the working frame the only error left is the 8-bit rounding of the prediction.
    assert row["paper_MSE"] <= (0.5 / 255) ** 2 + 1e-12
    assert row["paper_MAD"] <= 0.5 / 255 + 1e-12


def test_frame_size_matches_the_predictor_and_the_evaluator() -> None:
    from semat.inference.predictor import resized_hw as predictor_hw

    for h, w in [(1080, 1920), (1920, 1080), (683, 1024), (333, 500), (4000, 2667), (37, 51)]:
        nh, nw = E.resized_hw(h, w, 1024)
        assert (nh, nw) == predictor_hw(h, w, 1024)[:2]
        # AdobeCompositionEvaluator's crop: int(1024 / max(h, w) * side + 0.5)
        assert (nh, nw) == (int(1024 / max(h, w) * h + 0.5), int(1024 / max(h, w) * w + 0.5))


class _RecordingModel(torch.nn.Module):
    img_size = 64

    def __init__(self, img_size: int = 64) -> None:
        super().__init__()
        self.img_size = img_size
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, images, boxes, points=None):
        from semat.models.outputs import SEMatOutput

        self.seen.append((images.clone(), boxes.clone()))
        b, _, s, _ = images.shape
        alpha = images.mean(dim=1, keepdim=True)
        z = torch.zeros(b, 1, s, s)
        return SEMatOutput(alpha=alpha, matting_logits=z.repeat(1, 3, 1, 1), mask_logits=z,
                           image_embedding=torch.zeros(b, 256, s // 16, s // 16))


class _FakePredictor:
    def __init__(self, img_size: int = 64) -> None:
        from semat.runtime import select_runtime

        self.model = _RecordingModel(img_size)
        self.runtime = select_runtime("cpu", "float32")
        self.img_size = self.model.img_size

    def forward_frame(self, images, boxes, points=None):
        return self.model(images, boxes, points)


@pytest.mark.parametrize(("size", "hw"), [(64, (41, 29)), (1024, (130, 97))])
def test_reference_matter_reproduces_evaluator_inputs(size: int, hw: tuple[int, int]) -> None:
    pred = _FakePredictor(size)
    matter = E.ReferenceMatter(pred)
    gt = _alpha(*hw, 4)
    image = _image(gt, 4)
    out = matter(image, gt)
    images, boxes = pred.model.seen[0]
    s = pred.img_size
    nh, nw = E.resized_hw(*hw, s)
    # ResziePad: to_tensor + F.interpolate on image and alpha, zero padding to S x S.
    img_t = torch.from_numpy(image).permute(2, 0, 1).float().div(255)[None]
    want_img = torch.zeros(1, 3, s, s)
    want_img[:, :, :nh, :nw] = F.interpolate(img_t, size=(nh, nw), mode="bilinear", align_corners=False)
    torch.testing.assert_close(images, want_img, rtol=0, atol=0)
    # GenBBox: nonzero extent of the resized, padded alpha.
    a_t = torch.zeros(1, s, s)
    a_t[:, :nh, :nw] = F.interpolate(torch.from_numpy(gt).float().div(255)[None, None], size=(nh, nw),
                                     mode="bilinear", align_corners=False)[0]
    ys, xs = torch.nonzero(a_t[0], as_tuple=True)
    assert boxes.tolist() == [[float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]]
    # The frame alpha is cropped to the resized region; the original-size alpha is resized back.
    assert out.alpha_frame.shape == (nh, nw) and out.alpha.shape == gt.shape
    np.testing.assert_allclose(out.alpha_frame, want_img[0].mean(0)[:nh, :nw].numpy(), atol=1e-6)


def test_reference_matter_empty_alpha_uses_zero_box() -> None:
    pred = _FakePredictor()
    gt = np.zeros((20, 30), np.uint8)
    out = E.ReferenceMatter(pred)(np.zeros((20, 30, 3), np.uint8), gt)
    assert out.box == (0.0, 0.0, 0.0, 0.0)
    assert pred.model.seen[0][1].tolist() == [[0.0, 0.0, 0.0, 0.0]]


# ------------------------------------------------------------------------------ loop, resume, errors
def test_evaluate_with_fake_model_writes_csv_and_summaries(tmp_path: Path) -> None:
    ids = make_dataset(tmp_path / "data", "P3M500", n=3)
    matter = GTMatter()
    res = E.evaluate_dataset("P3M500", tmp_path / "data", matter, tmp_path / "out", progress=False)
    assert res.n_scored == 3 and not res.skipped and matter.calls == 3
    rows = _csv_rows(tmp_path / "out")
    assert [r["id"] for r in rows] == ids and all(r["status"] == "ok" for r in rows)
    assert set(E.metric_columns("semat")) <= set(rows[0])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["means"]["orig"]["SAD"] == 0.0
    assert summary["means"]["paper"]["MSE"] == pytest.approx(
        np.mean([float(r["paper_MSE"]) for r in rows]), rel=1e-12)
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "P3M-500-NP" in md and "| paper" in md and "MSE ×10⁻³" in md


def test_resume_skips_scored_images_and_checks_settings(tmp_path: Path) -> None:
    make_dataset(tmp_path / "data", "RWP636", n=3)
    out = tmp_path / "out"
    first = GTMatter()
    E.evaluate_dataset("RWP636", tmp_path / "data", first, out, limit=1, progress=False,
                       settings={"variant": "sam"})
    assert first.calls == 1
    second = GTMatter()
    res = E.evaluate_dataset("RWP636", tmp_path / "data", second, out, progress=False, settings={"variant": "sam"})
    assert second.calls == 2 and res.resumed == 1 and res.n_scored == 3
    assert len(_csv_rows(out)) == 3
    third = GTMatter()
    E.evaluate_dataset("RWP636", tmp_path / "data", third, out, progress=False, settings={"variant": "sam"})
    assert third.calls == 0
    with pytest.raises(ValueError, match="different run"):
        E.evaluate_dataset("RWP636", tmp_path / "data", GTMatter(), out, progress=False,
                           settings={"variant": "hq-sam"})
    fresh = GTMatter()
    E.evaluate_dataset("RWP636", tmp_path / "data", fresh, out, progress=False, settings={"variant": "hq-sam"},
                       fresh=True)
    assert fresh.calls == 3


def test_missing_and_corrupt_files_are_reported_and_skipped(tmp_path: Path) -> None:
    make_dataset(tmp_path / "data", "AIM500", n=3)
    base = tmp_path / "data" / "AIM-500"
    (base / "original" / "img1.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")  # corrupt image
    (base / "mask" / "img2.png").write_bytes((base / "mask" / "img2.png").read_bytes()[:60])  # truncated alpha
    Image.fromarray(_image(_alpha(20, 20, 5), 5)).save(base / "original" / "noalpha.jpg")  # missing alpha
    Image.fromarray(_image(_alpha(20, 20, 6), 6)).save(base / "original" / "small.jpg")
    Image.fromarray(_alpha(21, 20, 6)).save(base / "mask" / "small.png")  # size mismatch
    res = E.evaluate_dataset("AIM500", tmp_path / "data", GTMatter(), tmp_path / "out", progress=False)
    assert res.n_scored == 1
    reasons = {s["id"]: s["reason"] for s in res.skipped}
    assert set(reasons) == {"img1", "img2", "noalpha", "small"}
    assert "could not be read" in reasons["img1"] and "could not be read" in reasons["img2"]
    assert "no alpha" in reasons["noalpha"] and "20x20" in reasons["small"]
    statuses = {r["id"]: r["status"] for r in _csv_rows(tmp_path / "out")}
    assert statuses == {"img0": "ok", "img1": "skipped", "img2": "skipped", "noalpha": "skipped", "small": "skipped"}
    assert "## Skipped" in (tmp_path / "out" / "summary.md").read_text()



def test_dataset_files_get_the_image_loaders_limits(tmp_path: Path, monkeypatch) -> None:
    """Eval data is refused by the same byte and header-pixel caps as load_image (the sample is
    skipped, the run goes on); under the caps it is scored at its original size, never downscaled."""
    make_dataset(tmp_path / "data", "AIM500", n=1)
    base = tmp_path / "data" / "AIM-500"
    _write_pair(base / "original", base / "mask", "big", "big", (120, 100), 7, img_ext=".png")  # 0.012 MP
    noise = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    Image.fromarray(noise).save(base / "original" / "heavy.png")  # incompressible: ~6.7 kB
    Image.fromarray(_alpha(40, 56, 8)).save(base / "mask" / "heavy.png")
    monkeypatch.setenv("SEMAT_MAX_INPUT_MEGAPIXELS", "0.01")
    monkeypatch.setenv("SEMAT_MAX_UPLOAD", "5kb")
    monkeypatch.setenv("SEMAT_MAX_MEGAPIXELS", "0.01")  # the downscale cap must not touch eval data
    res = E.evaluate_dataset("AIM500", tmp_path / "data", GTMatter(), tmp_path / "out", progress=False)
    reasons = {s["id"]: s["reason"] for s in res.skipped}
    assert set(reasons) == {"big", "heavy"} and res.n_scored == 1
    assert "100×120 px" in reasons["big"] and "SEMAT_MAX_INPUT_MEGAPIXELS" in reasons["big"]
    assert "SEMAT_MAX_UPLOAD" in reasons["heavy"] and "heavy.png" in reasons["heavy"]
    rows = {r["id"]: r for r in _csv_rows(tmp_path / "out")}
    assert (rows["img0"]["status"], rows["img0"]["width"], rows["img0"]["height"]) == ("ok", "56", "40")


# ------------------------------------------------------------------------- end to end, tiny models
@pytest.mark.parametrize("name", list(E.DATASETS))
def test_cli_end_to_end_each_dataset_tiny_model(tmp_path: Path, name: str, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SEMAT_TEST_MODELS", "tiny")
    ids = make_dataset(tmp_path / "data", name, n=2)
    out = tmp_path / "out"
    variant = {"AIM500": "sam", "RW100": "hq-sam", "AM2K": "sam2"}.get(name, "sam")
    rc = cli_main(["eval", "--dataset", name, "--root", str(tmp_path / "data"), "--variant", variant,
                   "--out", str(out), "--no-progress", "--save-alpha"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "2 of 2 scored" in text and "paper" in text and "orig" in text
    rows = _csv_rows(out)
    assert [r["id"] for r in rows] == ids and all(r["status"] == "ok" for r in rows)
    for r in rows:
        for c in E.metric_columns("semat"):
            assert math.isfinite(float(r[c])), c
        assert (out / "alpha" / f"{r['id']}.png").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["variant"] == variant and summary["settings"]["img_size"] == 256
    assert summary["n_scored"] == 2


def test_tiny_model_app_preprocessing_and_sghm_convention(tmp_path: Path, monkeypatch) -> None:
    from semat.inference.predictor import SEMatPredictor

    make_dataset(tmp_path / "data", "AM2K", n=2)
    matter = E.make_matter(SEMatPredictor.tiny("sam"), "app")
    res = E.evaluate_dataset("AM2K", tmp_path / "data", matter, tmp_path / "out", convention="sghm",
                             progress=False)
    assert res.n_scored == 2
    assert set(res.means["paper"]) == set(M.METRIC_KEYS["sghm"])
    rows = _csv_rows(tmp_path / "out")
    assert all(len(r["box"].split()) == 4 for r in rows)


def test_reference_and_app_preprocessing_agree_on_a_real_tiny_model(tmp_path: Path) -> None:
    """Both paths run the same model; they differ only in resize method and box rounding."""
    from semat.inference.predictor import SEMatPredictor

    pred = SEMatPredictor.tiny("sam")
    gt = _alpha(48, 64, 2)
    image = _image(gt, 2)
    ref = E.make_matter(pred, "reference")(image, gt)
    app = E.make_matter(pred, "app")(image, gt)
    assert ref.alpha_frame.shape == app.alpha_frame.shape == E.resized_hw(48, 64, 256)
    assert ref.alpha.shape == app.alpha.shape == gt.shape
    assert float(np.abs(ref.alpha - app.alpha).mean()) < 0.1


# ------------------------------------------------------------------------------------ folder scoring
def _folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    pred, gt, tri = tmp_path / "pred", tmp_path / "gt", tmp_path / "tri"
    for d in (pred, gt, tri):
        d.mkdir()
    for i, (h, w) in enumerate(SIZES):
        a = _alpha(h, w, i)
        Image.fromarray(a).save(gt / f"p{i}.png")
        noisy = np.clip(a.astype(int) + np.random.default_rng(i).integers(-20, 20, a.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(pred / f"p{i}.png")
        t = np.where(a == 0, 0, np.where(a == 255, 255, 128)).astype(np.uint8)
        Image.fromarray(t).save(tri / f"p{i}.png")
    return pred, gt, tri


def test_score_folders_matches_compute_all(tmp_path: Path) -> None:
    pred, gt, tri = _folders(tmp_path)
    res = E.score_folders(pred, gt, tri)
    assert len(res.rows) == 3 and not res.skipped
    for row in res.rows:
        p = np.array(Image.open(row["pred"]))
        g = np.array(Image.open(row["gt"]))
        t = np.array(Image.open(tri / Path(row["gt"]).name))
        want = M.compute_all(p, g, trimap=t)
        assert {k: row[k] for k in want} == want
    assert res.means["SAD"] == pytest.approx(np.mean([r["SAD"] for r in res.rows]))


def test_score_folders_rgba_and_16bit_predictions(tmp_path: Path) -> None:
    pred, gt, _ = _folders(tmp_path)
    a = np.array(Image.open(pred / "p0.png"))
    rgba = np.dstack([np.zeros((*a.shape, 3), np.uint8), a])
    (pred / "p0.png").unlink()
    Image.fromarray(rgba, "RGBA").save(pred / "p0.png")
    (pred / "p1.png").unlink()
    b = np.array(Image.open(gt / "p1.png")).astype(np.uint16) * 257
    Image.fromarray(b).save(pred / "p1.png")
    g2 = np.array(Image.open(gt / "p2.png"))
    (pred / "p2.png").unlink()
    Image.fromarray(np.dstack([g2, g2, g2, np.full_like(g2, 255)]), "RGBA").save(pred / "p2.png")  # opaque
    res = E.score_folders(pred, gt, convention="sghm")
    rows = {r["id"]: r for r in res.rows}
    assert rows["p2"]["MSE"] == 0.0
    g0 = np.array(Image.open(gt / "p0.png"))
    assert rows["p0"]["MSE"] == M.compute_all(a, g0, convention="sghm")["MSE"]
    assert rows["p1"]["MSE"] == pytest.approx(0.0, abs=1e-12) and rows["p1"]["IoU"] == pytest.approx(100.0)


def test_cli_folder_scoring_reports_bad_pairs(tmp_path: Path, capsys) -> None:
    pred, gt, tri = _folders(tmp_path)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(pred / "p2.png")  # wrong size
    (pred / "extra.png").write_bytes(b"garbage")                          # corrupt, no gt
    (gt / "p0.png").rename(gt / "p0.jpg")  # extension differs: still paired by stem
    Image.fromarray(np.array(Image.open(tri / "p0.png"))).save(gt / "p9.png")  # gt without prediction
    out = tmp_path / "scores.json"
    rc = cli_main(["eval", "--pred-dir", str(pred), "--gt-dir", str(gt), "--json", str(out), "--no-progress"])
    assert rc == 0
    captured = capsys.readouterr()
    assert "scored 2 prediction(s), 3 skipped" in captured.out
    assert "p2" in captured.err and "p9" in captured.err and "extra" in captured.err
    data = json.loads(out.read_text())
    assert data["n_scored"] == 2 and data["convention"] == "semat"
    assert {r["id"] for r in data["per_image"]} == {"p0", "p1"}
    assert set(data["means"]) == set(M.METRIC_KEYS["semat"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval"], "give --dataset NAME and --root DIR"),
        (["eval", "--dataset", "COCO", "--root", "."], "unknown dataset"),
        (["eval", "--dataset", "AIM500", "--root", "/nonexistent/x"], "is not a folder"),
        (["eval", "--dataset", "AIM500", "--root", ".", "--pred-dir", "."], "not both"),
        (["eval", "--pred-dir", "."], "go together"),
        (["eval", "--pred-dir", "/nonexistent/p", "--gt-dir", "."], "is not a folder"),
    ],
)
def test_cli_errors_are_one_line(argv: list[str], message: str, capsys) -> None:
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("semat: error:") and message in err and "\n" not in err


def test_reference_matter_uses_the_predictors_precision() -> None:
    """bf16 runs through the predictor's autocast forward, not a bare float32 model call."""
    from semat.inference.predictor import SEMatPredictor
    from semat.runtime import select_runtime

    tiny = SEMatPredictor.tiny("sam")
    bf16 = SEMatPredictor(tiny.model, select_runtime("cpu", "bfloat16"), variant="sam")
    gt = _alpha(30, 40, 8)
    image = _image(gt, 8)
    a32 = E.make_matter(tiny, "reference")(image, gt).alpha
    a16 = E.make_matter(bf16, "reference")(image, gt).alpha
    assert a16.dtype == np.float32 and a16.shape == gt.shape
    assert float(np.abs(a16 - a32).max()) < 0.1
