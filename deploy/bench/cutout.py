"""Row (c): Kiln's `cutout` against OpenCV's `cv2.grabCut` on one 1024x768 synthetic scene.

Started by deploy/bench.sh with the bench venv (opencv-python-headless from PyPI). The scene is an ellipse
of one noisy colour on a noisy two-colour checkerboard (the design of guest-cutout's `scene` module), so
the true mask is known. Both get the same rectangle (the ellipse's box plus 5% of each side) and the same
number of iterations. Kiln is timed by `kiln bench` (one client, submit -> downloaded PNG, so HTTP, Redis
and the sandbox are in it) and by its own `kiln_run_seconds` (the run inside the sandbox); OpenCV by
`time.perf_counter` around `cv2.grabCut` alone, in this process. Prints a Markdown table.
"""

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import Setup, free_port, run_seconds, wait_for  # noqa: E402


def scene(width=1024, height=768):
    """(RGB image, true mask, rect as x, y, w, h)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.uint32)
    cx, cy, rx, ry = width / 2, height / 2, width * 0.3, height * 0.3
    dx, dy = (x - cx) / rx, (y - cy) / ry
    inside = dx * dx + dy * dy <= 1.0
    square = max(min(width, height) // 24, 2)
    checker = ((x // square) + (y // square)) % 2 == 0

    def noise(channel):
        with np.errstate(over="ignore"):
            h = (x * np.uint32(0x9E3779B1)) ^ (y * np.uint32(0x85EBCA77)) ^ np.uint32((channel * 0xC2B2AE3D) & 0xFFFFFFFF)
            h ^= h >> np.uint32(15)
            h = h * np.uint32(0x2C1B3C6D)
            h ^= h >> np.uint32(12)
        return (h & np.uint32(0xFFFF)).astype(np.float64) / 32767.5 - 1.0

    image = np.zeros((height, width, 3), np.uint8)
    for k in range(3):
        object_base = [200 + 20 * dx, 90 + 15 * dy, np.full(dx.shape, 40.0)][k]
        base = np.where(inside, object_base, np.where(checker, [40, 90, 170][k], [70, 150, 80][k]))
        amplitude = np.where(inside, 18.0, 30.0)
        image[..., k] = np.clip(base + amplitude * noise(k), 0, 255).astype(np.uint8)
    mx, my = int(width * 0.05), int(height * 0.05)
    rect = (int(cx - rx) - mx, int(cy - ry) - my, int(2 * rx) + 2 * mx, int(2 * ry) + 2 * my)
    return image, inside, rect


def iou(a, b):
    return np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1)


def kiln_mask(url, params, png):
    """Runs one job through the HTTP API and returns its foreground (alpha 255)."""
    body = json.dumps({"params": params, "input_base64": base64.b64encode(png).decode()}).encode()
    request = urllib.request.Request(f"{url}/v1/jobs/cutout", body, {"content-type": "application/json"})
    doc = json.load(urllib.request.urlopen(request))
    while doc["status"] not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.05)
        doc = json.load(urllib.request.urlopen(f"{url}/v1/jobs/{doc['id']}"))
    if doc["status"] != "succeeded":
        raise SystemExit(f"bench: cutout job {doc['status']}: {doc}")
    data = urllib.request.urlopen(url + doc["result_url"]).read()
    rgba = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return rgba[..., 3] == 255


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiln", required=True, help="the kiln binary (release build)")
    parser.add_argument("--runs", type=int, default=10, help="timed images per stack")
    parser.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args()
    image, truth, rect = scene()
    workdir = tempfile.mkdtemp(prefix="kiln-bench-cutout-")
    png_path = os.path.join(workdir, "scene.png")
    cv2.imwrite(png_path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    with open(png_path, "rb") as f:
        png = f.read()
    params = {"rect": dict(zip(("x", "y", "width", "height"), rect)), "iterations": args.iterations}

    # OpenCV in this process, one thread as Kiln's run has (cv2.grabCut is single-threaded anyway).
    cv2.setNumThreads(1)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    times = []
    for _ in range(args.runs + 1):
        mask = np.zeros(truth.shape, np.uint8)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        start = time.perf_counter()
        cv2.grabCut(bgr, mask, rect, bgd, fgd, args.iterations, cv2.GC_INIT_WITH_RECT)
        times.append(time.perf_counter() - start)
    cv_ms = statistics.median(times[1:]) * 1000
    cv_iou = iou((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), truth)

    setup = Setup("kiln serve", workdir)
    try:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {"KILN_LOG": "warn", "KILN_DATA_DIR": os.path.join(workdir, "kiln-data"),
               "KILN_REDIS_URL": f"redis://127.0.0.1:{setup.redis_port}"}
        setup.start([args.kiln, "serve", "--dev", "--listen", f"127.0.0.1:{port}"], "kiln", env)
        wait_for(f"{url}/readyz")
        kiln_iou = iou(kiln_mask(url, params, png), truth)
        before = run_seconds(url, "cutout")
        argv = [args.kiln, "bench", "cutout", "--url", url, "--params", json.dumps(params), "-n", str(args.runs),
                "-c", "1", "--warmup", "1", "--input", png_path, "--expect", "1024x768", "--json"]
        out = subprocess.run(argv, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"bench: kiln bench cutout failed:\n{out.stdout}{out.stderr}")
        kiln_ms = json.loads(out.stdout)["latency_ms"]["p50"]
        after = run_seconds(url, "cutout")
        run_ms = (after[0] - before[0]) / max(after[1] - before[1], 1) * 1000
    finally:
        setup.stop()

    print(f"| cutout, 1024x768, rect {rect}, {args.iterations} iterations | ms per image (p50 of {args.runs}) "
          "| of which in the sandbox | IoU with the true mask |")
    print("|---|---|---|---|")
    print(f"| kiln serve, `cutout` | {kiln_ms:.0f} | {run_ms:.0f} | {kiln_iou:.4f} |")
    print(f"| OpenCV {cv2.__version__} `cv2.grabCut` (in process) | {cv_ms:.0f} | - | {cv_iou:.4f} |")
    print()
    print(f"- cutout time, kiln / cv2.grabCut: {kiln_ms / cv_ms:.2f}x; IoU difference {kiln_iou - cv_iou:+.4f}")


if __name__ == "__main__":
    main()
