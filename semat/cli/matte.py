"""``semat matte IMAGE (--box X1,Y1,X2,Y2 | --text WORDS | --point X,Y[,1|0]) ... -o OUT.png``.

Several images, a folder or ``--prompts FILE`` make it a batch into ``-o OUT_DIR``
(:mod:`semat.cli.batch`, the same job as ``semat batch``).

Argument parsing and file writing only: the prompt goes to :class:`semat.pipeline.MattingPipeline`,
the same code path as the web app. Writes the 8-bit grayscale alpha at the image's original size;
with several objects OUT.png is their union (sum clipped to 1) and OUT_1.png, OUT_2.png, ... hold
each object. ``--rgba`` writes the RGBA cut-out, ``--background`` a composite and ``--zip`` the
layers. Prompts are given in pixels of the input; when the input is downscaled (megapixel cap)
they are scaled to the working copy and the outputs scaled back.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from semat.cli.common import add_semat_arguments, check_output_file, dtype_of, log
from semat.errors import InputError
from semat.validate import check_boxes, check_points, check_threshold, parse_boxes, parse_points


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"X1,Y1,X2,Y2"`` -> floats (the same syntax as the app's Boxes field)."""
    try:
        boxes = parse_boxes(text)
    except InputError:
        boxes = []
    if len(boxes) != 1:
        raise InputError(f"--box expects X1,Y1,X2,Y2 (four numbers), got {text[:60]!r}")
    return boxes[0]


def parse_point(text: str) -> tuple[float, float, int]:
    """``"X,Y"`` or ``"X,Y,1|0"`` (1 = include, 0 = exclude; default 1)."""
    try:
        points = parse_points(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if len(points) != 1:
        raise argparse.ArgumentTypeError(f"expected X,Y or X,Y,1|0 (1 = include, 0 = exclude), got {text[:60]!r}")
    return points[0]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "matte", help="alpha matte of objects given by boxes, words or clicks (SEMat)",
        description="Matte the object(s) given by boxes, words or clicks with SEMat and write the alpha "
                    "as an 8-bit grayscale PNG at the input's original size.")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="input image file; several files or folders (or --prompts) make a batch into -o OUT_DIR")
    p.add_argument("--box", action="append", default=[], metavar="X1,Y1,X2,Y2",
                   help="object box in pixels of the input (left,top,right,bottom); repeat for several objects")
    add_semat_arguments(p)
    p.add_argument("--batch-size", type=int, default=4, help="boxes per forward pass (default 4)")
    p.add_argument("-o", "--output", required=True,
                   help="output alpha PNG (one image) or folder (a batch: <stem>.png, <stem>_rgba.png, summary.csv)")
    p.add_argument("--rgba", default=None, metavar="PATH",
                   help="also write the RGBA cut-out here (a batch writes <stem>_rgba.png unless --no-rgba)")
    g = p.add_argument_group("words, clicks and backgrounds")
    g.add_argument("--text", default=None, metavar="PHRASES",
                   help="what to cut out, e.g. 'cat' or 'cat. dog.' (GroundingDINO finds the boxes)")
    g.add_argument("--box-threshold", type=float, default=0.35, metavar="T",
                   help="minimum detection score, 0..1 (default 0.35; lower it when nothing is found)")
    g.add_argument("--text-threshold", type=float, default=0.25, metavar="T",
                   help="minimum phrase-token score for a detection's label, 0..1 (default 0.25)")
    g.add_argument("--max-objects", type=int, default=None, metavar="N", help="keep only the N best text detections")
    g.add_argument("--detector", default=None, metavar="NAME",
                   help="text→box detector: a registry name or a local transformers folder")
    g.add_argument("--detector-size", type=int, default=None, metavar="PX",
                   help="detector input size, shortest side in px (default 800, or SEMAT_DETECTOR_SIZE); "
                        "640 is faster on CPU and weaker on small objects")
    g.add_argument("--point", action="append", type=parse_point, default=[], metavar="X,Y[,1|0]",
                   help="click in input pixels; 1 = include (default), 0 = exclude; repeatable. Clicks "
                        "inside a box refine it; include clicks outside every box make their own object")
    g.add_argument("--background", default=None, metavar="COLOR|IMAGE|blur",
                   help="also write a composite over a colour (#RRGGBB, R,G,B, white, green...), an "
                        "image file (resized and cropped to fit), 'blur', 'checker' or 'transparent'")
    g.add_argument("--composite", default=None, metavar="PATH",
                   help="where to write the composite (default OUT_composite.png)")
    g.add_argument("--no-foreground-estimation", action="store_true",
                   help="blend the raw image colours (default: estimate foreground colours so edges "
                        "do not carry the old background's colour)")
    g.add_argument("--zip", default=None, metavar="OUT.zip", nargs="?", const=BATCH_ZIP,
                   help="also write a ZIP with one RGBA + one alpha PNG per object, the union and "
                        "manifest.json (prompt, boxes, scores, thresholds, model, timings); in a batch "
                        "give it without a name: every image gets <stem>.zip")
    from semat.cli.batch import add_batch_arguments

    add_batch_arguments(p)
    p.set_defaults(func=run)


BATCH_ZIP = "\0per-image"  # --zip without a file name (a batch)


def is_batch(args: argparse.Namespace) -> bool:
    """Several inputs, a folder, a URI or a prompts file make a batch; one image file does not."""
    images = args.images
    return bool(args.prompts) or len(images) > 1 or any("://" in i or Path(i).expanduser().is_dir()
                                                         for i in images)


def run_batch_mode(args: argparse.Namespace) -> int:
    from semat.cli.batch import run_batch_command
    from semat.cli.main import CLIError

    if args.background is not None or args.composite is not None:
        raise CLIError("--background/--composite work on one image; a batch writes alphas, cut-outs and ZIPs")
    if args.rgba is not None:
        raise CLIError("a batch writes <stem>_rgba.png into the -o folder by itself; drop --rgba PATH "
                       "(or add --no-rgba to skip the cut-outs)")
    if args.zip not in (None, BATCH_ZIP):
        raise CLIError("in a batch --zip takes no file name: every image gets <stem>.zip in the -o folder")
    return run_batch_command(args, list(args.images), args.output, zip_layers=args.zip == BATCH_ZIP)


def per_object_path(output: Path, index: int) -> Path:
    """OUT.png -> OUT_1.png, OUT_2.png, ... (1-based)."""
    return output.with_name(f"{output.stem}_{index}{output.suffix or '.png'}")


def union_alpha(alphas: list[np.ndarray]) -> np.ndarray:
    from semat.pipeline import union

    return union([_Obj(a) for a in alphas], alphas[0].shape)[0]


class _Obj:  # the union of plain alpha arrays (per-object files at the original size)
    def __init__(self, alpha: np.ndarray):
        self.alpha, self.mask = alpha, np.zeros(alpha.shape, bool)


def _to_size(a: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    if (a.shape[1], a.shape[0]) == tuple(size_wh):
        return a
    return np.clip(cv2.resize(a, size_wh, interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


def _check_arguments(args: argparse.Namespace):
    """Everything that can be checked before loading the image or a model."""
    from semat.cli.main import CLIError
    from semat.compose import parse_background

    if args.batch_size < 1:
        raise CLIError("--batch-size must be at least 1")
    if args.max_objects is not None and args.max_objects < 1:
        raise CLIError("--max-objects must be at least 1")
    check_threshold(args.box_threshold, "--box-threshold")
    check_threshold(args.text_threshold, "--text-threshold")
    if args.text is not None and not args.text.strip() and not (args.box or args.point):
        raise CLIError("the text prompt is empty; type what to cut out, e.g. --text 'cat'")
    if args.text is None and not args.box and not args.point:
        raise CLIError("give --text, --box or --point to say what to cut out")
    for path, flag in ((args.output, "-o"), (args.rgba, "--rgba"), (args.zip, "--zip"), (args.composite, "--composite")):
        if path:
            check_output_file(path, flag)
    # CLI users own the machine: a local image file is a fine background here (never in the app/API)
    return parse_background(args.background, allow_path=True) if args.background else None


def run(args: argparse.Namespace) -> int:
    from semat.io.images import load_image
    from semat.pipeline import Prompt, default_pipeline

    if is_batch(args):
        return run_batch_mode(args)
    args.image = args.images[0]
    if args.zip == BATCH_ZIP:
        from semat.cli.main import CLIError

        raise CLIError("--zip needs a file name for one image, e.g. --zip layers.zip")
    background = _check_arguments(args)
    loaded = load_image(args.image)
    for notice in loaded.notices:
        log(f"semat: {notice}")
    (w0, h0), (w1, h1) = loaded.original_size, loaded.size
    sx, sy = w1 / w0, h1 / h0
    notices: list[str] = []
    boxes = check_boxes([parse_box(b) for b in args.box], (h0, w0), max_boxes=None, notices=notices,
                        allow_empty=True)  # prompts refer to the original image
    points = check_points(args.point, (h0, w0))
    prompt = Prompt(text=args.text, boxes=[(min(x1 * sx, w1), min(y1 * sy, h1), min(x2 * sx, w1), min(y2 * sy, h1))
                                           for x1, y1, x2, y2 in boxes],
                    points=[(min(x * sx, w1), min(y * sy, h1), lab) for x, y, lab in points],
                    box_threshold=args.box_threshold, text_threshold=args.text_threshold)
    from semat.cli.common import announce_test_mode

    announce_test_mode()
    pipe = default_pipeline(device=args.device, dtype=dtype_of(args), detector=args.detector,
                            detector_size=args.detector_size, progress=log,
                            checkpoint=args.checkpoint)
    pipe.batch_size = args.batch_size
    result = pipe.run(loaded.rgb, prompt, variant=args.variant, max_objects=args.max_objects)
    for notice in notices + result.notices:
        log(f"semat: {notice}")
    for i, obj in enumerate(result.objects):
        box = ", ".join(f"{v:.0f}" for v in (obj.box[0] / sx, obj.box[1] / sy, obj.box[2] / sx, obj.box[3] / sy))
        score = "" if obj.score is None else f" {obj.score:.2f}"
        log(f"semat: object {i + 1}: {obj.label}{score} [{box}] ({obj.source})")
    log("semat: timings: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items()))
    for path in write_outputs(args, loaded, result, background):
        print(path)
    return 0


def write_outputs(args: argparse.Namespace, loaded, result, background) -> list[Path]:
    """OUT.png (union), OUT_i.png per object when several, then --rgba, --background and --zip."""
    from semat import compose
    from semat.io.images import save_png

    size = loaded.original_size
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    alphas = [_to_size(o.alpha, size) for o in result.objects]
    union = union_alpha(alphas)
    written = [compose.save_alpha_png(output, union)]
    if len(alphas) > 1:
        written += [compose.save_alpha_png(per_object_path(output, i), a) for i, a in enumerate(alphas, 1)]
    image = loaded.rgb
    if loaded.downscaled and (args.rgba or background is not None):
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    if args.rgba:
        Path(args.rgba).parent.mkdir(parents=True, exist_ok=True)
        written.append(compose.save_rgba_png(args.rgba, image, union))
    if background is not None:
        out = compose.composite(image, union, background, foreground_estimation=not args.no_foreground_estimation)
        target = Path(args.composite) if args.composite else output.with_name(f"{output.stem}_composite.png")
        written.append(save_png(target, out))
    if args.zip:
        w0, h0 = size
        written.append(compose.write_zip(
            result, args.zip, foreground_estimation=not args.no_foreground_estimation,
            manifest_extra={"source": {"file": loaded.name, "original_size": {"width": w0, "height": h0}}}))
    return written
