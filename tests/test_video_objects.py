"""Object video matting (``semat video``, :mod:`semat.pipeline.video`) with tiny random models."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from semat.cli.main import main
from semat.pipeline.video import ObjectTracker, TrackConfig, alpha_box, box_iou, grow_box

pytestmark = pytest.mark.usefixtures("one_thread")

W, H, FPS, N = 96, 64, 15, 30


@pytest.fixture(autouse=True)
def tiny_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMAT_TEST_MODELS", "tiny")


def moving_square(i: int, w: int = W, h: int = H) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``i`` of a clip: a soft-edged square moving right over a gradient, and its alpha."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = 20 + 1.5 * i, h / 2
    d = np.maximum(np.abs(xx - cx), np.abs(yy - cy))
    alpha = np.clip((14 - d) / 3, 0, 1)
    bg = np.stack([xx / w * 200, yy / h * 200, np.full_like(xx, 80)], -1)
    fg = np.array([230, 60, 40], np.float32)
    rgb = np.clip(np.rint(alpha[..., None] * fg + (1 - alpha[..., None]) * bg), 0, 255).astype(np.uint8)
    return rgb, alpha


def make_clip(path: Path, n: int = N, audio: bool = True) -> Path:
    c = av.open(str(path), "w")
    vs = c.add_stream("libx264", rate=FPS)
    vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
    a = None
    if audio:
        a = c.add_stream("aac", rate=16000)
        a.layout = "mono"
    for i in range(n):
        for p in vs.encode(av.VideoFrame.from_ndarray(moving_square(i)[0], format="rgb24")):
            c.mux(p)
    for p in vs.encode(None):
        c.mux(p)
    if a is not None:
        t = np.arange(int(16000 * n / FPS)) / 16000
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for k in range(0, len(samples), 1024):
            fr = av.AudioFrame.from_ndarray(samples[None, k:k + 1024], format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 16000, k
            for p in a.encode(fr):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    c.close()
    return path


def test_box_helpers() -> None:
    a = np.zeros((10, 20), np.float32)
    a[2:5, 3:9] = 1
    assert alpha_box(a) == ((3.0, 2.0, 9.0, 5.0), 18.0)
    assert alpha_box(np.zeros((4, 4)))[0] is None
    assert grow_box((3, 2, 9, 5), (10, 20), 0.1, 4) == (0.0, 0.0, 13.0, 9.0)
    assert box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)


def test_semat_video_text_30_frames_with_audio(tmp_path: Path, capsys) -> None:
    clip = make_clip(tmp_path / "clip.mp4")
    out, alpha, webm, tracks = (tmp_path / "o" / n for n in ("comp.mp4", "alpha.mp4", "t.webm", "tracks.jsonl"))
    rc = main(["video", str(clip), "--text", "square", "--box-threshold", "0", "--text-threshold", "0",
               "--max-objects", "1", "--variant", "sam", "--redetect-every", "10", "-o", str(out),
               "--alpha-video", str(alpha), "--webm", str(webm), "--tracks", str(tracks), "--background", "#00ff00",
               "--no-progress"])
    stdout = capsys.readouterr().out
    assert rc == 0 and "30 frame(s) 96x64" in stdout and "audio: copied" in stdout
    with av.open(str(out)) as c:  # plays again: every frame decodes, audio is there
        assert c.streams.video[0].codec_context.name == "h264" and c.streams.audio
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert c.streams.audio[0].codec_context.name == "aac"
    assert len(frames) == N and frames[0].shape == (H, W, 3)
    with av.open(str(alpha)) as c:
        assert sum(1 for _ in c.decode(video=0)) == N
    with av.open(str(webm)) as c:  # VP9 with alpha: libvpx's decoder returns the alpha plane
        s = c.streams.video[0]
        assert s.codec_context.name == "vp9" and s.metadata.get("alpha_mode") == "1"
        ctx = av.codec.CodecContext.create("libvpx-vp9", "r")
        decoded = [f for p in c.demux(s) for f in ctx.decode(p)]
    assert len(decoded) == N and decoded[0].format.name == "yuva420p"
    rows = [json.loads(line) for line in tracks.read_text().splitlines()]
    assert [r["frame"] for r in rows] == list(range(N))
    assert rows[0]["redetected"] and rows[10]["redetected"] and rows[20]["redetected"]
    assert all(len(r["objects"]) >= 1 for r in rows)


def test_semat_video_box_and_png_frames(tmp_path: Path, capsys) -> None:
    clip = make_clip(tmp_path / "clip.mp4", n=6, audio=False)
    out, pngs = tmp_path / "comp.mp4", tmp_path / "frames"
    assert main(["video", str(clip), "--box", "6,18,34,46", "-o", str(out), "--png-dir", str(pngs),
                 "--variant", "sam", "--no-progress"]) == 0
    assert "audio: none" in capsys.readouterr().out
    assert len(list(pngs.glob("frame_*.png"))) == 6


def test_semat_video_errors(tmp_path: Path, capsys) -> None:
    clip = make_clip(tmp_path / "clip.mp4", n=2, audio=False)
    for args, msg in [([str(clip), "-o", str(tmp_path / "o.mp4")], "--text"),
                      ([str(tmp_path / "none.mp4"), "--box", "1,1,9,9", "-o", str(tmp_path / "o.mp4")], "no such file"),
                      ([str(clip), "--box", "1,1,9,9", "--background", "transparent", "-o", str(tmp_path / "o.mp4")],
                       "transparency"),
                      ([str(clip), "--box", "200,1,290,9", "-o", str(tmp_path / "o.mp4")], "outside")]:
        assert main(["video", *args]) == 2
        assert msg in capsys.readouterr().err


class _Pipe:
    """A stand-in pipeline: a detector that sees the known square and a 'matter' that returns the
    known alpha inside the box, so the tracker's rules are tested without model noise."""

    max_boxes = 16

    def __init__(self, truth):
        self.truth = truth
        self.detections = 0

    def detect(self, frame, text, bt, tt, raise_if_empty=True):
        from semat.inference.detect import Detection

        self.detections += 1
        box, _ = alpha_box(self.truth(frame))
        return [] if box is None else [Detection(box, "square", 0.9)]

    def predictor(self, variant):
        return self

    def predict(self, frame, boxes, batch_size=4):
        from types import SimpleNamespace

        out = []
        a = self.truth(frame)
        for b in boxes:
            x1, y1, x2, y2 = (round(float(v)) for v in b)
            m = np.zeros_like(a)
            m[y1:y2, x1:x2] = a[y1:y2, x1:x2]
            out.append(SimpleNamespace(alpha=m))
        return out


def test_tracker_follows_and_redetects_when_lost() -> None:
    frames = {}

    def truth(frame):
        return frames[frame.tobytes()]

    pipe = _Pipe(truth)
    tracker = ObjectTracker(pipe, text="square", config=TrackConfig(redetect_every=0))
    ious = []
    for i in range(20):
        rgb, alpha = moving_square(i)
        if i == 12:  # the object teleports: the propagated box misses it
            rgb, alpha = moving_square(40)
        frames[rgb.tobytes()] = alpha
        res = tracker.step(rgb)
        ious.append(box_iou(alpha_box(res.alpha)[0], alpha_box(alpha)[0]))
    assert min(ious) > 0.9  # every frame's alpha covers the object, the jump included
    assert pipe.detections == 3  # the first frame, the jump, and the return to the path
    assert tracker.stats["redetect_lost"] == 2


def test_independent_rule_takes_each_frames_detections() -> None:
    frames = {}
    pipe = _Pipe(lambda f: frames[f.tobytes()])
    tracker = ObjectTracker(pipe, text="square", config=TrackConfig(rule="independent"))
    for i in range(6):
        rgb, alpha = moving_square(3 * i)
        frames[rgb.tobytes()] = alpha
        res = tracker.step(rgb)
        assert len(tracker.tracks) == 1 and res.tracks[0]["id"] == 0  # one object, same id, no pile-up
        assert res.tracks[0]["box"] == list(alpha_box(alpha)[0])  # this frame's detection, not propagated
    assert pipe.detections == 6
