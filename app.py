"""SEMat Space: the Gradio app (``python app.py`` / ``make run``; also the Hugging Face Space entry).

Environment: GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (default 127.0.0.1:7860),
SEMAT_TEST_MODELS=tiny (tiny random-weight models, for tests), SEMAT_PRELOAD=all|default|none
(load models at import; "all" on ZeroGPU, else "none" = lazily on first use).
"""

try:  # ZeroGPU: `spaces` must be imported before anything initialises CUDA
    import spaces
except ImportError:  # local runs work without it
    spaces = None

import os

from semat.app import ui

# On ZeroGPU, weights placed on the device at import are packed once and reused by every
# GPU worker, so load them here rather than inside a request.
_preload = os.environ.get("SEMAT_PRELOAD", "all" if ui.on_zero_gpu() else "none").lower()
if _preload in ("all", "default"):
    ui.SERVICES.preload(["hq-sam", "sam", "sam2"] if _preload == "all" else ["hq-sam"])

demo = ui.build_demo()

if __name__ == "__main__":
    ui.launch(demo, server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
              server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
