"""``semat human-video IN.mp4 -o OUT.mp4``: SGHM human matting of every frame of a video.

Writes the composite (person over ``--composite``, default the reference's RGB 120,255,155) as
browser-playable H.264/yuv420p MP4, keeps the audio (copied, or transcoded to AAC), and can
also write the matte as a grey H.264 video (``--alpha-video``) and/or RGBA PNG frames
(``--png-dir``). Frames are streamed, so memory does not grow with the clip length.

Network size follows the reference video script: the short side is reduced to ``--short-side``
(default 1280) only when larger, never enlarged, then both sides are floored to multiples of 64;
``--max-side`` caps the longer side. On a CPU a 1080p frame takes seconds: use ``--short-side
512`` (or less) and ``--max-frames`` for a quick result.
"""

from __future__ import annotations

import argparse

from semat.cli.common import add_runtime_arguments, human_from_args, max_side_of
from semat.errors import InputError

REFERENCE_BACKGROUND = "120,255,155"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("human-video", help="automatic human matting (SGHM) of a video",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    p.add_argument("input", metavar="IN", help="input video")
    p.add_argument("-o", "--output", required=True, metavar="OUT.mp4", help="composite video (H.264 MP4)")
    p.add_argument("--checkpoint", default=None, help="SGHM checkpoint file (default: SGHM-ResNet50.pth)")
    p.add_argument("--composite", default=REFERENCE_BACKGROUND, metavar="COLOR",
                   help=f"background: #RRGGBB, R,G,B, a colour name, blur or checker (default {REFERENCE_BACKGROUND})")
    p.add_argument("--foreground-estimation", action="store_true",
                   help="estimate foreground colours per frame (cleaner edges, much slower)")
    p.add_argument("--alpha-video", default=None, metavar="PATH", help="also write the matte as a grey H.264 video")
    p.add_argument("--png-dir", default=None, metavar="DIR", help="also write RGBA PNG frames here")
    p.add_argument("--short-side", type=int, default=1280, help="network short side upper bound (default 1280)")
    p.add_argument("--max-side", type=int, default=None,
                   help="cap on the longer network side (default 2560; 0 = no cap)")
    p.add_argument("--max-frames", type=int, default=None, help="process only the first N frames")
    p.add_argument("--no-audio", action="store_true", help="drop the audio track")
    p.add_argument("--crf", type=int, default=18, help="x264 quality (lower = better, default 18)")
    add_runtime_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from semat.cli.video import write_video
    from semat.compose import parse_background
    from semat.io.video import probe

    background = parse_background(args.composite, allow_path=True)  # a local file is the CLI user's own
    if background.kind == "transparent":
        raise InputError("a video composite needs a background (colour, blur, checker or image), not transparent")
    if args.short_side < 64:
        raise InputError("--short-side must be at least 64")
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError("--max-frames must be at least 1")
    max_side = max_side_of(args)
    probe(args.input)  # one-line error for a missing / non-video input, before loading weights
    matter = human_from_args(args)

    def alpha_of(rgb):
        return matter.predict(rgb, max_side=max_side, upscale=False, short_side=args.short_side).alpha

    write_video(args, alpha_of, background, "human video", foreground_estimation=args.foreground_estimation)
    return 0
