"""``semat video IN.mp4 (--text WORDS | --box X1,Y1,X2,Y2) -o OUT.mp4``: SEMat on any object in a clip.

The objects are detected on the first frame (``--text``) or given (``--box``, repeatable), then
followed: each frame's box is the previous frame's alpha box grown by ``--margin``, with a fresh
detection every ``--redetect-every`` frames and whenever an object's alpha vanishes or jumps
(:mod:`semat.pipeline.video`). Writes the composite as browser-playable H.264 MP4 over
``--background`` (default a checkerboard, i.e. "transparent"; or a colour) with the audio kept,
and optionally the matte as grey H.264 (``--alpha-video``), a transparent WebM (VP9 with alpha,
``--webm``; no audio) and RGBA PNG frames (``--png-dir``). Frames stream through: memory does not
grow with the clip's length.

Cost: one SEMat forward per object per frame (plus GroundingDINO at re-detections). On 2 CPU
cores that is seconds per frame with the released weights (about 15 s for HQ-SAM, 9 s for SAM2
at 1024 px working size): use ``--max-frames`` and SAM2 for a quick look, a GPU for whole clips.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from semat.cli.common import add_semat_arguments, announce_test_mode, dtype_of, log

if TYPE_CHECKING:
    from semat.io.video import VideoResult


def register(sub: argparse._SubParsersAction) -> None:
    from semat.cli.matte import parse_box

    p = sub.add_parser("video", help="matte objects named by words or boxes through a video (SEMat)",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN", help="input video")
    p.add_argument("-o", "--output", required=True, metavar="OUT.mp4", help="composite video (H.264 MP4)")
    p.add_argument("--text", default=None, metavar="PHRASES", help="what to follow, e.g. 'dog' or 'dog. ball.'")
    p.add_argument("--box", action="append", default=[], type=_box_arg(parse_box), metavar="X1,Y1,X2,Y2",
                   help="object box on the first frame (repeatable)")
    p.add_argument("--box-threshold", type=float, default=0.35, metavar="T", help="detection score (default 0.35)")
    p.add_argument("--text-threshold", type=float, default=0.25, metavar="T", help="phrase score (default 0.25)")
    p.add_argument("--max-objects", type=int, default=None, metavar="N", help="follow at most N objects")
    p.add_argument("--detector", default=None, metavar="NAME", help="text→box detector")
    p.add_argument("--redetect-every", type=int, default=30, metavar="N",
                   help="detect again every N frames (default 30; 0: only when an object is lost)")
    p.add_argument("--margin", type=float, default=0.10, metavar="F",
                   help="grow the previous frame's alpha box by F of its size per side (default 0.10)")
    p.add_argument("--rule", choices=("propagate", "independent"), default="propagate",
                   help="boxes from the previous alpha (default) or a fresh detection every frame")
    p.add_argument("--background", default="checker", metavar="COLOR|checker",
                   help="composite background: checker (default), a colour (#RRGGBB, R,G,B, white...) or blur")
    p.add_argument("--alpha-video", default=None, metavar="PATH", help="also write the matte as grey H.264")
    p.add_argument("--webm", default=None, metavar="PATH.webm", help="also write a transparent VP9 WebM (alpha)")
    p.add_argument("--png-dir", default=None, metavar="DIR", help="also write RGBA PNG frames here")
    p.add_argument("--tracks", default=None, metavar="PATH.jsonl", help="write each frame's objects and boxes here")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="only the first N frames")
    p.add_argument("--no-audio", action="store_true", help="drop the audio track")
    p.add_argument("--crf", type=int, default=18, help="x264 quality (lower = better, default 18)")
    p.add_argument("--batch-size", type=int, default=4, help="objects per SEMat forward (default 4)")
    add_semat_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def _box_arg(parse):
    def f(text: str):
        from semat.errors import InputError

        try:
            return parse(text)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return f


def write_video(args: argparse.Namespace, alpha_fn, background, desc: str, *, webm: str | None = None,
                foreground_estimation: bool = False, postfix=None) -> VideoResult:
    """The CLI's video run, shared by ``semat video`` and ``semat human-video``: a tqdm bar over
    :func:`semat.io.video.matte_video` (``args``: input, output, alpha_video, png_dir, no_audio,
    max_frames, crf, no_progress), then its notices and a one-line summary. ``postfix()`` is shown
    on the bar after each frame."""
    from tqdm import tqdm

    from semat.io.video import matte_video, probe

    info = probe(args.input)
    total = info.frames if args.max_frames is None else min(info.frames or args.max_frames, args.max_frames)
    bar = tqdm(total=total, desc=desc, unit="frame", disable=args.no_progress, file=sys.stderr)

    def progress(done: int, _total: int | None) -> None:
        bar.update(done - bar.n)
        if postfix is not None:
            bar.set_postfix_str(postfix(), refresh=False)

    try:
        res = matte_video(args.input, args.output, alpha_fn, background, webm=webm,
                          foreground_estimation=foreground_estimation, alpha_video=args.alpha_video,
                          png_dir=args.png_dir, keep_audio=not args.no_audio, max_frames=args.max_frames,
                          crf=args.crf, progress=progress)
    finally:
        bar.close()
    for note in res.notices:
        log(f"semat: note: {note}")
    extra = "".join([f", alpha video {res.alpha_video}" if res.alpha_video else "",
                     f", transparent WebM {res.webm}" if res.webm else "",
                     f", PNG frames in {res.png_dir}" if res.png_dir else ""])
    print(f"{res.frames} frame(s) {res.width}x{res.height} @ {float(res.fps):.3g} fps written to {res.output} "
          f"(audio: {res.audio}){extra}")
    return res


def run(args: argparse.Namespace) -> int:
    from semat.cli.common import check_output_file
    from semat.cli.main import CLIError
    from semat.compose import parse_background
    from semat.io.video import probe
    from semat.pipeline import default_pipeline
    from semat.pipeline.video import ObjectTracker, TrackConfig
    from semat.validate import check_boxes, check_threshold

    if not (args.text and args.text.strip()) and not args.box:
        raise CLIError("give --text WORDS or --box X1,Y1,X2,Y2 to say what to follow")
    for v, flag in ((args.max_frames, "--max-frames"), (args.max_objects, "--max-objects"),
                    (args.batch_size, "--batch-size")):
        if v is not None and v < 1:
            raise CLIError(f"{flag} must be at least 1")
    if args.redetect_every < 0 or not 0 <= args.margin <= 2:
        raise CLIError("--redetect-every must be >= 0 and --margin between 0 and 2")
    check_threshold(args.box_threshold, "--box-threshold")
    check_threshold(args.text_threshold, "--text-threshold")
    background = parse_background(args.background, allow_path=True)
    if background.kind == "transparent":
        raise CLIError("an H.264 composite has no transparency: use --background checker or a colour, and "
                       "--webm or --png-dir for transparent output")
    for path, flag in ((args.output, "-o"), (args.alpha_video, "--alpha-video"), (args.webm, "--webm"),
                       (args.tracks, "--tracks")):
        if path:
            check_output_file(path, flag)
    info = probe(args.input)  # one-line error for a missing / non-video input, before loading weights
    boxes = check_boxes(args.box, (info.height, info.width), max_boxes=None, notices=[], allow_empty=True)
    announce_test_mode()
    pipe = default_pipeline(device=args.device, dtype=dtype_of(args), detector=args.detector, progress=log,
                            checkpoint=args.checkpoint)
    tracker = ObjectTracker(pipe, text=args.text.strip() if args.text and args.text.strip() else None,
                            boxes=[tuple(b) for b in boxes], variant=args.variant,
                            box_threshold=args.box_threshold, text_threshold=args.text_threshold,
                            max_objects=args.max_objects, batch_size=args.batch_size,
                            config=TrackConfig(margin=args.margin, redetect_every=args.redetect_every,
                                               rule=args.rule))
    tracks_file = None
    if args.tracks:
        Path(args.tracks).parent.mkdir(parents=True, exist_ok=True)
        tracks_file = open(args.tracks, "w", encoding="utf-8")

    def alpha_of(frame):
        res = tracker.step(frame)
        if tracks_file is not None:
            tracks_file.write(json.dumps({"frame": res.index, "redetected": res.redetected, "objects": res.tracks,
                                          "seconds": {k: round(v, 4) for k, v in res.timings.items()}}) + "\n")
        return res.alpha

    try:
        write_video(args, alpha_of, background, "video", webm=args.webm,
                    postfix=lambda: f"{len(tracker.tracks)} object(s)")
    finally:
        if tracks_file is not None:
            tracks_file.close()
    st = tracker.stats
    log(f"semat: {st['frames']} frame(s), {st['semat_objects']} SEMat object-forwards, {st['detections']} "
        f"detection(s) ({st['redetect_lost']} after a lost object)")
    return 0
