"""Writes icon.png, the MCP Bundle's 512x512 icon (the size `mcpb validate` recommends): a white "V" on Vultr-ish blue, rounded corners.

    python3 packaging/mcpb/make_icon.py [OUT]   (default: icon.png next to this script)

Standard library only (zlib + struct), deterministic: the same bytes on every run, so CI can
check that the committed icon.png is what this script makes.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

SIZE = 512
SCALE = SIZE / 256  # the drawing below is in a 256-unit square
BLUE = (0, 122, 255)
WHITE = (255, 255, 255)
RADIUS = 48 * SCALE  # corner radius
STROKE = 34 * SCALE  # width of the V's strokes


def distance_to_segment(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    """Euclidean distance from point p to the segment a-b."""
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    cx, cy = ax + t * dx, ay + t * dy
    return ((px - cx) ** 2 + (py - cy) ** 2) ** 0.5


def coverage(distance: float, edge: float) -> float:
    """Anti-aliased coverage (0..1) of a shape whose border is `edge` pixels from its core."""
    return max(0.0, min(1.0, edge - distance + 0.5))


def pixel(x: int, y: int) -> tuple[int, int, int, int]:
    px, py = x + 0.5, y + 0.5
    # Rounded square: alpha from the distance outside the inner rectangle.
    qx = max(RADIUS - px, px - (SIZE - RADIUS), 0.0)
    qy = max(RADIUS - py, py - (SIZE - RADIUS), 0.0)
    alpha = coverage((qx * qx + qy * qy) ** 0.5, RADIUS)
    # The V: two strokes meeting at the bottom.
    v = min(
        distance_to_segment(px, py, 64 * SCALE, 64 * SCALE, 128 * SCALE, 196 * SCALE),
        distance_to_segment(px, py, 192 * SCALE, 64 * SCALE, 128 * SCALE, 196 * SCALE),
    )
    ink = coverage(v, STROKE / 2)
    rgb = tuple(round(b + (w - b) * ink) for b, w in zip(BLUE, WHITE))
    return (*rgb, round(255 * alpha))


def png(width: int, height: int, rows: list[bytes]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    raw = b"".join(b"\x00" + row for row in rows)  # filter 0 on every row
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("icon.png")
    rows = [b"".join(bytes(pixel(x, y)) for x in range(SIZE)) for y in range(SIZE)]
    out.write_bytes(png(SIZE, SIZE, rows))


if __name__ == "__main__":
    main()
