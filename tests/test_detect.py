"""Text → boxes: prompt parsing, decoding, de-duplication, tiny random GroundingDINO, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semat.inference.detect import (
    Detection,
    NoDetectionError,
    TextDetector,
    box_iou,
    decode,
    deduplicate,
    no_detection_message,
    normalise_prompt,
    phrase_index_per_token,
    split_phrases,
    write_tiny_vocab,
)


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_vocab(tmp_path_factory.mktemp("vocab"), words=["cat", "dog", "black", "ball"])


@pytest.fixture(scope="module")
def detector(vocab_file: Path) -> TextDetector:
    return TextDetector.tiny(seed=0, vocab_file=vocab_file)


def test_prompt_parsing() -> None:
    assert split_phrases("cat. dog.") == ["cat", "dog"]
    assert split_phrases(" a  Cat , the dog;ball\n") == ["a Cat", "the dog", "ball"]
    assert normalise_prompt("Cat, Dog") == "cat. dog."
    with pytest.raises(ValueError, match="empty"):
        normalise_prompt(" . , ")


def test_vocab_special_ids(vocab_file: Path) -> None:
    lines = vocab_file.read_text().splitlines()
    assert (lines[101], lines[102], lines[1012], lines[1029]) == ("[CLS]", "[SEP]", ".", "?")
    assert lines[0] == "[PAD]" and lines[100] == "[UNK]"


def test_phrase_index_per_token(detector: TextDetector) -> None:
    ids = detector.processor.tokenizer(normalise_prompt("black cat. dog"))["input_ids"]
    idx = phrase_index_per_token(ids, 2)
    # [CLS] black cat . dog . [SEP]
    assert ids[0] == 101 and ids[-1] == 102
    assert idx.tolist() == [-1, 0, 0, -1, 1, -1, -1]


def test_decode_scores_labels_and_thresholds() -> None:
    ids = [101, 2000, 2001, 1012, 2002, 1012, 102]  # [CLS] black cat . dog . [SEP]
    phrases = ["black cat", "dog"]
    probs = np.zeros((4, len(ids)))
    probs[0, 2] = 0.9  # query 0 → "cat" token → phrase 0
    probs[1, 4] = 0.5  # query 1 → "dog"
    probs[2, 0] = 0.99  # query 2 only fires on [CLS]: ignored
    probs[3, 1] = 0.3  # query 3 below the box threshold
    boxes = np.array([[10, 10, 50, 40], [-20, 5, 30, 200], [0, 0, 10, 10], [0, 0, 9, 9]], float)
    dets, best = decode(probs, boxes, ids, phrases, 0.35, 0.25, (100, 120))
    assert best == pytest.approx(0.9)
    assert [(d.label, round(d.score, 2)) for d in dets] == [("black cat", 0.9), ("dog", 0.5)]
    assert dets[1].box == (0.0, 5.0, 30.0, 100.0)  # clipped to the 120x100 image
    # a text threshold above a query's best token drops it (not grounded in any phrase)
    dets, _ = decode(probs, boxes, ids, phrases, 0.35, 0.6, (100, 120))
    assert [d.label for d in dets] == ["black cat"]


def test_deduplicate_same_and_cross_label() -> None:
    dets = [
        Detection((0, 0, 100, 100), "cat", 0.9),
        Detection((5, 5, 100, 100), "cat", 0.8),  # IoU 0.9025 with the first, same label → dup
        Detection((2, 2, 100, 100), "animal", 0.7),  # IoU 0.96, other label → dup (> 0.85)
        Detection((0, 0, 100, 60), "dog", 0.6),  # IoU 0.6, other label → kept
        Detection((200, 200, 260, 260), "cat", 0.5),  # separate → kept
        Detection((0, 0, 100, 55), "dog", 0.4),  # IoU 0.917 with the dog → dup
    ]
    kept = deduplicate(dets)
    assert [(d.label, d.score) for d in kept] == [("cat", 0.9), ("dog", 0.6), ("cat", 0.5)]
    assert len(deduplicate(dets, max_detections=2)) == 2
    assert deduplicate([]) == []
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [20, 20, 30, 30]]))
    np.testing.assert_allclose(iou, [[1 / 3, 0.0]])


def test_tiny_detector_returns_labelled_deduplicated_boxes(detector: TextDetector) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (90, 130, 3), dtype=np.uint8)
    calls = detector.calls
    # random weights: force every query through with threshold 0 to exercise the whole path
    dets = detector.detect(image, "cat. dog.", box_threshold=0.0, text_threshold=0.0, max_detections=50)
    assert detector.calls == calls + 1
    assert dets, "threshold 0 must keep candidates"
    assert {d.label for d in dets} <= {"cat", "dog"}
    scores = [d.score for d in dets]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    for d in dets:
        x1, y1, x2, y2 = d.box
        assert 0 <= x1 < x2 <= 130 and 0 <= y1 < y2 <= 90
    boxes = np.array([d.box for d in dets])
    iou = box_iou(boxes, boxes)
    for i in range(len(dets)):
        for j in range(i):
            limit = 0.5 if dets[i].label == dets[j].label else 0.85
            assert iou[i, j] <= limit
    top = detector.detect(image, "cat. dog.", box_threshold=0.0, text_threshold=0.0, max_detections=3)
    assert len(top) <= 3
    assert set(detector.last_timings) == {"detect_preprocess", "detect_forward", "detect_postprocess"}


def test_no_detection_message_says_what_to_change(detector: TextDetector) -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(NoDetectionError) as info:
        detector.detect(image, "cat", box_threshold=1.0)
    msg = str(info.value)
    assert "no 'cat' found at box threshold 1.00" in msg
    assert "lower the box threshold" in msg and "draw a box" in msg and "\n" not in msg
    assert info.value.best_score is not None and 0 <= info.value.best_score <= 1
    assert isinstance(info.value, ValueError)
    assert detector.detect(image, "cat", box_threshold=1.0, raise_if_empty=False) == []
    # text threshold too strict: the message points at that threshold
    assert "lower the text threshold" in no_detection_message("cat", 0.3, 0.5, 0.9)
    assert "to about 0.20" in no_detection_message("cat. dog", 0.35, 0.215, 0.25)


def test_bad_arguments(detector: TextDetector) -> None:
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="box threshold"):
        detector.detect(image, "cat", box_threshold=1.5)
    with pytest.raises(ValueError, match="text threshold"):
        detector.detect(image, "cat", text_threshold=-0.1)
    with pytest.raises(ValueError, match="empty"):
        detector.detect(image, "  ")
    with pytest.raises(ValueError, match=r"RGB uint8 array \(HxWx3\)"):
        detector.detect(np.zeros((32, 32), np.uint8), "cat")


def test_wrong_vocab_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", ".", "?"]))
    with pytest.raises(ValueError, match="must have ids"):
        TextDetector.tiny(vocab_file=tmp_path / "vocab.txt")


def test_from_pretrained_folder_round_trip(detector: TextDetector, tmp_path: Path) -> None:
    folder = tmp_path / "gd"
    detector.model.save_pretrained(folder)
    detector.processor.save_pretrained(folder)
    loaded = TextDetector.from_pretrained(str(folder), device="cpu")
    image = np.random.default_rng(1).integers(0, 256, (70, 80, 3), dtype=np.uint8)
    p1, b1, ids1 = detector.raw_scores(image, "cat. dog.")
    p2, b2, ids2 = loaded.raw_scores(image, "cat. dog.")
    assert ids1 == ids2
    np.testing.assert_allclose(p1, p2, atol=1e-5)
    np.testing.assert_allclose(b1, b2, atol=1e-3)


def test_missing_registry_weights_give_download_advice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from semat.weights.hub import WeightsUnavailable

    monkeypatch.setenv("SEMAT_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable, match="grounding-dino-base"):
        TextDetector.from_pretrained("base")
