"""``semat matte IMAGE --box X1,Y1,X2,Y2 [--box ...] -o OUT.png``: alpha mattes with SEMat.

Writes the 8-bit grayscale alpha at the image's original size. With several boxes, OUT.png is
their union (sum clipped to 1) and OUT_1.png, OUT_2.png, ... hold each object. ``--rgba`` also
writes the RGBA cut-out of the (union) matte.

The command is three steps, each a small function, so other prompt sources plug in cleanly:
:func:`collect_prompts` (arguments -> boxes / points in original pixels), :func:`run_mattes`
(predictor call) and :func:`write_outputs` (files).

Words and clicks (``--text "cat. dog." [--box-threshold T] [--text-threshold T]``,
``--point X,Y[,1|0]``), ``--background COLOR|IMAGE|blur`` and ``--zip OUT.zip`` go through
:mod:`semat.pipeline` (see :func:`run_pipeline`), the same code path as the web app.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from semat.cli.common import log, predictor_from_args
from semat.errors import InputError
from semat.weights.hub import tiny_models_requested

VARIANT_CHOICES = ("sam", "hq-sam", "sam2")
DEFAULT_VARIANT = "hq-sam"


@dataclass
class Prompts:
    """Prompts in original-image pixels: one box per object and optional points per object."""

    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    points: list[object | None] | None = None  # semat.inference.predictor.PointPrompt per box, or None


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"X1,Y1,X2,Y2"`` -> floats; bad text raises a one-line ValueError."""
    parts = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4:
        raise InputError(f"--box expects X1,Y1,X2,Y2 (four numbers), got {text!r}")
    return values[0], values[1], values[2], values[3]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "matte", help="alpha matte of boxed objects (SEMat)",
        description="Matte the object(s) inside one or more boxes with SEMat and write the alpha "
                    "as an 8-bit grayscale PNG at the input's original size.")
    p.add_argument("image", help="input image file")
    p.add_argument("--box", action="append", default=[], metavar="X1,Y1,X2,Y2",
                   help="object box in pixels of the input (left,top,right,bottom); repeat for several objects")
    p.add_argument("--variant", choices=VARIANT_CHOICES, default=DEFAULT_VARIANT,
                   help=f"SEMat checkpoint family (default {DEFAULT_VARIANT})")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint file or weights name (default: the released file for the variant)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"),
                   help="compute precision (default float32)")
    p.add_argument("--batch-size", type=int, default=4, help="boxes per forward pass (default 4)")
    p.add_argument("-o", "--output", required=True, help="output alpha PNG")
    p.add_argument("--rgba", default=None, metavar="PATH", help="also write the RGBA cut-out here")
    add_prompt_arguments(p)  # --text/--point/--background/--zip (semat.pipeline), defined below
    p.set_defaults(func=run)


def collect_prompts(args: argparse.Namespace, image: np.ndarray) -> Prompts:
    """Turn the command-line prompt options into boxes (and points) in original pixels."""
    from semat.cli.main import CLIError

    if not args.box:
        raise CLIError("give at least one --box X1,Y1,X2,Y2")
    return Prompts(boxes=[parse_box(b) for b in args.box])


def run_mattes(predictor, image: np.ndarray, prompts: Prompts, batch_size: int = 4) -> list[np.ndarray]:
    """Alpha per object (HxW float32 at the size of ``image``)."""
    from semat.inference.predictor import validate_boxes

    validate_boxes(prompts.boxes, image.shape[:2])  # fail before any model work
    objects = predictor.predict(image, prompts.boxes, points=prompts.points, batch_size=batch_size)
    return [o.alpha for o in objects]


def union_alpha(alphas: list[np.ndarray]) -> np.ndarray:
    return np.clip(np.sum(alphas, axis=0), 0.0, 1.0).astype(np.float32)


def per_object_path(output: Path, index: int) -> Path:
    """OUT.png -> OUT_1.png, OUT_2.png, ... (1-based)."""
    return output.with_name(f"{output.stem}_{index}{output.suffix or '.png'}")


def _to_size(alpha: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    if (alpha.shape[1], alpha.shape[0]) == tuple(size_wh):
        return alpha
    return np.clip(cv2.resize(alpha, size_wh, interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


def write_outputs(args: argparse.Namespace, image: np.ndarray, alphas: list[np.ndarray],
                  size_wh: tuple[int, int]) -> list[Path]:
    """Write OUT.png (union), OUT_i.png per object when several, and the RGBA cut-out if asked."""
    from semat.compose import save_alpha_png, save_rgba_png

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    alphas = [_to_size(a, size_wh) for a in alphas]
    union = union_alpha(alphas)
    written = [save_alpha_png(output, union)]
    if len(alphas) > 1:
        written += [save_alpha_png(per_object_path(output, i), a) for i, a in enumerate(alphas, 1)]
    if args.rgba:
        if (image.shape[1], image.shape[0]) != tuple(size_wh):
            image = cv2.resize(image, size_wh, interpolation=cv2.INTER_LINEAR)
        Path(args.rgba).parent.mkdir(parents=True, exist_ok=True)
        written.append(save_rgba_png(args.rgba, image, union))
    return written


def _scale_box(box: tuple[float, float, float, float], size_wh: tuple[int, int], sx: float,
               sy: float) -> tuple[float, float, float, float]:
    """A box in original pixels -> pixels of a downscaled copy (megapixel cap), within its size."""
    w, h = size_wh
    x1, y1, x2, y2 = box
    return min(x1 * sx, w), min(y1 * sy, h), min(x2 * sx, w), min(y2 * sy, h)


def _scaled_prompts(prompts: Prompts, size_wh: tuple[int, int], sx: float, sy: float) -> Prompts:
    """Prompts in original pixels -> pixels of a downscaled copy (megapixel cap)."""
    from semat.inference.predictor import PointPrompt

    boxes = [_scale_box(b, size_wh, sx, sy) for b in prompts.boxes]
    points = None
    if prompts.points is not None:
        points = [None if p is None else PointPrompt(p.coords * np.array([sx, sy]), p.labels)  # type: ignore[attr-defined]
                  for p in prompts.points]
    return Prompts(boxes=boxes, points=points)


def run(args: argparse.Namespace) -> int:
    from semat.cli.main import CLIError
    from semat.inference.predictor import validate_boxes
    from semat.io.images import load_image

    if args.batch_size < 1:
        raise CLIError("--batch-size must be at least 1")
    loaded = load_image(args.image)
    for notice in loaded.notices:
        log(f"semat: {notice}")
    if uses_pipeline(args):  # words, clicks, backgrounds or a ZIP: the shared prompt pipeline
        return run_pipeline(args, loaded)
    w0, h0 = loaded.original_size
    prompts = collect_prompts(args, loaded.rgb)
    validate_boxes(prompts.boxes, (h0, w0))  # boxes refer to the original image
    if loaded.downscaled:
        w1, h1 = loaded.size
        prompts = _scaled_prompts(prompts, (w1, h1), w1 / w0, h1 / h0)
    predictor = predictor_from_args(args)
    alphas = run_mattes(predictor, loaded.rgb, prompts, batch_size=args.batch_size)
    for path in write_outputs(args, loaded.rgb, alphas, (w0, h0)):
        print(path)
    return 0


# ------------------------------------------------------------------------------------------
# Words, clicks, backgrounds and ZIP export, routed through semat.pipeline (the same code path
# as the web app). Plain ``--box`` runs without these options keep the direct predictor path.


def parse_point(text: str) -> tuple[float, float, int]:
    """``"X,Y"`` or ``"X,Y,1|0"`` (1 = include, 0 = exclude; default 1) -> (x, y, label)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        x, y = float(parts[0]), float(parts[1])
        label = int(parts[2]) if len(parts) == 3 else 1
        if label not in (0, 1) or not (np.isfinite(x) and np.isfinite(y)):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected X,Y or X,Y,1|0 (1 = include, 0 = exclude), got {text!r}") from None
    return x, y, label


def add_prompt_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("words, clicks and backgrounds")
    g.add_argument("--text", default=None, metavar="PHRASES",
                   help="what to cut out, e.g. 'cat' or 'cat. dog.' (GroundingDINO finds the boxes)")
    g.add_argument("--box-threshold", type=float, default=0.35, metavar="T",
                   help="minimum detection score, 0..1 (default 0.35; lower it when nothing is found)")
    g.add_argument("--text-threshold", type=float, default=0.25, metavar="T",
                   help="minimum phrase-token score for a detection's label, 0..1 (default 0.25)")
    g.add_argument("--max-objects", type=int, default=None, metavar="N",
                   help="keep only the N best text detections")
    g.add_argument("--detector", default=None, metavar="NAME",
                   help="grounding-dino-tiny (default), grounding-dino-base or a local model folder")
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
    g.add_argument("--zip", default=None, metavar="OUT.zip",
                   help="also write a ZIP with one RGBA + one alpha PNG per object, the union and "
                        "manifest.json (prompt, boxes, scores, thresholds, model, timings)")


def uses_pipeline(args: argparse.Namespace) -> bool:
    return bool(args.text is not None or args.point or args.background or args.zip)


def run_pipeline(args: argparse.Namespace, loaded) -> int:
    from semat import compose
    from semat.cli.main import CLIError
    from semat.inference.predictor import validate_boxes
    from semat.pipeline import MattingPipeline, Prompt, detector_factory
    from semat.runtime import select_runtime

    for name in ("box_threshold", "text_threshold"):
        v = getattr(args, name)
        if not 0.0 <= v <= 1.0:
            raise CLIError(f"--{name.replace('_', '-')} must be between 0 and 1, got {v:g}")
    if args.max_objects is not None and args.max_objects < 1:
        raise CLIError("--max-objects must be at least 1")
    if args.text is None and not args.box and not args.point:
        raise CLIError("give --text, --box or --point to say what to cut out")
    background = compose.parse_background(args.background) if args.background else None
    w0, h0 = loaded.original_size
    w1, h1 = loaded.size
    sx, sy = w1 / w0, h1 / h0
    boxes = [parse_box(b) if isinstance(b, str) else tuple(b) for b in args.box]
    if boxes:
        validate_boxes(boxes, (h0, w0))  # boxes and clicks refer to the original image
    for x, y, _ in args.point:
        if not (0 <= x <= w0 and 0 <= y <= h0):
            raise CLIError(f"--point {x:g},{y:g} is outside the {w0}x{h0} image")
    prompt = Prompt(text=args.text, boxes=[_scale_box(b, (w1, h1), sx, sy) for b in boxes],
                    points=[(min(x * sx, w1), min(y * sy, h1), lab) for x, y, lab in args.point],
                    box_threshold=args.box_threshold, text_threshold=args.text_threshold)
    if prompt.text is None and args.text is not None and not (args.box or args.point):
        raise CLIError("the text prompt is empty; type what to cut out, e.g. --text 'cat'")
    runtime = None if tiny_models_requested() else select_runtime(args.device, args.dtype)
    pipe = MattingPipeline(lambda variant: predictor_from_args(args), detector_factory(args.detector, runtime, log),
                           batch_size=args.batch_size)
    selected = None
    if prompt.text and args.max_objects is not None:
        found = pipe.detect(loaded.rgb, prompt.text, prompt.box_threshold, prompt.text_threshold,
                            raise_if_empty=False)  # cached: run() re-uses this forward
        selected = list(range(min(args.max_objects, len(found))))
    result = pipe.run(loaded.rgb, prompt, variant=args.variant, selected=selected)
    for notice in result.notices:
        log(f"semat: {notice}")
    for i, obj in enumerate(result.objects):
        box = ", ".join(f"{v:.0f}" for v in (obj.box[0] / sx, obj.box[1] / sy, obj.box[2] / sx, obj.box[3] / sy))
        score = "" if obj.score is None else f" {obj.score:.2f}"
        log(f"semat: object {i + 1}: {obj.label}{score} [{box}] ({obj.source})")
    log("semat: timings: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items()))
    alphas = [o.alpha for o in result.objects]
    written = write_outputs(args, loaded.rgb, alphas, (w0, h0))
    if background is not None:
        image = loaded.rgb
        union = union_alpha(alphas)
        if (w1, h1) != (w0, h0):
            image = cv2.resize(image, (w0, h0), interpolation=cv2.INTER_LINEAR)
            union = _to_size(union, (w0, h0))
        out = compose.composite(image, union, background,
                                foreground_estimation=not args.no_foreground_estimation)
        output = Path(args.output)
        target = Path(args.composite) if args.composite else output.with_name(f"{output.stem}_composite.png")
        from semat.io.images import save_png

        written.append(save_png(target, out))
    if args.zip:
        written.append(compose.write_zip(
            result, args.zip, foreground_estimation=not args.no_foreground_estimation,
            manifest_extra={"source": {"file": loaded.name, "original_size": {"width": w0, "height": h0}}}))
    for path in written:
        print(path)
    return 0
