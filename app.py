"""SEMat Space: the Gradio app (``python app.py`` / ``make run``; also the Hugging Face Space entry).

Environment: GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (default 127.0.0.1:7860) and the SEMAT_*
variables of :mod:`semat.settings` (e.g. SEMAT_TEST_MODELS=tiny, SEMAT_PRELOAD=all|default|none).
"""

try:  # ZeroGPU: `spaces` must be imported before anything initialises CUDA
    import spaces
except ImportError:  # local runs work without it
    spaces = None

import os

from semat import registry
from semat.app.layout import build_demo, launch
from semat.app.services import SERVICES, prune_at_start_up, warm_up
from semat.app.zerogpu import on_zero_gpu
from semat.runtime import tune_cpu_allocator
from semat.settings import Settings

# On ZeroGPU, weights placed on the device at import are packed once and reused by every GPU
# worker, so load them here rather than inside a request. A model that fails to load is
# reported in /status and loads on first use; the app still starts.
_preload = (Settings.from_env().preload or ("all" if on_zero_gpu() else "none")).lower()
if _preload in ("all", "default"):
    SERVICES.preload(list(registry.names("semat")) if _preload == "all" else [registry.default("semat")])

if not on_zero_gpu():  # before the server's threads exist, so they share two malloc arenas
    tune_cpu_allocator()
prune_at_start_up()  # stale outputs and Gradio cache copies of an earlier run
warm_up()  # pymatting's numba JIT, off the first request's path
demo = build_demo()

if __name__ == "__main__":
    launch(demo, server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
           server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
