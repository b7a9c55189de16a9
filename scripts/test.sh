#!/usr/bin/env bash
# Sets everything up and runs the whole test suite (doctests in src/ included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest tests src -q "$@"
