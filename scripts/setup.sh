#!/usr/bin/env bash
# One-step, idempotent setup of the project's virtual environment.
#   scripts/setup.sh app    runtime dependencies
#   scripts/setup.sh test   runtime + test dependencies (pytest, ruff, Playwright, Debian chromium)
# The install order matters on CPU-only machines (see README "Installation notes"):
#   1. torch==2.13.0 + torchvision==0.28.0 first (a matching pair; anything else pulls CUDA torch);
#   2. the rest with SAM2_BUILD_CUDA=0 and --no-build-isolation, so sam2's build uses this torch.
set -euo pipefail
mode=${1:-app}
cd "$(dirname "$0")/.."
VENV=${SEMAT_VENV:-.venv}
PY=${PYTHON:-python3}

key=$(cat requirements.txt requirements-dev.txt scripts/setup.sh pyproject.toml | sha256sum | cut -c1-16)
stamp="$VENV/.setup-$mode-$key"
if [ -f "$stamp" ]; then exit 0; fi

echo "[setup] creating $VENV ($mode) — first run takes a few minutes" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
"${pip[@]}" torch==2.13.0 torchvision==0.28.0
SAM2_BUILD_CUDA=0 "${pip[@]}" --no-build-isolation -r requirements.txt
"${pip[@]}" --no-build-isolation --no-deps -e .

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
