"""Prompt pipeline: every prompt mix, the derived-box rule, caches, union, exports.

Most tests use a fake SEMat predictor over a synthetic scene (two rectangles) so results are
exact and model calls can be counted; the last tests run the real tiny random-weight models.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from semat import compose
from semat.inference.detect import NoDetectionError, TextDetector, write_tiny_vocab
from semat.inference.predictor import BoxError, ObjectMatte
from semat.io.images import read_png
from semat.pipeline import MattingPipeline, Prompt, default_pipeline, derive_box

H, W = 120, 160
RECT_A = (20, 30, 60, 90)  # x1, y1, x2, y2
RECT_B = (100, 20, 150, 70)
OBJ_ALPHA = 0.75


def _rect_mask(r: tuple[int, int, int, int]) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[r[1]:r[3], r[0]:r[2]] = True
    return m


class FakeRuntime:
    label = "CPU, float32 (fake)"


class FakePredictor:
    """Returns, for each box, the scene rectangles that lie mostly inside it, minus those hit by
    a negative click. Records every call."""

    def __init__(self, variant: str = "hq-sam"):
        self.variant = variant
        self.runtime = FakeRuntime()
        self.calls: list[tuple[np.ndarray, list]] = []

    def checkpoint_sha256(self) -> str:
        return "f" * 64

    @property
    def forwards(self) -> int:
        return sum(len(b) for b, _ in self.calls)

    def predict(self, image, boxes, points=None, batch_size=4, return_debug=False):
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        assert image.shape == (H, W, 3)
        self.calls.append((boxes.copy(), list(points) if points is not None else [None] * len(boxes)))
        out = []
        for i, (x1, y1, x2, y2) in enumerate(boxes):
            mask = np.zeros((H, W), bool)
            for r in (RECT_A, RECT_B):
                ix = max(0, min(x2, r[2]) - max(x1, r[0]))
                iy = max(0, min(y2, r[3]) - max(y1, r[1]))
                if ix * iy >= 0.5 * (r[2] - r[0]) * (r[3] - r[1]):
                    rm = _rect_mask(r)
                    pp = points[i] if points is not None else None
                    if pp is not None and any(lab == 0 and rm[int(y), int(x)]
                                              for (x, y), lab in zip(pp.coords, pp.labels)):
                        continue
                    mask |= rm
            out.append(ObjectMatte(box=np.array([x1, y1, x2, y2]), alpha=mask.astype(np.float32) * OBJ_ALPHA,
                                   mask=mask))
        return out


class FakeDetector:
    """Per phrase i of the prompt, query i fires on that phrase with score 0.9 - 0.1 i at
    RECT_A / RECT_B alternately; one extra near-duplicate of query 0 scores 0.6."""

    name = "fake-dino"

    def __init__(self):
        self.calls = 0
        self.last_timings = {"detect_preprocess": 0.001, "detect_forward": 0.002}

    def raw_scores(self, image, text):
        from semat.inference.detect import normalise_prompt, split_phrases

        normalise_prompt(text)
        phrases = split_phrases(text)
        ids = [101]
        for i, _ in enumerate(phrases):
            ids += [2000 + i, 1012]
        ids.append(102)
        q = len(phrases) + 1
        probs = np.zeros((q, len(ids)))
        boxes = np.zeros((q, 4))
        for i in range(len(phrases)):
            probs[i, 1 + 2 * i] = 0.9 - 0.1 * i
            boxes[i] = RECT_A if i % 2 == 0 else RECT_B
        probs[q - 1, 1] = 0.6
        boxes[q - 1] = np.array(RECT_A) + 1
        self.calls += 1
        return probs, boxes, ids


@pytest.fixture()
def scene() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.fixture()
def fakes():
    preds: dict[str, FakePredictor] = {}
    det = FakeDetector()

    def factory(variant: str) -> FakePredictor:
        preds[variant] = FakePredictor(variant)
        return preds[variant]

    pipe = MattingPipeline(factory, lambda: det)
    return pipe, preds, det


# ------------------------------------------------------------------------ prompt mixes


def test_box_only(scene, fakes) -> None:
    pipe, preds, _ = fakes
    res = pipe.run(scene, Prompt(boxes=[(15, 25, 65, 95)]))
    assert len(res.objects) == 1
    obj = res.objects[0]
    assert obj.source == "box" and obj.label == "box 1" and obj.score is None
    np.testing.assert_array_equal(obj.mask, _rect_mask(RECT_A))
    assert obj.alpha.dtype == np.float32 and obj.alpha.shape == (H, W)
    assert preds["hq-sam"].forwards == 1 and res.stats["model_forwards"] == 1
    assert res.variant == "hq-sam" and res.checkpoint_sha256 == "f" * 64
    assert res.device_label.startswith("CPU")
    assert {"hash", "semat", "union", "total"} <= set(res.timings)


def test_text_only_labels_scores_and_dedup(scene, fakes) -> None:
    pipe, preds, det = fakes
    res = pipe.run(scene, Prompt(text="cat. dog."))
    assert [(o.label, o.source) for o in res.objects] == [("cat", "text"), ("dog", "text")]
    assert [round(o.score, 2) for o in res.objects] == [0.9, 0.8]
    assert res.objects[0].box == tuple(float(v) for v in RECT_A)  # duplicate at IoU>0.5 removed
    np.testing.assert_array_equal(res.objects[1].mask, _rect_mask(RECT_B))
    assert det.calls == 1 and preds["hq-sam"].forwards == 2
    assert "detect" in res.timings and "detect_forward" in res.timings
    assert len(res.detections) == 2


def test_text_selected_subset(scene, fakes) -> None:
    pipe, preds, _ = fakes
    dets = pipe.detect(scene, "cat. dog.")
    res = pipe.run(scene, Prompt(text="cat. dog."), selected=[1])
    assert [o.label for o in res.objects] == ["dog"] and len(res.detections) == len(dets) == 2
    assert preds["hq-sam"].forwards == 1
    with pytest.raises(ValueError, match="do not exist"):
        pipe.run(scene, Prompt(text="cat"), selected=[5])


def test_no_detection_message_and_fallback_to_boxes(scene, fakes) -> None:
    pipe, preds, _ = fakes
    with pytest.raises(NoDetectionError, match=r"lower the box threshold.*draw a box"):
        pipe.run(scene, Prompt(text="cat", box_threshold=0.95))
    assert not preds  # no SEMat model was even loaded
    res = pipe.run(scene, Prompt(text="cat", box_threshold=0.95, boxes=[(95, 15, 155, 75)]))
    assert [o.source for o in res.objects] == ["box"]
    assert any("no 'cat' found" in n for n in res.notices)


def test_points_only_use_the_derived_box_rule(scene, fakes) -> None:
    pipe, preds, _ = fakes
    click = (40.0, 60.0, 1)  # inside RECT_A
    res = pipe.run(scene, Prompt(points=[click]))
    pred = preds["hq-sam"]
    # pass 1: whole-image box + the click; pass 2: derived box + the click
    assert len(pred.calls) == 2
    np.testing.assert_array_equal(pred.calls[0][0], [[0, 0, W, H]])
    obj = res.objects[0]
    assert obj.source == "points" and obj.derived_box and obj.points == (click,)
    x1, y1, x2, y2 = RECT_A
    pad_x, pad_y = 0.05 * (x2 - x1), 0.05 * (y2 - y1)
    np.testing.assert_allclose(obj.box, (x1 - pad_x, y1 - pad_y, x2 + pad_x, y2 + pad_y))
    np.testing.assert_allclose(pred.calls[1][0], [obj.box])
    np.testing.assert_array_equal(pred.calls[1][1][0].coords, [[40, 60]])
    np.testing.assert_array_equal(obj.mask, _rect_mask(RECT_A))  # the clicked object only
    assert "derive_box" in res.timings
    # again: both passes are cached
    res2 = pipe.run(scene, Prompt(points=[click]))
    assert len(pred.calls) == 2 and res2.objects[0].cached and res2.stats["model_forwards"] == 0


def test_box_with_positive_and_negative_points(scene, fakes) -> None:
    pipe, preds, _ = fakes
    big = (10, 10, 155, 100)  # covers both rectangles
    res = pipe.run(scene, Prompt(boxes=[big], points=[(120, 40, 0), (30, 50, 1)]))
    assert len(res.objects) == 1
    obj = res.objects[0]
    assert obj.points == ((120, 40, 0), (30, 50, 1))
    pp = preds["hq-sam"].calls[0][1][0]
    np.testing.assert_array_equal(pp.coords, [[120, 40], [30, 50]])
    np.testing.assert_array_equal(pp.labels, [0, 1])
    np.testing.assert_array_equal(obj.mask, _rect_mask(RECT_A))  # the negative click removed B


def test_mixed_text_boxes_and_points(scene, fakes) -> None:
    pipe, preds, _ = fakes
    prompt = Prompt(text="cat", boxes=[(95, 15, 155, 75)], points=[(45, 70, 1), (125, 45, 1), (5, 5, 0)])
    res = pipe.run(scene, prompt)
    # the two include clicks fall in the detection's and the drawn box's areas; (5,5,0) is loose
    assert [(o.source, o.label) for o in res.objects] == [("text", "cat"), ("box", "box 1")]
    assert res.objects[0].points == ((45, 70, 1),) and res.objects[1].points == ((125, 45, 1),)
    assert any("exclude click" in n for n in res.notices)
    assert preds["hq-sam"].forwards == 2
    # a positive click outside every box makes a clicked object (two passes)
    res = pipe.run(scene, Prompt(text="cat", points=[(120, 40, 1)]))
    assert [o.source for o in res.objects] == ["text", "points"]
    np.testing.assert_array_equal(res.objects[1].mask, _rect_mask(RECT_B))


def test_bad_prompts(scene, fakes) -> None:
    pipe, _, _ = fakes
    with pytest.raises(ValueError, match="nothing to cut out"):
        pipe.run(scene, Prompt())
    with pytest.raises(ValueError, match="outside"):
        pipe.run(scene, Prompt(points=[(500, 5, 1)]))
    with pytest.raises(BoxError, match="reversed"):
        pipe.run(scene, Prompt(boxes=[(50, 50, 10, 10)]))
    with pytest.raises(ValueError, match="include click"):
        pipe.run(scene, Prompt(points=[(5, 5, 0)]))
    with pytest.raises(ValueError, match="label"):
        Prompt(points=[(5, 5, 3)])
    with pytest.raises(ValueError, match="RGB uint8"):
        pipe.run(scene.astype(np.float32), Prompt(boxes=[(0, 0, 5, 5)]))


# --------------------------------------------------------------------------------- caches


def test_cache_recomposite_and_one_added_box(scene, fakes) -> None:
    pipe, preds, det = fakes
    box_a, box_b = (15, 25, 65, 95), (95, 15, 155, 75)
    res = pipe.run(scene, Prompt(text="cat", boxes=[box_a]))
    pred = preds["hq-sam"]
    assert pred.forwards == 2 and det.calls == 1  # "cat" → RECT_A box differs from box_a: 2 objects
    n_calls = len(pred.calls)
    # recompositing with every background never calls a model
    for bg in ("transparent", "checker", "white", "blur"):
        compose.composite(res.image, res.alpha, bg, foreground_estimation=False)
    compose.composite(res.image, res.alpha, "image", bg_image=scene[::-1].copy())
    assert len(pred.calls) == n_calls and det.calls == 1
    # the same run again: no forward at all, every object flagged cached
    res2 = pipe.run(scene, Prompt(text="cat", boxes=[box_a]))
    assert len(pred.calls) == n_calls and det.calls == 1 and all(o.cached for o in res2.objects)
    assert res2.stats == {"model_forwards": 0, "cache_hits": 2, "detector_forwards": 0}
    np.testing.assert_array_equal(res2.alpha, res.alpha)
    # adding one box: exactly one new forward, with just that box
    res3 = pipe.run(scene, Prompt(text="cat", boxes=[box_a, box_b]))
    assert len(pred.calls) == n_calls + 1
    np.testing.assert_allclose(pred.calls[-1][0], [box_b])
    assert res3.stats["model_forwards"] == 1 and res3.stats["cache_hits"] == 2
    # new thresholds re-use the cached detector forward
    pipe.run(scene, Prompt(text="cat", boxes=[box_a], box_threshold=0.5, text_threshold=0.3))
    assert det.calls == 1
    # another image or another variant is a miss
    pipe.run(scene[::-1].copy(), Prompt(boxes=[box_a]))
    assert len(pred.calls) == n_calls + 2
    pipe.run(scene, Prompt(boxes=[box_a]), variant="sam")
    assert preds["sam"].forwards == 1
    # adding a click to a box changes its key (one forward); others stay cached
    res4 = pipe.run(scene, Prompt(boxes=[box_a, box_b], points=[(40, 60, 1)]), variant="sam")
    assert res4.stats["model_forwards"] == 2  # box_b was never run with 'sam'; box_a + click is new
    res5 = pipe.run(scene, Prompt(boxes=[box_a, box_b], points=[(40, 60, 1)]), variant="sam")
    assert res5.stats["model_forwards"] == 0


def test_cache_is_bounded_by_memory(scene) -> None:
    pred = FakePredictor()
    per_object = H * W * 4 + H * W  # float32 alpha + bool mask
    pipe = MattingPipeline(lambda v: pred, FakeDetector, cache_bytes=2 * per_object)
    for x in (0, 10, 20):
        pipe.run(scene, Prompt(boxes=[(x, 0, x + 60, 100)]))
    assert pred.forwards == 3
    pipe.run(scene, Prompt(boxes=[(20, 0, 80, 100)]))  # newest: still cached
    assert pred.forwards == 3
    pipe.run(scene, Prompt(boxes=[(0, 0, 60, 100)]))  # oldest: evicted
    assert pred.forwards == 4


# --------------------------------------------------------------------------- correctness


def test_union_is_clipped_sum_and_mask_is_or(scene, fakes) -> None:
    pipe, _, _ = fakes
    # two boxes around the same rectangle + one around the other: alphas 0.75 overlap on A
    res = pipe.run(scene, Prompt(boxes=[(15, 25, 65, 95), (18, 28, 62, 92), (95, 15, 155, 75)]))
    a, b = _rect_mask(RECT_A), _rect_mask(RECT_B)
    assert len(res.objects) == 3
    np.testing.assert_allclose(res.alpha[a], 1.0)  # 0.75 + 0.75 clipped to 1
    np.testing.assert_allclose(res.alpha[b], OBJ_ALPHA)
    np.testing.assert_allclose(res.alpha[~(a | b)], 0.0)
    np.testing.assert_array_equal(res.mask, a | b)
    expected = np.clip(sum(o.alpha for o in res.objects), 0, 1)
    np.testing.assert_allclose(res.alpha, expected)
    assert res.alpha.max() <= 1.0


def test_derive_box_rules() -> None:
    mask = np.zeros((100, 100), bool)
    mask[10:30, 10:50] = True  # component 1
    mask[60:90, 60:90] = True  # component 2
    alpha = mask.astype(np.float32)
    box, how = derive_box(mask, alpha, [(20, 20, 1)])
    assert how == "mask"
    np.testing.assert_allclose(box, (10 - 2, 10 - 2, 50 + 2, 30 + 2))  # 5% of 40 = 2, min 2 px
    box, _ = derive_box(mask, alpha, [(20, 20, 1), (70, 70, 1), (95, 5, 0)])
    np.testing.assert_allclose(box, (10 - 4, 10 - 4, 90 + 4, 90 + 4))  # both components, 5% of 80
    box, _ = derive_box(mask, alpha, [(51, 20, 1)])  # 1 px off the edge still picks component 1
    assert box[0] <= 10 and box[2] >= 51
    # mask misses the click but alpha covers it → alpha rule
    soft = np.zeros((100, 100), np.float32)
    soft[40:60, 40:60] = 0.8
    box, how = derive_box(np.zeros((100, 100), bool), soft, [(50, 50, 1)])
    assert how == "alpha" and box == (38.0, 38.0, 62.0, 62.0)
    # nothing covers the click → clicks' box padded by 10% of the longer side, clipped
    box, how = derive_box(np.zeros((100, 100), bool), np.zeros((100, 100), np.float32), [(5, 50, 1)])
    assert how == "clicks" and box == (0.0, 40.0, 16.0, 61.0)
    with pytest.raises(ValueError, match="positive"):
        derive_box(mask, alpha, [(5, 5, 0)])


def test_progress_is_reported(scene, fakes) -> None:
    pipe, _, _ = fakes
    seen: list[tuple[float, str]] = []
    pipe.run(scene, Prompt(text="cat", points=[(120, 40, 1)]), progress=lambda f, m: seen.append((f, m)))
    fracs = [f for f, _ in seen]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0 and len(seen) >= 4


# ----------------------------------------------------------------------------------- ZIP


def test_zip_export_round_trip(scene, fakes, tmp_path: Path) -> None:
    pipe, _, _ = fakes
    prompt = Prompt(text="cat. dog.", boxes=[(5, 95, 60, 118)], points=[(40, 60, 1)], box_threshold=0.4)
    res = pipe.run(scene, prompt)
    path = compose.write_zip(res, tmp_path / "out" / "mattes.zip", {"source_image": "scene.png"},
                             foreground_estimation=False)
    n = len(res.objects)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        expected = {f"object_{i}.png" for i in range(n)} | {f"alpha_{i}.png" for i in range(n)}
        expected |= {"union.png", "union_alpha.png", "union_alpha16.png", "manifest.json"}
        assert names == expected
        man = json.loads(zf.read("manifest.json"))
        for i, obj in enumerate(res.objects):
            rgba = read_png(zf.read(f"object_{i}.png"))
            assert rgba.shape == (H, W, 4)
            np.testing.assert_array_equal(rgba[..., 3], compose.alpha_to_png8(obj.alpha))
            np.testing.assert_array_equal(rgba[..., :3], scene)
            np.testing.assert_array_equal(read_png(zf.read(f"alpha_{i}.png")), compose.alpha_to_png8(obj.alpha))
        np.testing.assert_array_equal(read_png(zf.read("union_alpha.png")), compose.alpha_to_png8(res.alpha))
        u16 = read_png(zf.read("union_alpha16.png"))
        assert u16.dtype == np.uint16
        np.testing.assert_array_equal(u16, compose.alpha_to_png16(res.alpha))
        np.testing.assert_array_equal(read_png(zf.read("union.png"))[..., 3], compose.alpha_to_png8(res.alpha))
    assert man["prompt"] == {"text": "cat. dog.", "boxes": [[5.0, 95.0, 60.0, 118.0]], "points": [[40.0, 60.0, 1]]}
    assert man["thresholds"] == {"box_threshold": 0.4, "text_threshold": 0.25}
    assert man["model"]["variant"] == "hq-sam" and man["model"]["checkpoint_sha256"] == "f" * 64
    assert man["image_size"] == {"width": W, "height": H}
    assert set(res.timings) == set(man["timings_s"]) and man["timings_s"]["total"] >= 0
    assert man["source_image"] == "scene.png" and man["foreground_estimation"] is False
    assert [o["label"] for o in man["objects"]] == [o.label for o in res.objects]
    assert [o["score"] for o in man["objects"]] == [o.score for o in res.objects]
    assert [o["box"] for o in man["objects"]] == [list(o.box) for o in res.objects]
    assert man["objects"][0]["files"] == {"rgba": "object_0.png", "alpha": "alpha_0.png"}
    assert not (tmp_path / "out" / "mattes.zip.part").exists()


def test_zip_with_foreground_estimation_and_16bit(scene, fakes, tmp_path: Path) -> None:
    pipe, _, _ = fakes
    res = pipe.run(scene, Prompt(boxes=[(15, 25, 65, 95)]))
    path = compose.write_zip(res, tmp_path / "m.zip", sixteen_bit=True)
    with zipfile.ZipFile(path) as zf:
        assert "alpha16_0.png" in zf.namelist()
        man = json.loads(zf.read("manifest.json"))
        assert man["objects"][0]["files"]["alpha16"] == "alpha16_0.png"
        assert man["foreground_estimation"] is True
        rgba = read_png(zf.read("object_0.png"))
        soft = (res.alpha > 0) & (res.alpha < 1)
        assert soft.any() and not np.array_equal(rgba[..., :3][soft], scene[soft])


# ----------------------------------------------------------------------- real tiny models


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory: pytest.TempPathFactory) -> MattingPipeline:
    from semat.inference.predictor import SEMatPredictor

    vocab = write_tiny_vocab(tmp_path_factory.mktemp("vocab"))
    return MattingPipeline(lambda v: SEMatPredictor.tiny(v), lambda: TextDetector.tiny(vocab_file=vocab))


def test_tiny_models_every_prompt_mix(tiny_pipeline: MattingPipeline) -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    # random detector: threshold 0 forces candidates through; keep the top one
    res = tiny_pipeline.run(image, Prompt(text="cat. dog.", box_threshold=0.0, text_threshold=0.0,
                                          boxes=[(10, 10, 60, 80)], points=[(30, 40, 1), (100, 20, 1)]),
                            variant="sam", selected=[0])
    sources = [o.source for o in res.objects]
    assert sources[:2] == ["text", "box"] and sources.count("text") == 1
    for o in res.objects:
        assert o.alpha.shape == (96, 128) and o.alpha.dtype == np.float32
        assert 0 <= o.alpha.min() and o.alpha.max() <= 1 and o.mask.dtype == bool
        x1, y1, x2, y2 = o.box
        assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 96
    assert res.alpha.max() <= 1.0
    np.testing.assert_allclose(res.alpha, np.clip(sum(o.alpha for o in res.objects), 0, 1), atol=1e-6)
    before = tiny_pipeline.model_forwards
    again = tiny_pipeline.run(image, res.prompt, variant="sam", selected=[0])
    assert tiny_pipeline.model_forwards == before
    np.testing.assert_array_equal(again.alpha, res.alpha)


def test_default_pipeline_honours_test_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMAT_TEST_MODELS", "tiny")
    pipe = default_pipeline()
    pred = pipe.predictor("sam2")
    assert pred.variant == "sam2" and pred.checkpoint_path is None
    image = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    res = pipe.run(image, Prompt(points=[(40, 30, 1)]), variant="sam2")
    assert len(res.objects) == 1 and res.objects[0].derived_box
    monkeypatch.delenv("SEMAT_TEST_MODELS")
    real = default_pipeline(device="cpu")
    assert real.predictor_factory is not pipe.predictor_factory  # lazy: nothing loaded yet
    assert not real._predictors
