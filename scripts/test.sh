#!/usr/bin/env bash
# Sets everything up, lints, and runs the whole test suite (doctests in src/ included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests benchmarks
exec .venv/bin/python -m pytest tests src -q "$@"
