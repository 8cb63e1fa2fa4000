"""The folder batch on Ray Data: the same items, outputs, summary and resume rule as
:func:`semat.batch.run_batch`, with the work spread over a Ray cluster.

The driver applies the resume rule (:func:`semat.batch.job.plan`), then builds one dataset:
``ray.data.read_binary_files`` over the images still to do (local paths or any URI pyarrow reads,
e.g. ``s3://bucket/photos/a.jpg``), ``map_batches`` with an actor pool of :class:`MatteActor`
(one pipeline, so one copy of each model, per actor; ``cpus_per_worker`` / ``gpus_per_worker``
each), ``batch_size`` = the batch's ``chunk``. Each actor runs :func:`~semat.batch.job.process_chunk`
(the local engine's code, SEMat forwards batched across the chunk), writes the image's files
straight into the output folder (local or pyarrow URI) and returns the summary rows; the driver
appends them to ``summary.csv`` as they stream back and drives the progress bar.

Import this module only when Ray is wanted: ``pip install 'semat-space[ray]'``. Nothing else in
the package imports Ray.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from semat.batch.items import BatchItem, PromptSpec
from semat.batch.job import BatchOptions, BatchSummary, _count, load_item, plan, process_chunk
from semat.batch.outputs import SUMMARY, SUMMARY_FIELDS, append_rows, open_output
from semat.errors import InputError

__all__ = ["MatteActor", "RayConfig", "run_batch_ray"]

#: environment variables the actors get from the driver (models, limits, offline mode)
FORWARDED_ENV = ("SEMAT_", "HF_", "TRANSFORMERS_", "HUGGINGFACE_")


@dataclass(frozen=True)
class RayConfig:
    address: str | None = None  # None: start (or join) a local Ray
    workers: int | None = None  # actors; None: CPUs (or GPUs) of the cluster / per worker
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    num_cpus: int | None = None  # local Ray only
    device: str = "auto"
    dtype: str | None = None
    detector: str | None = None


def _require_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise InputError("--engine ray needs Ray: pip install 'semat-space[ray]' (or pip install 'ray[data]')") \
            from None
    return ray


def _key(path: str) -> str:
    """One spelling of a path for matching Ray's ``path`` column to items (Ray drops the scheme)."""
    if "://" in path:
        return path.split("://", 1)[1].lstrip("/")
    return os.path.normpath(os.path.abspath(path)).lstrip("/")


class MatteActor:
    """One Ray actor: a pipeline (its models load once), the output folder and the items' prompts."""

    def __init__(self, out_uri: str, options: dict, meta: dict[str, tuple[str, str, dict]], env: dict[str, str],
                 device: str, dtype: str | None, detector: str | None, threads: int, checkpoint: str | None):
        os.environ.update(env)
        import torch

        from semat.pipeline import default_pipeline

        torch.set_num_threads(max(1, threads))
        self.options = BatchOptions(**options)
        self.out = open_output(out_uri)
        self.meta = meta
        self.pipe = default_pipeline(device=device, dtype=dtype, detector=detector, checkpoint=checkpoint)
        self.pipe.batch_size = self.options.batch_size

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        loaded = []
        for path, data in zip(batch["path"], batch["bytes"]):
            source, stem, spec = self.meta[_key(str(path))]
            item = BatchItem(source, stem, PromptSpec(**{**spec, "boxes": tuple(tuple(b) for b in spec["boxes"]),
                                                        "points": tuple(tuple(p) for p in spec["points"])}))
            loaded.append(load_item(item, data=bytes(data), options=self.options))
        rows = process_chunk(self.pipe, loaded, self.out, self.options)
        return {k: [str(r.get(k, "")) for r in rows] for k in SUMMARY_FIELDS}


def _spec_dict(spec: PromptSpec) -> dict:
    return {"text": spec.text, "boxes": [list(b) for b in spec.boxes], "points": [list(p) for p in spec.points],
            "box_threshold": spec.box_threshold, "text_threshold": spec.text_threshold}


def _readable(item: BatchItem) -> bool:
    if item.problem:
        return False
    if "://" in item.source:
        return True
    return os.path.isfile(item.source) and os.access(item.source, os.R_OK)


def run_batch_ray(items: Sequence[BatchItem], out_dir: str, options: BatchOptions | None = None,
                  config: RayConfig | None = None, progress: Callable[[dict, BatchSummary], Any] | None = None,
                  on_plan: Callable[[int, int], Any] | None = None) -> BatchSummary:
    """:func:`semat.batch.run_batch` on Ray (module docstring). Joins the running Ray session when
    there is one, else starts a local one (``config.address``: a cluster)."""
    ray = _require_ray()
    options = options or BatchOptions()
    config = config or RayConfig()
    out = open_output(out_dir)
    t0 = time.perf_counter()
    todo, done = plan(items, out, options)
    summary = BatchSummary(total=len(items), skipped=len(done), summary_path=out.path_of(SUMMARY))
    if on_plan is not None:
        on_plan(len(todo), len(done))

    def take(rows: list[dict]) -> None:
        append_rows(out, rows)
        for row in rows:
            _count(summary, row)
            if progress is not None:
                progress(row, summary)

    # what cannot be read is answered here, with the local engine's message, not by a failed Ray task
    runnable = [it for it in todo if _readable(it)]
    bad = [it for it in todo if not _readable(it)]
    if bad:
        take(process_chunk(None, [load_item(it, options=options) for it in bad], out, options))
    if runnable:
        env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}
        if not ray.is_initialized():
            kw: dict[str, Any] = {"runtime_env": {"env_vars": env}, "log_to_driver": False,
                                  "include_dashboard": False}
            if config.address:
                kw["address"] = config.address
            elif config.num_cpus:
                kw["num_cpus"] = config.num_cpus
            ray.init(**kw)
        resources = ray.cluster_resources()
        if config.workers:
            workers = config.workers
        elif config.gpus_per_worker:
            workers = max(1, int(resources.get("GPU", 1) // config.gpus_per_worker))
        else:
            workers = max(1, int(resources.get("CPU", 1) // max(config.cpus_per_worker, 1e-6)))
        workers = min(workers, max(1, -(-len(runnable) // options.chunk)))
        meta = {_key(it.source): (it.source, it.stem, _spec_dict(it.prompt)) for it in runnable}
        # reading is I/O: no CPU reserved, so the actors may take every CPU without starving it
        ds = ray.data.read_binary_files([it.source for it in runnable], include_paths=True, num_cpus=0)
        gpus = {"num_gpus": config.gpus_per_worker} if config.gpus_per_worker else {}
        ds = ds.map_batches(
            MatteActor, batch_size=options.chunk, batch_format="numpy", concurrency=workers,
            num_cpus=config.cpus_per_worker, **gpus,
            fn_constructor_kwargs={"out_uri": out.uri, "options": asdict(options), "meta": meta, "env": env,
                                   "device": config.device, "dtype": config.dtype, "detector": config.detector,
                                   "threads": max(1, int(config.cpus_per_worker)),
                                   "checkpoint": options.checkpoint})
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            n = len(batch["stem"])
            take([{k: str(batch[k][i]) for k in SUMMARY_FIELDS} for i in range(n)])
    summary.seconds = time.perf_counter() - t0
    return summary
