"""``semat batch INPUT... -o OUT_DIR (--text WORDS | --box ... | --prompts FILE) [--engine local|ray]``.

The folder batch: every image of the inputs (files, folders, URIs) gets OUT_DIR/<stem>.png (8-bit
alpha at the original size), <stem>_rgba.png (cut-out; ``--no-rgba`` skips it) and, with
``--zip``, <stem>.zip (layers + manifest). OUT_DIR/summary.csv holds one row per image (status,
objects, labels, scores, boxes, per-stage seconds, notices, error). An unreadable file or words
that find nothing are reported and skipped; the rest go on (exit status 1 when any failed). A
rerun into the same folder resumes: images already done with the same prompt and options are
skipped. ``semat matte A.jpg B.jpg ... -o OUT_DIR`` is the same job on the local engine.

``--engine ray`` runs it on Ray Data (``pip install 'semat-space[ray]'``): a local Ray by default,
``--address ray://host:10001`` (or ``auto``) for a cluster, one model per worker; inputs and
OUT_DIR may then be any filesystem pyarrow opens (``s3://bucket/photos``).
"""

from __future__ import annotations

import argparse
import sys

from semat.cli.common import add_semat_arguments, announce_test_mode, dtype_of, log


def add_batch_arguments(p: argparse.ArgumentParser, *, with_prompt: bool = True) -> None:
    """The batch-only options (``semat matte`` adds them next to its own)."""
    g = p.add_argument_group("batches (several images, folders or --prompts)")
    g.add_argument("--prompts", default=None, metavar="FILE",
                   help="per-image prompts: CSV (columns image, boxes, points, text) or JSONL "
                        "({\"image\": ..., \"boxes\": [[x1,y1,x2,y2]], \"points\": [[x,y,1]], \"text\": ...})")
    g.add_argument("--recursive", action="store_true", help="descend into sub-folders")
    g.add_argument("--no-rgba", action="store_true", help="write only the alphas (no <stem>_rgba.png)")
    g.add_argument("--chunk", type=int, default=8, metavar="N",
                   help="images predicted together: their SEMat forwards are batched across images "
                        "(default 8)")
    g.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def register(sub: argparse._SubParsersAction) -> None:
    from semat.cli.matte import parse_point

    p = sub.add_parser("batch", help="matte folders of images (local or on a Ray cluster), with resume",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files, folders or URIs (s3://...)")
    p.add_argument("-o", "--output-dir", required=True, metavar="OUT_DIR", help="folder (or URI) for the results")
    p.add_argument("--text", default=None, metavar="PHRASES", help="what to cut out in every image")
    p.add_argument("--box", action="append", default=[], metavar="X1,Y1,X2,Y2",
                   help="the same box in every image; repeatable")
    p.add_argument("--point", action="append", type=parse_point, default=[], metavar="X,Y[,1|0]",
                   help="the same click in every image")
    p.add_argument("--box-threshold", type=float, default=0.35, metavar="T", help="detection score (default 0.35)")
    p.add_argument("--text-threshold", type=float, default=0.25, metavar="T", help="phrase score (default 0.25)")
    p.add_argument("--max-objects", type=int, default=None, metavar="N", help="keep the N best detections")
    p.add_argument("--detector", default=None, metavar="NAME", help="text→box detector")
    p.add_argument("--zip", action="store_true", help="also write <stem>.zip (layers + manifest) per image")
    p.add_argument("--no-foreground-estimation", action="store_true", help="cut-outs keep the raw image colours")
    p.add_argument("--batch-size", type=int, default=4, help="boxes per SEMat forward (default 4)")
    add_semat_arguments(p)
    add_batch_arguments(p)
    r = p.add_argument_group("engine")
    r.add_argument("--engine", choices=("local", "ray"), default="local", help="local (default) or ray")
    r.add_argument("--address", default=None, metavar="ADDR",
                   help="Ray cluster address (ray://host:10001 or auto); default: start a local Ray")
    r.add_argument("--workers", type=int, default=None, metavar="N",
                   help="Ray actors, one model each (default: one per CPU given to --cpus-per-worker, "
                        "or one per GPU)")
    r.add_argument("--cpus-per-worker", type=float, default=1.0, metavar="C", help="CPUs per Ray actor (default 1)")
    r.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G", help="GPUs per Ray actor (default 0)")
    r.add_argument("--num-cpus", type=int, default=None, metavar="N", help="CPUs of a local Ray (default: all)")
    p.set_defaults(func=run)


def _prompt_spec(args: argparse.Namespace):
    from semat.batch import PromptSpec
    from semat.cli.matte import parse_box

    points = list(args.point or [])
    return PromptSpec(args.text.strip() if args.text and args.text.strip() else None,
                      tuple(parse_box(b) for b in args.box), tuple(points))


def options_from_args(args: argparse.Namespace, zip_layers: bool):
    from semat.batch import BatchOptions
    from semat.cli.main import CLIError
    from semat.validate import check_threshold

    if args.batch_size < 1 or args.chunk < 1:
        raise CLIError("--batch-size and --chunk must be at least 1")
    if args.max_objects is not None and args.max_objects < 1:
        raise CLIError("--max-objects must be at least 1")
    return BatchOptions(variant=args.variant, box_threshold=check_threshold(args.box_threshold, "--box-threshold"),
                        text_threshold=check_threshold(args.text_threshold, "--text-threshold"),
                        max_objects=args.max_objects, rgba=not args.no_rgba, zip=zip_layers,
                        foreground_estimation=not args.no_foreground_estimation, batch_size=args.batch_size,
                        chunk=args.chunk, checkpoint=args.checkpoint)


def items_from_args(args: argparse.Namespace, inputs: list[str]):
    from semat.batch import collect_items
    from semat.cli.main import CLIError

    default = _prompt_spec(args)
    if default.empty and not args.prompts:
        raise CLIError("give --text, --box, --point or --prompts FILE to say what to cut out")
    items, problems = collect_items(inputs, default, args.prompts, args.recursive)
    for line in problems:
        log(f"semat: warning: {line}")
    if not items:
        raise CLIError("no input images found")
    return items, len(problems)


def run(args: argparse.Namespace) -> int:
    return run_batch_command(args, list(args.inputs), args.output_dir, zip_layers=args.zip,
                             engine=args.engine)


def run_batch_command(args: argparse.Namespace, inputs: list[str], out_dir: str, *, zip_layers: bool,
                      engine: str = "local") -> int:
    """Shared by ``semat batch`` and the batch form of ``semat matte``."""
    from semat.batch import open_output
    from semat.cli.main import CLIError

    if "://" not in str(out_dir):
        from semat.cli.common import check_output_dir

        check_output_dir(out_dir)
    options = options_from_args(args, zip_layers)
    items, problems = items_from_args(args, inputs)
    announce_test_mode()
    if engine == "ray":
        from semat.batch.ray_engine import RayConfig, run_batch_ray

        cfg = RayConfig(address=args.address, workers=args.workers, cpus_per_worker=args.cpus_per_worker,
                        gpus_per_worker=args.gpus_per_worker, num_cpus=args.num_cpus, device=args.device,
                        dtype=dtype_of(args), detector=args.detector)
        bar = _Bar(args.no_progress)
        summary = run_batch_ray(items, out_dir, options, cfg, progress=bar.row, on_plan=bar.plan)
    else:
        from semat.batch import run_batch
        from semat.pipeline import default_pipeline

        pipe = default_pipeline(device=args.device, dtype=dtype_of(args), detector=args.detector,
                                progress=log, checkpoint=args.checkpoint)
        pipe.batch_size = args.batch_size
        bar = _Bar(args.no_progress)
        try:
            summary = run_batch(items, pipe, open_output(out_dir), options, progress=bar.row, on_plan=bar.plan)
        finally:
            bar.close()
    bar.close()
    print(summary.line())
    if summary.processed == 0 and summary.skipped == 0:
        raise CLIError("no image could be processed")
    return 1 if (summary.failed or problems) else 0


class _Bar:
    """tqdm over the images still to do (ETA from the images done so far); one line per problem."""

    def __init__(self, disabled: bool):
        self.disabled = disabled
        self.bar = None

    def plan(self, todo: int, done: int) -> None:
        from tqdm import tqdm

        if done:
            log(f"semat: resuming: {done} image(s) already done, {todo} to go")
        self.bar = tqdm(total=todo, desc="matting", unit="img", disable=self.disabled, file=sys.stderr)

    def row(self, row: dict, summary) -> None:
        from tqdm import tqdm

        if row.get("status") != "ok":
            tqdm.write(f"semat: skipped {row['image']}: {row.get('status')}: {row.get('error', '')}", file=sys.stderr)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"{summary.failed + summary.nothing_found} skipped", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
