"""The `{{name}}` job kind for Kiln, in Python (written by `kiln kind new`).

Build and check it:  kiln kind build
    (runs `componentize-py -d wit -w handler componentize app -o build/{{name}}.wasm`;
    install componentize-py with `pip install componentize-py==0.25.1`)
Test the logic:      python -m unittest    (plain Python: componentize-py is not needed)
Upload it:           kiln kind push        (prints the new version)
Rebuild on save:     kiln kind dev         (re-uploads and runs sample.json's params)

The logic is plain functions (`render` and its helpers); `WitWorld` at the bottom is the thin class
componentize-py exports as Kiln's `run`. Raise `InvalidParams` or `InvalidInput` for what the user must
change; any other exception fails the job as `internal`. The component runs in a sandbox: no files,
network or environment, and only pure-Python code (componentize-py cannot load native wheels).
"""

import json
import struct
import zlib

# The largest side a job may ask for (kind.json's params_schema says the same, so Kiln refuses more at
# submit already).
MAX_SIDE = 2048


class InvalidParams(Exception):
    """The job's params are wrong: the user must change them (WIT `invalid-params`)."""


class InvalidInput(Exception):
    """The job's input bytes are wrong: the user must change them (WIT `invalid-input`)."""


def parse_params(text):
    """The params JSON as a dict with every default filled in."""
    try:
        params = json.loads(text or "{}")
    except ValueError as e:
        raise InvalidParams(f"params are not JSON: {e}") from None
    if not isinstance(params, dict):
        raise InvalidParams("params must be a JSON object")
    unknown = set(params) - {"width", "height", "color"}
    if unknown:
        raise InvalidParams(f"unknown params: {', '.join(sorted(unknown))}")
    width = params.get("width", 64)
    height = params.get("height", 64)
    color = params.get("color", [40, 120, 220])
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SIDE:
            raise InvalidParams(f"{name} must be an integer 1-{MAX_SIDE}, not {value!r}")
    if (not isinstance(color, list) or len(color) != 3
            or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in color)):
        raise InvalidParams(f"color must be [red, green, blue], each 0-255, not {color!r}")
    return {"width": width, "height": height, "color": color}


def draw(width, height, color):
    """RGB rows: a grey gradient from left to right, a disc of `color` in the middle."""
    radius = min(width, height) / 3
    disc = bytes(color)
    rows = []
    for y in range(height):
        row = bytearray()
        for x in range(width):
            dx, dy = x + 0.5 - width / 2, y + 0.5 - height / 2
            if dx * dx + dy * dy <= radius * radius:
                row += disc
            else:
                grey = int(64 + 128 * x / width)
                row += bytes((grey, grey, grey))
        rows.append(bytes(row))
    return rows


def encode_png(width, height, rows):
    """An 8-bit RGB PNG of `rows` (each `width * 3` bytes), compressed with zlib."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b""))


def render(params_text, input_bytes, progress=lambda fraction: None):
    """One job: params JSON text and input bytes in, PNG bytes out."""
    params = parse_params(params_text)
    rows = draw(params["width"], params["height"], params["color"])
    progress(0.5)
    png = encode_png(params["width"], params["height"], rows)
    progress(1.0)
    return png


# The component's face. These modules exist only inside `componentize-py`'s build (it generates them from
# wit/job.wit), so the logic above stays importable by plain Python for its tests.
try:
    from componentize_py_types import Err
    from wit_world.imports import host, types
except ImportError:
    Err = host = types = None


class WitWorld:
    """Kiln's `handler` world: `run` once per job, in a fresh instance."""

    def run(self, params: str, input: bytes):
        try:
            png = render(params, input, progress=host.progress)
        except InvalidParams as e:
            raise Err(types.JobError(types.ErrorCode.INVALID_PARAMS, str(e)))
        except InvalidInput as e:
            raise Err(types.JobError(types.ErrorCode.INVALID_INPUT, str(e)))
        except Exception as e:
            raise Err(types.JobError(types.ErrorCode.INTERNAL, f"{type(e).__name__}: {e}"))
        return types.Output("image/png", png)
