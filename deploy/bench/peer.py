"""The peer Kiln is measured against: the hand-built stack it replaces.

A Flask API enqueues Celery tasks on a Redis broker; a Celery worker does the image work with Pillow and
keeps the result (base64 PNG, as JSON allows no bytes) in Redis as the result backend. It offers the three
routes `kiln bench` uses, shaped like Kiln's, so the very same client drives both:

  POST /v1/jobs/<kind>          params (JSON or multipart with an `input` file) -> 202 {"id", "status"}
  GET  /v1/jobs/<id>?wait=N     the job; waits up to N s for it to end (checks every 20 ms)
  GET  /v1/jobs/<id>/result     the PNG

Kinds: `crop` (the same crop + resize + PNG encode as Kiln's crop kind) and `noop` (a 1x1 PNG).
Run: gunicorn peer:api (API), celery -A peer worker (worker); BENCH_REDIS_URL says where Redis is.
"""

import base64
import io
import json
import os
import time

from celery import Celery
from celery.result import AsyncResult
from flask import Flask, Response, jsonify, request
from PIL import Image

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

queue = Celery("peer", broker=REDIS_URL, backend=REDIS_URL)
queue.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                  result_expires=3600, task_track_started=True)
api = Flask(__name__)

TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


@queue.task(name="crop")
def crop(params, input_b64):
    image = Image.open(io.BytesIO(base64.b64decode(input_b64)))
    box = params.get("crop")
    if box:
        image = image.crop((box["x"], box["y"], box["x"] + box["width"], box["y"] + box["height"]))
    size = params.get("resize")
    if size:
        image = image.resize((size["width"], size["height"]), Image.LANCZOS)
    out = io.BytesIO()
    # compress_level 1: the same fast deflate setting Kiln's crop kind uses.
    image.save(out, format="PNG", compress_level=1)
    return base64.b64encode(out.getvalue()).decode()


@queue.task(name="noop")
def noop(params, input_b64):
    return base64.b64encode(TINY_PNG).decode()


TASKS = {"crop": crop, "noop": noop}
STATUS = {"PENDING": "queued", "RECEIVED": "queued", "STARTED": "running", "RETRY": "queued",
          "SUCCESS": "succeeded", "FAILURE": "failed", "REVOKED": "cancelled"}


def problem(status, detail):
    return Response(json.dumps({"status": status, "detail": detail}), status=status,
                    mimetype="application/problem+json")


@api.post("/v1/jobs/<kind>")
def submit(kind):
    task = TASKS.get(kind)
    if task is None:
        return problem(404, f"no kind {kind}")
    if request.files:
        params = json.loads(request.form.get("params", "{}"))
        data = request.files["input"].read()
    else:
        params = (request.get_json(silent=True) or {}).get("params", {})
        data = b""
    result = task.delay(params, base64.b64encode(data).decode())
    return jsonify(id=result.id, status="queued"), 202


@api.get("/v1/jobs/<id>")
def status(id):
    result = AsyncResult(id, app=queue)
    deadline = time.monotonic() + min(float(request.args.get("wait", 0)), 60)
    while not result.ready() and time.monotonic() < deadline:
        time.sleep(0.02)
    return jsonify(id=id, status=STATUS.get(result.state, "queued"))


@api.get("/v1/jobs/<id>/result")
def result(id):
    result = AsyncResult(id, app=queue)
    if not result.successful():
        return problem(409, f"job {id} is {STATUS.get(result.state, 'queued')}")
    return Response(base64.b64decode(result.get()), mimetype="image/png")
