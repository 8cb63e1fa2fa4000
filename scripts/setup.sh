#!/usr/bin/env bash
# One-step, idempotent setup of the project's virtual environment.
#   scripts/setup.sh app    runtime dependencies
#   scripts/setup.sh test   runtime + test dependencies (pytest, ruff, Playwright, Debian chromium)
# What it installs (see README "Installation notes"):
#   1. a matching torch pair first: $SEMAT_TORCH_PINS, default torch==2.13.0 torchvision==0.28.0
#      (on Python 3.11 this machine kind has a local CPU wheel of torch 2.13.0); set
#      SEMAT_TORCH_PINS=requirements to take the Space's pair from requirements.txt instead;
#   2. requirements.txt without its torch/torchvision lines, plus requirements-local.txt (gradio,
#      gradio-client, spaces: on a Space the platform installs those itself).
set -euo pipefail
mode=${1:-app}
cd "$(dirname "$0")/.."
VENV=${SEMAT_VENV:-.venv}
PY=${PYTHON:-python3}
TORCH_PINS=${SEMAT_TORCH_PINS:-torch==2.13.0 torchvision==0.28.0}
if [ "$TORCH_PINS" = requirements ]; then
  TORCH_PINS=$(grep -E '^(torch|torchvision)==' requirements.txt | tr '\n' ' ')
fi

key=$( (cat requirements.txt requirements-local.txt requirements-dev.txt scripts/setup.sh pyproject.toml;
        echo "$TORCH_PINS") | sha256sum | cut -c1-16)
stamp="$VENV/.setup-$mode-$key"
if [ -f "$stamp" ]; then exit 0; fi

echo "[setup] creating $VENV ($mode) — first run takes a few minutes" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
# The `sam2` modules now come from the rf-sam-2 wheel; an older venv's sam2 sdist install owns the
# same files, so remove it first (uninstalling it later would delete rf-sam-2's files).
if "$VENV/bin/python" -m pip show -q sam2 >/dev/null 2>&1; then
  "$VENV/bin/python" -m pip uninstall -y -q sam2
fi
# shellcheck disable=SC2086
"${pip[@]}" $TORCH_PINS
rest=$(mktemp)
trap 'rm -f "$rest"' EXIT
grep -vE '^[[:space:]]*(torch|torchvision)[[:space:]]*([=<>!~;[]|$)' requirements.txt > "$rest"
"${pip[@]}" -r "$rest" -r requirements-local.txt
"${pip[@]}" --no-build-isolation --no-deps -e .
# A venv that once had both distributions lost rf-sam-2's files with the sam2 uninstall above.
if ! "$VENV/bin/python" -c "import sam2.modeling.backbones.hieradet" >/dev/null 2>&1; then
  "${pip[@]}" --force-reinstall --no-deps "$(grep -E '^rf-sam-2==' requirements.txt)"
fi

if [ "$mode" = test ]; then
  "${pip[@]}" -r requirements-dev.txt
  if ! command -v chromium >/dev/null 2>&1; then
    echo "[setup] installing Debian chromium for the browser tests" >&2
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
    $sudo_ apt-get update -qq >/dev/null && $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
# pymatting JIT-compiles with numba on first import (~45 s); do it once here, not in a request.
"$VENV/bin/python" -c "import pymatting" >/dev/null 2>&1 || true
rm -f "$VENV"/.setup-"$mode"-*
touch "$stamp"
echo "[setup] done" >&2
