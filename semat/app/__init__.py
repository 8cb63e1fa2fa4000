"""The Gradio web app: the only package under :mod:`semat` that imports Gradio.

* :mod:`~semat.app.services` — the shared pipeline, preload and inference counters;
* :mod:`~semat.app.zerogpu` — the ``@spaces.GPU`` entry points (one call per user action);
* :mod:`~semat.app.session` — per-tab state; :mod:`~semat.app.editor` — Gradio-free output
  folders, names and the background controls' spec;
* :mod:`~semat.app.handlers` — the tabs' callbacks; :mod:`~semat.app.api` — the named endpoints;
* :mod:`~semat.app.render` — result files and recompositing; :mod:`~semat.app.errors` —
  exceptions to messages; :mod:`~semat.app.layout` — the page (``build_demo``, ``launch``);
* :mod:`~semat.app.canvas` — the prompt canvas: the component (``canvas_component``), its value
  contract (``canvas_contract``, ``canvas_values``, ``canvas_text``), its files (``canvas_files``)
  and a demo app (``canvas_demo``), all re-exported from ``canvas``.
"""
