"""A PNG chart of daily spend by agent: stacked bars, written with zlib and struct only.

No plotting library: the chart is a handful of rectangles, a grid and some digits
(a built-in 5x7 bitmap font), so a 150-line writer beats a dependency. The legend is
not drawn: the digest's text names each agent beside the Slack emoji square of its
colour (:data:`PALETTE`), so the text stands alone when the image is not shown.

Example:
    >>> png = spend_chart(["11-25", "11-26"], [("acme/a/bot", [1_500_000, 2_000_000])])
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

__all__ = ["MAX_SERIES", "PALETTE", "spend_chart"]

# (emoji, RGB) in the order agents get them; the last is "everyone else".
PALETTE: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("🟦", (0x55, 0xAC, 0xEE)),
    ("🟧", (0xF4, 0x90, 0x0C)),
    ("🟩", (0x78, 0xB1, 0x59)),
    ("🟥", (0xDD, 0x2E, 0x44)),
    ("🟪", (0xAA, 0x8E, 0xD6)),
    ("🟨", (0xFD, 0xCB, 0x58)),
    ("🟫", (0xC1, 0x69, 0x4F)),
    ("⬛", (0x31, 0x37, 0x3D)),
)
MAX_SERIES = len(PALETTE)
WIDTH, HEIGHT = 640, 320
LEFT, RIGHT, TOP, BOTTOM = 84, 16, 16, 36
SCALE = 2  # font pixels per bitmap dot
BACKGROUND = (0xFF, 0xFF, 0xFF)
GRID = (0xE3, 0xE6, 0xEA)
AXIS = (0x8A, 0x93, 0x9E)
INK = (0x3C, 0x44, 0x4D)

_FONT: dict[str, tuple[str, ...]] = {
    "0": (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    "1": ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "3": ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    "4": ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "6": ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    "7": ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    "8": (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    "9": (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
    "$": ("..#..", ".####", "#.#..", ".###.", "..#.#", "####.", "..#.."),
    ".": (".....", ".....", ".....", ".....", ".....", ".##..", ".##.."),
    ",": (".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."),
    "-": (".....", ".....", ".....", "#####", ".....", ".....", "....."),
    "k": ("#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#."),
    " ": (".....",) * 7,
}

Color = tuple[int, int, int]


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(BACKGROUND) * (width * height))

    def rect(self, x: int, y: int, w: int, h: int, color: Color) -> None:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(self.width, x + w), min(self.height, y + h)
        if x1 <= x0 or y1 <= y0:
            return
        run = bytes(color) * (x1 - x0)
        for row in range(y0, y1):
            start = (row * self.width + x0) * 3
            self.pixels[start : start + len(run)] = run

    def text(self, x: int, y: int, text: str, color: Color) -> None:
        for i, char in enumerate(text):
            glyph = _FONT.get(char, _FONT[" "])
            left = x + i * 6 * SCALE
            for gy, line in enumerate(glyph):
                for gx, dot in enumerate(line):
                    if dot == "#":
                        self.rect(left + gx * SCALE, y + gy * SCALE, SCALE, SCALE, color)

    def png(self) -> bytes:
        stride = self.width * 3
        raw = b"".join(
            b"\x00" + bytes(self.pixels[r * stride : (r + 1) * stride]) for r in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def _nice_top(value: int) -> int:
    """A round axis maximum at or above ``value`` micros: 1, 2, 2.5 or 5 × 10^n."""
    if value <= 0:
        return 1_000_000
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 2.5, 5, 10):
        top = int(step * magnitude)
        if top >= value:
            return top
    return 10 * magnitude


def _usd_label(micros: int) -> str:
    dollars = micros / 1_000_000
    if dollars >= 10_000:
        return f"${dollars / 1000:,.0f}k"
    if dollars >= 100:
        return f"${dollars:,.0f}"
    return f"${dollars:,.2f}"


def _text_width(text: str) -> int:
    return len(text) * 6 * SCALE - SCALE


def spend_chart(labels: Sequence[str], series: Sequence[tuple[str, Sequence[int]]]) -> bytes:
    """Stacked bars: one bar per label (day), one colour per series (agent), in order.

    ``series`` gives each agent's micros per day, at most :data:`MAX_SERIES` of them
    (the caller folds the rest into the last); colours follow :data:`PALETTE`.
    """
    canvas = _Canvas(WIDTH, HEIGHT)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    totals = [sum(values[i] for _, values in series) for i in range(len(labels))]
    top = _nice_top(max(totals, default=0))
    for q in range(5):
        y = TOP + plot_h - round(plot_h * q / 4)
        canvas.rect(LEFT, y, plot_w, 1, GRID if q else AXIS)
        label = _usd_label(top * q // 4)
        canvas.text(LEFT - 8 - _text_width(label), y - 7, label, INK)
    slot = plot_w / max(1, len(labels))
    bar_w = max(4, int(slot * 0.6))
    for i, label in enumerate(labels):
        x = LEFT + int(slot * i + (slot - bar_w) / 2)
        base = TOP + plot_h
        stacked = 0
        for j, (_, values) in enumerate(series):
            value = values[i]
            if value <= 0:
                continue
            y_low = base - round(plot_h * stacked / top)
            stacked += value
            y_high = base - round(plot_h * stacked / top)
            color = PALETTE[min(j, MAX_SERIES - 1)][1]
            canvas.rect(x, y_high, bar_w, max(1, y_low - y_high), color)
        text_x = x + bar_w // 2 - _text_width(label) // 2
        canvas.text(text_x, base + 10, label, INK)
    return canvas.png()
