#!/usr/bin/env bash
# A virtual environment built the way a ZeroGPU Space builds it: Python 3.12 (the README's
# python_version), plain `pip install -r requirements.txt` (no flags, no variables), then the
# platform's own gradio / gradio-client / spaces (requirements-local.txt). It carries the CUDA
# build of torch the Space gets, which ZeroGPU's CUDA emulation needs; tests/test_zerogpu_emulation.py
# runs the app's import-time half of ZeroGPU in it. Prints the venv's python. Idempotent.
#   bash scripts/space_venv.sh [DIR]      (default .space-venv; ~3 min and ~5.7 GB on first use)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.space-venv}
# The first candidate that really runs Python 3.12: a pyenv shim is on PATH even when its
# version is not the active one, and then it only prints "command not found".
py=""
for c in ${SEMAT_SPACE_BASE_PYTHON:-} "$(command -v python3.12 || true)" \
    $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 2>/dev/null) \
    /usr/bin/python3.12 /usr/local/bin/python3.12; do
  if [ -n "$c" ] && "$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then
    py=$c; break
  fi
done
[ -n "$py" ] || { echo "[space-venv] no working Python 3.12 found (set SEMAT_SPACE_BASE_PYTHON)" >&2; exit 1; }
key=$(cat requirements.txt requirements-local.txt scripts/space_venv.sh | sha256sum | cut -c1-16)
if [ ! -f "$dir/.built-$key" ]; then
  echo "[space-venv] building $dir with $py (plain pip install -r requirements.txt)" >&2
  rm -rf "$dir"
  "$py" -m venv "$dir"
  "$dir/bin/python" -m pip install --disable-pip-version-check -q -r requirements.txt >&2
  "$dir/bin/python" -m pip install --disable-pip-version-check -q -r requirements-local.txt >&2
  touch "$dir/.built-$key"
fi
echo "$(cd "$dir" && pwd)/bin/python"
