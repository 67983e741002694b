#!/usr/bin/env bash
# Kiln against the Flask + Celery + Redis stack it replaces, on this machine, in one run:
#   deploy/bench.sh [run.py options, e.g. --jobs 1000 --clients 16]
# Builds Kiln (release), installs the peer (Flask, Celery, Pillow, gunicorn) from PyPI into a venv
# (target/bench-venv), makes the crop workload's 1024x768 PNG, then runs deploy/bench/run.py, which prints
# a Markdown report. Then row (c), deploy/bench/cutout.py: the `cutout` kind against OpenCV's cv2.grabCut
# (opencv-python-headless, in the same venv) on a synthetic scene, time and IoU (CUTOUT_RUNS images, 10 by
# default). Needs redis-server (deploy/local.sh prerequisites) and python3 with venv.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v redis-server >/dev/null 2>&1 || { echo "deploy/bench.sh: redis-server is needed (deploy/local.sh prerequisites)" >&2; exit 1; }
cargo build --release -q -p kiln
venv=target/bench-venv
if [ ! -x "$venv/bin/celery" ]; then
  echo "deploy/bench.sh: installing the peer into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check \
    'flask==3.1.*' 'celery[redis]==5.5.*' 'pillow==11.*' 'gunicorn==23.*'
fi
if ! "$venv/bin/python" -c 'import cv2' >/dev/null 2>&1; then
  echo "deploy/bench.sh: installing OpenCV into $venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check 'opencv-python-headless==4.*'
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The noop kind: guest-hostile (built by host/build.rs beside the built-in guests) in its `noop` mode.
mkdir "$work/kinds"
cp target/guests/wasm32-wasip2/release/guest_hostile.wasm "$work/kinds/noop.wasm"
"$venv/bin/python" - "$work" <<'PY'
import json, sys
from PIL import Image
work = sys.argv[1]
manifest = json.load(open("guest-hostile/kind.json"))
manifest.update(name="noop", description="does nothing: a 1x1 PNG (guest-hostile in mode noop)")
json.dump(manifest, open(f"{work}/kinds/noop.json", "w"))
# A photo-like 1024x768 input: smooth gradients with detail, so PNG does not compress it to nothing.
image = Image.effect_mandelbrot((1024, 768), (-2.2, -1.2, 1.0, 1.2), 200).convert("RGB")
image = Image.merge("RGB", (image.getchannel(0), Image.linear_gradient("L").resize((1024, 768)),
                            Image.radial_gradient("L").resize((1024, 768))))
image.save(f"{work}/input.png")
PY
"$venv/bin/python" deploy/bench/run.py --kiln target/release/kiln --kinds-dir "$work/kinds" \
  --input "$work/input.png" --venv "$venv" "$@"
echo
"$venv/bin/python" deploy/bench/cutout.py --kiln target/release/kiln --runs "${CUTOUT_RUNS:-10}"
