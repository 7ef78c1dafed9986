#!/usr/bin/env bash
# System packages genrekit uses: FluidSynth and a General MIDI soundfont to render MIDI to audio, and Chromium
# for the browser test of the web page (tests/test_page.py; Playwright drives /usr/bin/chromium).
set -euo pipefail
if command -v fluidsynth >/dev/null && [ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] && [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends fluidsynth fluid-soundfont-gm \
    chromium >/dev/null
