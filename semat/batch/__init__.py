"""Batch jobs: many images (files, folders, a prompts file) through one pipeline, with resume.

* :mod:`~semat.batch.items`: :class:`BatchItem`, :class:`PromptSpec`, the prompts file (CSV/JSONL);
* :mod:`~semat.batch.outputs`: the output folder (local or pyarrow URI), file names, ``summary.csv``
  and the resume rule;
* :mod:`~semat.batch.job`: :func:`run_batch` (the local engine) and :func:`process_chunk` (one
  chunk, with SEMat forwards batched across its images), used by both engines;
* :mod:`~semat.batch.ray_engine`: the same job on Ray Data (optional extra ``semat-space[ray]``;
  nothing here imports Ray).
"""

from semat.batch.items import BatchItem, PromptSpec, collect_items, collect_paths, read_prompts
from semat.batch.job import BatchOptions, BatchSummary, load_item, process_chunk, run_batch, signature
from semat.batch.outputs import SUMMARY, SUMMARY_FIELDS, open_output, output_names

__all__ = [
    "SUMMARY", "SUMMARY_FIELDS", "BatchItem", "BatchOptions", "BatchSummary", "PromptSpec", "collect_items",
    "collect_paths", "load_item", "open_output", "output_names", "process_chunk", "read_prompts", "run_batch",
    "signature",
]
