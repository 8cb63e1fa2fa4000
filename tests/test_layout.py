"""The package's shape: layer boundaries, module sizes, one place for settings."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import semat

PKG = Path(semat.__file__).parent
REPO = PKG.parent


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def _modules(under: Path = PKG) -> list[Path]:
    return sorted(p for p in under.rglob("*.py") if "__pycache__" not in p.parts)


def test_only_the_app_package_imports_gradio():
    offenders = [str(p.relative_to(REPO)) for p in _modules()
                 if "app" not in p.relative_to(PKG).parts[:1]
                 and any(m == "gradio" or m.startswith("gradio.") or m == "spaces" for m in _imports(p))]
    assert offenders == []


def test_models_import_nothing_from_the_rest_of_the_package():
    offenders = {}
    for p in _modules(PKG / "models"):
        bad = [m for m in _imports(p) if m.startswith("semat.") and not m.startswith("semat.models")]
        if bad:
            offenders[str(p.relative_to(REPO))] = bad
    assert offenders == {}


def test_no_module_reads_semat_variables_outside_settings():
    pattern = re.compile(r"environ(?:\.get)?\s*[\[(]\s*['\"]SEMAT_|getenv\(\s*['\"]SEMAT_")
    offenders = [str(p.relative_to(REPO)) for p in [*_modules(), REPO / "app.py"]
                 if p.name != "settings.py" and pattern.search(p.read_text())]
    assert offenders == []


#: Modules allowed over the size target (issue 9 asks for < ~400 lines). Empty: every module is
#: one concept under the target; one that grows past it is split, not added here.
OVERSIZED: set[str] = set()


def test_modules_stay_small():
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in _modules()}
    big = {k: v for k, v in sizes.items() if v > 420 and k not in OVERSIZED}
    assert big == {}, big


def test_pipeline_run_is_orchestration():
    from semat.pipeline.matting import MattingPipeline

    src = ast.parse((PKG / "pipeline" / "matting.py").read_text())
    cls = next(n for n in src.body if isinstance(n, ast.ClassDef) and n.name == MattingPipeline.__name__)
    run = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "run")
    assert run.end_lineno - run.lineno + 1 <= 40


def test_readme_lists_every_setting():
    from semat.settings import variables

    readme = (REPO / "README.md").read_text()
    missing = [v for v in variables() if f"`{v}`" not in readme]
    assert missing == []
    code = "\n".join(p.read_text() for p in [*_modules(), REPO / "app.py"])
    used = set(re.findall(r"(?<![A-Za-z_])SEMAT_[A-Z_]+", code))
    assert used <= set(variables()) | {"SEMAT_"}, used - set(variables())


def test_public_api():
    assert semat.__version__
    from semat import MattingPipeline, Prompt, SEMatPredictor, default_pipeline, load_image  # noqa: F401
