"""A metric-against-kimg line plot drawn with PIL (no plotting library needed)."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 640, 400
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 20, 40, 50


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 5, 10):
        if raw <= mult * step:
            step *= mult
            break
    first = math.floor(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 2)]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def line_plot(
    xs: list[float],
    ys: list[float],
    path: str | Path,
    title: str,
    x_label: str = "kimg",
    floor: float | None = None,
) -> Path:
    """Write a PNG of ``ys`` against ``xs`` (points joined by lines), with an optional dashed
    horizontal ``floor`` line."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    values = list(ys) + ([floor] if floor is not None else [])
    x_ticks = _ticks(min(xs, default=0.0), max(xs, default=1.0))
    y_ticks = _ticks(min(min(values, default=0.0), 0.0), max(values, default=1.0))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    left, right, top, bottom = MARGIN_LEFT, WIDTH - MARGIN_RIGHT, MARGIN_TOP, HEIGHT - MARGIN_BOTTOM

    def px(x: float, y: float) -> tuple[float, float]:
        return (
            left + (x - x0) / max(x1 - x0, 1e-12) * (right - left),
            bottom - (y - y0) / max(y1 - y0, 1e-12) * (bottom - top),
        )

    for t in x_ticks:
        x, _ = px(t, y0)
        draw.line([(x, top), (x, bottom)], fill=(230, 230, 230))
        draw.text((x - 10, bottom + 6), _fmt(t), fill="black", font=font)
    for t in y_ticks:
        _, y = px(x0, t)
        draw.line([(left, y), (right, y)], fill=(230, 230, 230))
        draw.text((6, y - 6), _fmt(t), fill="black", font=font)
    draw.rectangle([left, top, right, bottom], outline="black")
    if floor is not None:
        _, y = px(x0, floor)
        for start in range(left, right, 12):
            draw.line([(start, y), (min(start + 6, right), y)], fill=(200, 60, 60), width=2)
        draw.text((right - 110, y - 14), f"floor {_fmt(floor)}", fill=(200, 60, 60), font=font)
    points = [px(x, y) for x, y in zip(xs, ys, strict=True)]
    if len(points) > 1:
        draw.line(points, fill=(30, 90, 200), width=2)
    for x, y in points:
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(30, 90, 200))
    draw.text((left, 12), title, fill="black", font=font)
    draw.text(((left + right) // 2 - 15, HEIGHT - 22), x_label, fill="black", font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path
