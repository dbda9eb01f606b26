"""Pixels of a screenshot, for tests that must see what a canvas drew (a WebGL globe is no DOM).

Decodes the PNGs Chromium writes (8-bit RGB or RGBA, not interlaced) with zlib alone.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

__all__ = ("Image", "decode_png")


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    pixels: list[tuple[int, int, int]]
    """Row by row, left to right."""

    def count(self, colour: tuple[int, int, int], tolerance: int = 40) -> int:
        """Pixels within ``tolerance`` of ``colour`` on every channel."""
        r, g, b = colour
        return sum(
            1
            for pr, pg, pb in self.pixels
            if abs(pr - r) <= tolerance and abs(pg - g) <= tolerance and abs(pb - b) <= tolerance
        )

    def distinct(self) -> int:
        """How many different colours (a blank canvas has one)."""
        return len(set(self.pixels))

    def differing(self, background: tuple[int, int, int], tolerance: int = 12) -> int:
        """Pixels that are not the background."""
        return len(self.pixels) - self.count(background, tolerance)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(data: bytes) -> Image:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, chunks, header = 8, [], b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        offset += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8, "only 8-bit channels"
    assert colour_type in (2, 6), "only RGB or RGBA"
    assert interlace == 0, "not interlaced"
    channels = 4 if colour_type == 6 else 3
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    previous = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    position = 0
    for _ in range(height):
        kind, line = raw[position], bytearray(raw[position + 1 : position + 1 + stride])
        position += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                line[i] = (line[i] + _paeth(left, up, corner)) & 0xFF
        pixels.extend((line[i], line[i + 1], line[i + 2]) for i in range(0, stride, channels))
        previous = line
    return Image(width, height, pixels)
