#!/usr/bin/env python3
"""space-check: would this repository build as a Hugging Face Space, on ZeroGPU and on CPU?

A Space builds with ``pip install -r requirements.txt`` on the Python named by ``python_version``
in the README front matter (3.10 when it is missing), with no flags and no environment variables,
then installs gradio (``sdk_version``), gradio-client and spaces itself. This script fails when

1. the front matter lacks a ``python_version`` that both hardware kinds accept (ZeroGPU runs only
   3.10 and 3.12; CPU Spaces run any 3.x), or writes it unquoted (YAML reads ``3.10`` as 3.1);
2. the torch line of requirements.txt admits no ZeroGPU torch (2.8.0, 2.9.1, 2.10.0, 2.11.0), or
   requirements.txt lists a package the platform installs itself (gradio, gradio-client, spaces);
3. requirements.txt does not resolve for that Python on manylinux x86_64 with wheels only (pip's
   resolver in dry-run mode), or resolves a torch ZeroGPU rejects. Packages that exist only as
   sdists are allowed by name (``SDIST_ONLY``): they must be pinned, and stand-in wheels carrying
   their real metadata (read from the sdist) take their place in the resolve.

Step 3 needs the package registry. It uses pip's ``fast-deps`` (HTTP range requests for wheel
metadata), so it reads a few tens of MB rather than the 5 GB of torch + CUDA wheels; that needs a
recent pip (``MIN_PIP``; requirements-dev.txt pins one).

    python scripts/space_check.py [--readme README.md] [--requirements requirements.txt]
                                  [--no-resolve] [--report-json FILE]

Exit status 0 when every check passes, 1 when one fails, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

try:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version
except ImportError:  # pragma: no cover - pip always vendors packaging
    from pip._vendor.packaging.requirements import InvalidRequirement, Requirement
    from pip._vendor.packaging.utils import canonicalize_name
    from pip._vendor.packaging.version import Version

REPO = Path(__file__).resolve().parents[1]

# docs/hub/spaces-zerogpu.md (huggingface/hub-docs): the Pythons and torch versions ZeroGPU runs.
ZEROGPU_PYTHONS = ("3.10", "3.12")
ZEROGPU_TORCH = ("2.8.0", "2.9.1", "2.10.0", "2.11.0")
# Installed by the platform after requirements.txt; pinning them here fights the platform's copies.
PLATFORM_MANAGED = ("gradio", "gradio-client", "spaces")
# Packages with no wheel at all, allowed to build from source on the Space: pure Python, built by
# plain setuptools in seconds, no torch or compiler at build time. Name -> why it is needed.
SDIST_ONLY = {
    "iopath": "sam2 (rf-sam-2) requires it; 0.1.10 is sdist-only",
    "antlr4-python3-runtime": "hydra-core 1.3.8 requires ==4.9.*, sdist-only",
}
# The Space image is Debian (glibc 2.36): any manylinux wheel up to glibc 2.36 installs there.
PLATFORMS = ([f"manylinux_2_{m}_x86_64" for m in range(36, 16, -1)]
             + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"])
MIN_PIP = (26, 0)


@dataclass
class Result:
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, msg: str) -> None:
        self.errors.append(msg)

    def note(self, msg: str) -> None:
        self.notes.append(msg)


# -- front matter ------------------------------------------------------------------------------

def front_matter(text: str) -> dict[str, str]:
    """Top-level ``key: value`` pairs of the README's YAML front matter, values as written."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    out: dict[str, str] = {}
    for line in lines[1:]:
        if line.strip() == "---":
            return out
        m = re.match(r"^([A-Za-z_][\w-]*):\s*(.*?)\s*$", line)
        if m:
            value = m.group(2)
            if not value.startswith(("'", '"')):
                value = value.split(" #", 1)[0].rstrip()
            out[m.group(1)] = value
    return {}  # no closing ---: not front matter


def check_python_version(fm: dict[str, str], res: Result) -> str | None:
    """The ``python_version`` both hardware kinds accept, as ``3.x``; None (and an error) if not."""
    raw = fm.get("python_version")
    if raw is None:
        res.fail('README front matter has no python_version: the Space builds on Python 3.10 by '
                 f'default; add python_version: "3.12" (ZeroGPU runs {" or ".join(ZEROGPU_PYTHONS)})')
        return None
    quoted = len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\""
    value = raw[1:-1] if quoted else raw
    if not re.fullmatch(r"3\.\d+(\.\d+)?", value):
        res.fail(f"README front matter python_version {raw!r} is not a Python 3.x or 3.x.y version")
        return None
    if not quoted:
        res.fail(f'README front matter python_version {raw} is unquoted: YAML reads it as a number '
                 f'(3.10 becomes 3.1); write python_version: "{value}"')
        return None
    minor = ".".join(value.split(".")[:2])
    if minor not in ZEROGPU_PYTHONS:
        res.fail(f"README front matter python_version {value!r} does not run on ZeroGPU, which has "
                 f"only Python {' and '.join(ZEROGPU_PYTHONS)}; use \"3.12\"")
        return None
    if fm.get("sdk") != "gradio":
        res.fail(f"README front matter sdk is {fm.get('sdk')!r}: ZeroGPU needs sdk: gradio")
    if not fm.get("sdk_version"):
        res.fail("README front matter has no sdk_version: the platform installs that gradio")
    res.note(f"python_version {value} (ZeroGPU and CPU), sdk {fm.get('sdk')} {fm.get('sdk_version')}")
    return minor


# -- requirements --------------------------------------------------------------------------------

def parse_requirements(path: Path, res: Result) -> list[Requirement]:
    reqs: list[Requirement] = []
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            res.note(f"{path.name}:{n}: option line passed to pip as is: {line}")
            continue
        try:
            reqs.append(Requirement(line))
        except InvalidRequirement as exc:
            res.fail(f"{path.name}:{n}: not a requirement: {line} ({exc})")
    return reqs


def check_requirements(reqs: list[Requirement], res: Result) -> None:
    by_name = {canonicalize_name(r.name): r for r in reqs}
    torch = by_name.get("torch")
    if torch is None:
        res.fail("requirements.txt has no torch line: pin a ZeroGPU torch "
                 f"({', '.join(ZEROGPU_TORCH)}) and its matching torchvision")
    else:
        ok = [v for v in ZEROGPU_TORCH if torch.specifier.contains(v, prereleases=True)]
        if not ok:
            res.fail(f"requirements.txt: {torch} admits no torch that ZeroGPU runs "
                     f"({', '.join(ZEROGPU_TORCH)})")
        else:
            res.note(f"{torch} admits ZeroGPU torch {', '.join(ok)}")
    if "torchvision" not in by_name:
        res.fail("requirements.txt has no torchvision pin: pip would pick the newest, which pulls "
                 "another torch")
    for name in PLATFORM_MANAGED:
        if name in by_name:
            res.fail(f"requirements.txt lists {by_name[name]}: the Space installs {name} itself "
                     "(gradio from sdk_version); keep it in requirements-local.txt")
    for name in SDIST_ONLY:
        r = by_name.get(name)
        if r is not None and not _exact_pin(r):
            res.fail(f"requirements.txt: {r} builds from source on the Space; pin it with ==")


def _exact_pin(r: Requirement) -> str | None:
    specs = list(r.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    return None


# -- resolve -------------------------------------------------------------------------------------

def pip_version(python: str) -> tuple[int, ...]:
    out = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True, check=True)
    return tuple(int(p) for p in re.match(r"pip (\d+)\.(\d+)", out.stdout).groups())


def _pip(python: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    cmd = [python, "-m", "pip", "install", "--disable-pip-version-check", "--dry-run",
           "--ignore-installed", "--quiet", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _errors(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (proc.stderr + proc.stdout).splitlines()
             if not ln.startswith("WARNING: Location") and ln.strip()]
    picked = [ln for ln in lines if ln.startswith("ERROR")] or lines[-8:]
    return "\n    ".join(picked[:12])


def _stub_wheel(folder: Path, meta: dict) -> Path:
    """A metadata-only wheel standing in for an sdist: same name, version and dependencies."""
    name, version = meta["name"], meta["version"]
    dist = f"{re.sub(r'[-_.]+', '_', name)}-{version}"
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if meta.get("requires_python"):
        lines.append(f"Requires-Python: {meta['requires_python']}")
    lines += [f"Requires-Dist: {d}" for d in meta.get("requires_dist", [])]
    path = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{dist}.dist-info/METADATA", "\n".join(lines) + "\n")
        z.writestr(f"{dist}.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: space_check\n"
                   "Root-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{dist}.dist-info/RECORD", "")
    return path


def resolve(req_path: Path, python_version: str, res: Result, *, python: str = sys.executable,
            timeout: float = 600.0) -> dict[str, str] | None:
    """Resolve ``req_path`` as the Space would (wheels only, for ``python_version`` on manylinux
    x86_64). Returns {name: version} of what would be installed, or None (and an error)."""
    if pip_version(python) < MIN_PIP:
        res.fail(f"space-check needs pip>={'.'.join(map(str, MIN_PIP))} for metadata-only resolves "
                 f"(older pip downloads every wheel, ~5 GB here); {python} -m pip install -U pip")
        return None
    reqs = parse_requirements(req_path, Result())
    sdists = [r for r in reqs if canonicalize_name(r.name) in SDIST_ONLY]
    target = ["--python-version", python_version, "--only-binary=:all:",
              *(a for p in PLATFORMS for a in ("--platform", p))]
    with tempfile.TemporaryDirectory(prefix="space-check-") as tmp:
        tmpdir = Path(tmp)
        stubs = tmpdir / "stubs"
        stubs.mkdir()
        if sdists:
            # Read each sdist's real metadata (pip builds it in an isolated env: setuptools only).
            report = tmpdir / "sdists.json"
            proc = _pip(python, ["--no-deps", "--no-binary", ",".join(r.name for r in sdists),
                                 "--target", str(tmpdir / "t0"), "--report", str(report),
                                 *(str(r) for r in sdists)], timeout)
            if proc.returncode:
                res.fail(f"the sdist-only packages {', '.join(map(str, sdists))} do not resolve:\n"
                         f"    {_errors(proc)}")
                return None
            for item in json.loads(report.read_text())["install"]:
                _stub_wheel(stubs, item["metadata"])
        report = tmpdir / "report.json"
        proc = _pip(python, ["--use-feature=fast-deps", "--find-links", str(stubs),
                             "--target", str(tmpdir / "t1"), "--report", str(report), *target,
                             "-r", str(req_path)], timeout)
        if proc.returncode:
            msg = _errors(proc)
            missing = re.findall(r"No matching distribution found for ([A-Za-z0-9_.\-]+)", msg)
            hint = ""
            if missing:
                hint = (f"\n  (no wheel of {missing[0]} for Python {python_version} on manylinux "
                        "x86_64: pick a version that has one; if it is an sdist-only pure-Python "
                        "package that builds quickly, pin it and add it to SDIST_ONLY)")
            res.fail(f"{req_path.name} does not resolve for Python {python_version} on manylinux "
                     f"x86_64 (wheels only):\n    {msg}{hint}")
            return None
        installed = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"]
                     for i in json.loads(report.read_text())["install"]}
    torch = installed.get("torch")
    if torch is None:
        res.fail(f"{req_path.name} resolves without torch")
    elif Version(torch).base_version not in ZEROGPU_TORCH or Version(torch).local:
        res.fail(f"{req_path.name} resolves torch {torch}, which ZeroGPU does not run "
                 f"({', '.join(ZEROGPU_TORCH)})")
    res.note(f"resolves for Python {python_version} manylinux x86_64: {len(installed)} packages, "
             f"torch {torch}, torchvision {installed.get('torchvision')}"
             + (f", sdists {', '.join(f'{r.name}' for r in sdists)}" if sdists else ""))
    return installed


# -- main ----------------------------------------------------------------------------------------

def check(readme: Path, requirements: Path, *, do_resolve: bool = True,
          python: str = sys.executable) -> tuple[Result, dict[str, str] | None]:
    res = Result()
    py = check_python_version(front_matter(readme.read_text(encoding="utf-8")), res)
    check_requirements(parse_requirements(requirements, res), res)
    installed = None
    if do_resolve:
        # Resolve even after a front-matter failure, on the Python the Space would then use.
        installed = resolve(requirements, py or "3.10", res, python=python)
    return res, installed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readme", type=Path, default=REPO / "README.md")
    ap.add_argument("--requirements", type=Path, default=REPO / "requirements.txt")
    ap.add_argument("--no-resolve", action="store_true",
                    help="skip the resolver step (the one that needs the package registry)")
    ap.add_argument("--report-json", type=Path, help="write {name: version} of the resolve here")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    res, installed = check(args.readme, args.requirements, do_resolve=not args.no_resolve)
    for n in res.notes:
        print(f"space-check: ok: {n}")
    for e in res.errors:
        print(f"space-check: FAIL: {e}", file=sys.stderr)
    if args.report_json and installed is not None:
        args.report_json.write_text(json.dumps(installed, indent=1, sort_keys=True) + "\n")
    status = "FAILED" if res.errors else "passed"
    print(f"space-check: {status} ({len(res.errors)} problem(s), {time.monotonic() - t0:.1f} s)")
    return 1 if res.errors else 0


if __name__ == "__main__":
    sys.exit(main())
