#!/usr/bin/env bash
# Installs everything KimiWoNosete needs: Debian packages (ffmpeg, LilyPond, FluidSynth and its
# SoundFont, MuseScore 3 and poppler for the tests, PostgreSQL for the service's scaled-out test,
# Chromium and Firefox ESR for the web page's browser tests: Playwright drives Chromium, Firefox
# is driven over WebDriver BiDi by tests/bidi.py)
# and a virtualenv in .venv with the package.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(ffmpeg lilypond fluidsynth fluid-soundfont-gm musescore3 poppler-utils postgresql chromium
              firefox-esr)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "setup: please install these system packages: ${missing[*]}" >&2
    exit 1
  fi
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# Torch first, pinned to the CPU build (a newer or unpinned torch pulls a multi-GB CUDA build).
"${PIP[@]}" "${TORCH_SPEC:-torch==2.13.0}"
# The two models' wheels carry their weights; their declared dependencies (torchaudio,
# tensorboard, TensorFlow, ...) are not needed to run them, so they come without (see pyproject).
"${PIP[@]}" --no-deps transkun==2.0.1 basic-pitch==0.4.0
"${PIP[@]}" -e ".[all]"
