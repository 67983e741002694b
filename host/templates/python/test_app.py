"""Unit tests of the `{{name}}` kind's logic: `python -m unittest` (no componentize-py needed)."""

import struct
import unittest
import zlib

import app


def decode_png(data):
    """(width, height, rows) of an 8-bit RGB PNG with unfiltered rows, as `app.encode_png` writes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, size = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
    width, height = size
    raw = zlib.decompress(idat)
    stride = 1 + width * 3
    return width, height, [raw[y * stride + 1:(y + 1) * stride] for y in range(height)]


class RenderTest(unittest.TestCase):
    def test_draws_the_disc_in_the_middle(self):
        seen = []
        png = app.render('{"width": 30, "height": 20, "color": [255, 0, 0]}', b"", progress=seen.append)
        width, height, rows = decode_png(png)
        self.assertEqual((width, height), (30, 20))
        self.assertEqual(rows[10][15 * 3:16 * 3], bytes([255, 0, 0]))
        corner = rows[0][:3]
        self.assertEqual(corner[0], corner[2], "grey in the corner")
        self.assertEqual(seen[-1], 1.0)

    def test_defaults(self):
        width, height, _ = decode_png(app.render("{}", b""))
        self.assertEqual((width, height), (64, 64))

    def test_bad_params_are_the_users_to_fix(self):
        for params in ('{"width": 0}', '{"colour": [1, 2, 3]}', '{"color": [1, 2]}', "[]", "nope"):
            with self.assertRaises(app.InvalidParams, msg=params):
                app.render(params, b"")


if __name__ == "__main__":
    unittest.main()
