#!/usr/bin/env bash
# Sets everything up, makes the example recording and transcribes it into out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/kimiwonosete example out/minuet.flac
.venv/bin/kimiwonosete transcribe out/minuet.flac -o out
