"""Every ``SEMAT_*`` environment variable, read in one place.

:meth:`Settings.from_env` reads them all at call time (never at import), so a long-running app
or a test that sets a variable sees the new value. Each field's metadata names its variable and
documents it; the README's table of variables is checked against :func:`variables` by a test.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from semat.errors import InputError

__all__ = ["ZERO_GPU_CONCURRENCY", "Settings", "SettingsError", "variables", "zero_gpu_mode"]

#: ``SEMAT_CONCURRENCY`` when unset on ZeroGPU. Each model request's GPU part runs in its own
#: forked worker there, so two at once overlap one visitor's CPU-side work in the main process
#: (image decode, foreground estimation, PNG/ZIP export: ~1 s of a 12 MP request) with another's
#: GPU call. More would share the main container's CPUs and 16 GB of RAM between several 12 MP
#: exports (each holds ~1 GB of arrays); the variable raises it. On CPU the model itself uses every
#: core, so two requests only slow each other: 1.
ZERO_GPU_CONCURRENCY = 2


class SettingsError(InputError):
    """A ``SEMAT_*`` variable holds a value that cannot be used."""

    title = "Bad setting"


def _var(env: str, default: object, doc: str, lo: float | None = None, hi: float | None = None):
    return field(default=default, metadata={"env": env, "doc": doc, "lo": lo, "hi": hi})


@dataclass(frozen=True)
class Settings:
    test_models: bool = _var("SEMAT_TEST_MODELS", False,
                             "`tiny`: tiny random-weight models everywhere (tests, UI work); never the default")
    weights_dir: str = _var("SEMAT_WEIGHTS_DIR", "weights",
                             "folder searched for weights before the Hugging Face cache")
    device: str = _var("SEMAT_DEVICE", "auto", "`auto`, `cpu`, `cuda` or `cuda:N`")
    dtype: str = _var("SEMAT_DTYPE", "auto", "`auto` (bf16 where the GPU/CPU has native bf16 matmul: "
                      "CUDA bf16, AMX or AVX512-BF16; fp32 elsewhere), `float32`, `bfloat16` or `float16`")
    malloc_tune: bool = _var("SEMAT_MALLOC_TUNE", True,
                             "`0` keeps glibc's default of returning large freed blocks to the OS (CPU)")
    detector: str = _var("SEMAT_DETECTOR", "", "text→box detector (registry name or a local folder)")
    detector_size: int = _var("SEMAT_DETECTOR_SIZE", 0,
                              "detector input size, its shortest side in px (0: the model's own 800; 640 is "
                              "faster on CPU and weaker on small objects)", 0, 4096)
    max_megapixels: float = _var("SEMAT_MAX_MEGAPIXELS", 12.0,
                                 "larger images are downscaled to this many megapixels, with a notice", 0.01)
    max_input_megapixels: float = _var("SEMAT_MAX_INPUT_MEGAPIXELS", 100.0,
                                       "images above this size are refused from their header, before decoding "
                                       "(a 150 MP PNG otherwise costs ~30 s and 3.5 GB)", 0.01)
    max_boxes: int = _var("SEMAT_MAX_BOXES", 16, "objects matted per request", 1, 256)
    preload: str = _var("SEMAT_PRELOAD", "",
                        "`all`, `default` or `none`: load models at start-up (empty: `all` on ZeroGPU)")
    max_loaded_variants: int = _var("SEMAT_MAX_LOADED_VARIANTS", 3, "SEMat checkpoints kept in memory", 1, 3)
    concurrency: int = _var("SEMAT_CONCURRENCY", 1, "model events run at once by the app (unset: "
                            f"{ZERO_GPU_CONCURRENCY} on ZeroGPU, 1 elsewhere)", 1, 64)
    queue_size: int = _var("SEMAT_QUEUE_SIZE", 32, "requests waiting in the app's queue before "
                                                   "'Queue is full'", 1, 10_000)
    max_upload: str = _var("SEMAT_MAX_UPLOAD", "50mb", "largest upload the app accepts (Gradio size string)")
    session_capacity: int = _var("SEMAT_SESSION_CAPACITY", 200, "browser sessions whose state is kept",
                                 1, 100_000)
    batch_max_images: int = _var("SEMAT_BATCH_MAX_IMAGES", 50, "photos one Batch-tab run accepts", 1, 10_000)
    video_max_frames_cpu: int = _var("SEMAT_VIDEO_MAX_FRAMES_CPU", 30,
                                     "frames one Video-tab run mattes without a GPU (a longer clip is cut, "
                                     "with a notice)", 1, 100_000)
    canvas_demo_delay: float = _var("SEMAT_CANVAS_DEMO_DELAY", 0.0,
                                    "seconds the prompt canvas's standalone demo waits in Matte; in test mode also "
                                    "the app's wait per matted object (the status line's tests)", 0, 60)
    output_dir: str = _var("SEMAT_UI_OUTPUT_DIR", "",
                            "where the app writes its result files (empty: a folder inside Gradio's cache, "
                            "`GRADIO_TEMP_DIR`, so Gradio serves each file without a copy of its own)")
    output_max_mb: float = _var("SEMAT_UI_OUTPUT_MAX_MB", 2048.0,
                                "result files kept, in MB: each new request first deletes the oldest results "
                                "beyond this (and any older than an hour)", 1)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        given = env
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _parse(f.name, f.metadata, type(f.default), raw.strip())
        if "concurrency" not in values and zero_gpu_mode(given):
            values["concurrency"] = ZERO_GPU_CONCURRENCY
        return cls(**values)  # type: ignore[arg-type]


def _parse(name: str, meta: Mapping[str, object], kind: type, raw: str) -> object:
    env = meta["env"]
    if name == "test_models":
        return raw.lower() == "tiny"
    if kind is bool:
        return raw.lower() not in ("0", "false", "no", "off")
    if kind is str:
        return raw
    try:
        value = kind(float(raw)) if kind is int and float(raw).is_integer() else kind(raw)
    except ValueError:
        raise SettingsError(f"{env}={raw[:40]!r} is not a {'whole ' if kind is int else ''}number") from None
    lo, hi = meta.get("lo"), meta.get("hi")
    if not math.isfinite(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
        raise SettingsError(f"{env}={raw[:40]!r} must be between {lo:g} and {hi if hi is not None else '∞'}")
    return value


def zero_gpu_mode(env: Mapping[str, str] | None = None) -> bool:
    """ZeroGPU hardware, decided as :func:`semat.app.zerogpu.on_zero_gpu` does: the ``spaces``
    package is there and says so (``spaces.config.Config.zero_gpu`` once ``spaces`` is imported,
    else ``SPACES_ZERO_GPU`` read the way that module reads it; an explicit ``env``: that variable). Never imports ``spaces`` itself: on
    ZeroGPU it must come before torch, which only ``app.py`` can ensure."""
    module = sys.modules.get("spaces")
    if module is None and importlib.util.find_spec("spaces") is None:
        return False
    if env is None and module is not None:
        try:  # imported already, so importing its config has no side effect of its own
            from spaces.config import Config

            return bool(Config.zero_gpu)
        except Exception:
            pass
    env = os.environ if env is None else env
    return (env.get("SPACES_ZERO_GPU") or "").strip().lower() in ("1", "t", "true")


def variables() -> dict[str, str]:
    """Variable name → its documentation (for the README table)."""
    return {f.metadata["env"]: f.metadata["doc"] for f in fields(Settings)}
