"""The `identicon` job kind: a GitHub-style avatar for any text (a user name, an email, an id), in Python.

The same text always gives the same picture: a 5x5 grid, mirrored left to right, its cells and colour
taken from the text's SHA-256. Pure Python (hashlib, zlib, struct): componentize-py cannot load native
wheels such as Pillow, so the PNG is encoded here.

Build and check it:  kiln kind build
    (runs `componentize-py -d wit -w handler componentize app -o build/identicon.wasm`;
    install componentize-py with `pip install componentize-py==0.25.1`)
Test the logic:      python -m unittest
Upload it:           kiln kind push
Make an avatar:      kiln submit identicon --params '{"text": "ada@example.com"}' --out avatars
"""

import hashlib
import json
import struct
import zlib

GRID = 5
MAX_SIZE = 1024


class InvalidParams(Exception):
    """The job's params are wrong: the user must change them (WIT `invalid-params`)."""


def parse_params(text):
    """The params JSON as (text, size, background)."""
    try:
        params = json.loads(text or "{}")
    except ValueError as e:
        raise InvalidParams(f"params are not JSON: {e}") from None
    if not isinstance(params, dict):
        raise InvalidParams("params must be a JSON object")
    unknown = set(params) - {"text", "size", "background"}
    if unknown:
        raise InvalidParams(f"unknown params: {', '.join(sorted(unknown))}")
    text = params.get("text")
    if not isinstance(text, str) or not text:
        raise InvalidParams("text (the string to draw an avatar for) is required")
    size = params.get("size", 250)
    if not isinstance(size, int) or isinstance(size, bool) or not GRID * 2 <= size <= MAX_SIZE:
        raise InvalidParams(f"size must be an integer {GRID * 2}-{MAX_SIZE}, not {size!r}")
    background = params.get("background", [240, 240, 240])
    if (not isinstance(background, list) or len(background) != 3
            or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in background)):
        raise InvalidParams(f"background must be [red, green, blue], each 0-255, not {background!r}")
    return text, size, tuple(background)


def pattern(text):
    """(cells, colour): which of the GRID x GRID cells are filled (mirrored), and their colour."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    half = (GRID + 1) // 2
    cells = [[False] * GRID for _ in range(GRID)]
    for y in range(GRID):
        for x in range(half):
            on = digest[y * half + x] % 2 == 0
            cells[y][x] = cells[y][GRID - 1 - x] = on
    hue = digest[-1] / 255
    colour = hsl_to_rgb(hue, 0.55, 0.5)
    return cells, colour


def hsl_to_rgb(h, s, l):
    """HSL (each 0-1) to 8-bit RGB."""
    def channel(n):
        k = (n + h * 12) % 12
        a = s * min(l, 1 - l)
        return round(255 * (l - a * max(-1, min(k - 3, 9 - k, 1))))
    return channel(0), channel(8), channel(4)


def draw(text, size, background):
    """RGB rows of the avatar: the grid centred with a margin of half a cell."""
    cells, colour = pattern(text)
    cell = size / (GRID + 1)
    margin = cell / 2
    fg, bg = bytes(colour), bytes(background)
    rows = []
    for y in range(size):
        gy = int((y - margin) // cell)
        row = bytearray()
        for x in range(size):
            gx = int((x - margin) // cell)
            on = 0 <= gx < GRID and 0 <= gy < GRID and cells[gy][gx]
            row += fg if on else bg
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
    """One job: params JSON text in, PNG bytes out (the input is not used)."""
    text, size, background = parse_params(params_text)
    rows = draw(text, size, background)
    progress(0.8)
    png = encode_png(size, size, rows)
    progress(1.0)
    return png


# The component's face; these modules exist only inside componentize-py's build.
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
        except Exception as e:
            raise Err(types.JobError(types.ErrorCode.INTERNAL, f"{type(e).__name__}: {e}"))
        return types.Output("image/png", png)
