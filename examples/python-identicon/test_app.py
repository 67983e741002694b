"""Unit tests of the identicon logic: `python -m unittest` (no componentize-py needed)."""

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


class IdenticonTest(unittest.TestCase):
    def test_the_picture_is_mirrored_and_coloured(self):
        width, height, rows = decode_png(app.render('{"text": "ada", "size": 60}', b""))
        self.assertEqual((width, height), (60, 60))
        for row in rows:
            pixels = [row[i:i + 3] for i in range(0, len(row), 3)]
            self.assertEqual(pixels, pixels[::-1], "mirrored left to right")
        self.assertEqual(rows[0][:3], bytes([240, 240, 240]), "the margin is background")
        colours = {row[i:i + 3] for row in rows for i in range(0, len(row), 3)}
        self.assertEqual(len(colours), 2, "background and one colour")

    def test_the_same_text_gives_the_same_picture(self):
        one = app.render('{"text": "ada"}', b"")
        self.assertEqual(one, app.render('{"text": "ada"}', b""))
        self.assertNotEqual(one, app.render('{"text": "grace"}', b""))

    def test_bad_params_are_the_users_to_fix(self):
        for params in ("{}", '{"text": ""}', '{"text": "a", "size": 3}', '{"text": "a", "sise": 30}', "[]"):
            with self.assertRaises(app.InvalidParams, msg=params):
                app.render(params, b"")


if __name__ == "__main__":
    unittest.main()
