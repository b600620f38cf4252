#!/usr/bin/env bash
# A virtualenv with exchangelib (PyPI) for tests/it/sim.rs, which drives the
# Exchange simulator with it. Prints the line to export.
# Needs python3 with the venv module (Debian: python3-venv).
# Usage: .ci/exchangelib-venv.sh [DIR]   (default: target/exchangelib-venv)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-target/exchangelib-venv}
# The version the simulator was checked against; newer ones are welcome too.
EXCHANGELIB_VERSION=${EXCHANGELIB_VERSION:-5.6.0}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -c "import exchangelib" 2>/dev/null \
  || "$VENV/bin/pip" install --quiet --disable-pip-version-check "exchangelib==$EXCHANGELIB_VERSION"
"$VENV/bin/python" -c "import exchangelib; print('exchangelib', exchangelib.__version__)" >&2
echo "export RESA_EXCHANGELIB_PYTHON=$(cd "$VENV" && pwd)/bin/python"
