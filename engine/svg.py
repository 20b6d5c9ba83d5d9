"""Charts drawn as SVG text, server-side: no script, no library, no network, byte-identical output.

Coordinates are computed with Decimal and written with one decimal place; a chart's values (money,
counts) are never turned into floats. Every text from the data is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from html import escape
from typing import Callable, Sequence

from decimal import Context

from .exact import EXACT

# Pixel arithmetic (not money): a fixed context of its own, so the caller's decimal context changes nothing.
_PIX = Context(prec=34)
_TENTH = Decimal("0.1")
_ZERO = Decimal(0)
PALETTE = ("#8a8f98", "#1f6feb", "#d1242f", "#1a7f37")  # base grey, new blue, cliff red, positive green


def _px(value: Decimal | int) -> str:
    """A coordinate as SVG text: one decimal, no exponent, no negative zero."""
    text = format(Decimal(value).quantize(_TENTH, rounding=ROUND_HALF_EVEN, context=_PIX), "f")
    return "0.0" if text == "-0.0" else text


def _scale(lo: Decimal, hi: Decimal, start: Decimal, end: Decimal) -> Callable[[Decimal | int], Decimal]:
    span = hi - lo
    if span == 0:
        return lambda v: start
    factor = _PIX.divide(_PIX.subtract(end, start), span)
    return lambda v: _PIX.add(start, _PIX.multiply(_PIX.subtract(Decimal(v), lo), factor))


def nice_ceiling(value: Decimal) -> Decimal:
    """The smallest of 1, 2, 2.5, 5 × 10^k that is at least `value` (> 0); axis ends look planned."""
    value = Decimal(value)
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    for _ in range(2):
        for step in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)):
            candidate = step.scaleb(exponent)
            if candidate >= value:
                return candidate.normalize() if candidate == candidate.to_integral_value() else candidate
        exponent += 1
    return value


def ticks(top: Decimal, count: int = 5) -> list[Decimal]:
    """0, top/count, ..., top: `top` is a nice number, so the steps are too."""
    top = Decimal(top)
    return [_PIX.divide(_PIX.multiply(top, i), count) for i in range(count + 1)]


def short_count(value: Decimal) -> str:
    """Axis labels for counts: 3M, 2.5M, 750k, 10."""
    value = Decimal(value)
    for size, suffix in ((Decimal(10) ** 9, "G"), (Decimal(10) ** 6, "M"), (Decimal(10) ** 3, "k")):
        if abs(value) >= size:
            shown = _PIX.divide(value, size).quantize(Decimal("0.01"), context=_PIX).normalize(_PIX)
            return f"{format(shown, 'f')}{suffix}"
    return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")


@dataclass(frozen=True)
class Series:
    label: str
    color: str
    points: Sequence[tuple[int, Decimal]]  # (x, y), in x order; a repeated x draws a vertical step
    dashed: bool = False


@dataclass(frozen=True)
class Marker:
    """A marked x value (a price cliff): a dashed vertical line and a dot at `y`."""

    x: int
    y: Decimal
    label: str
    color: str = PALETTE[2]


_W, _H = Decimal(720), Decimal(300)
_LEFT, _RIGHT, _TOP, _BOTTOM = Decimal(78), Decimal(16), Decimal(28), Decimal(44)


def _frame(title: str, width: Decimal, height: Decimal) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {_px(width)} '
            f'{_px(height)}" width="{_px(width)}" height="{_px(height)}" font-family="system-ui, sans-serif" '
            f'font-size="11"><title>{escape(title)}</title>']


def line_chart(title: str, series: Sequence[Series], markers: Sequence[Marker], *, x_max: Decimal,
               y_label: str, x_label: str, y_format: Callable[[Decimal], str]) -> str:
    """A cost curve: x from 0 to `x_max`, y from 0 to a nice ceiling of the largest y."""
    y_values = [y for s in series for _, y in s.points] + [m.y for m in markers]
    y_top = nice_ceiling(max(y_values, default=Decimal(1)))
    x_top = Decimal(x_max)
    sx = _scale(_ZERO, x_top, _LEFT, _W - _RIGHT)
    sy = _scale(_ZERO, y_top, _H - _BOTTOM, _TOP)
    out = _frame(title, _W, _H)
    out.append(f'<text x="{_px(_LEFT)}" y="16" font-weight="600">{escape(y_label)}</text>')
    for tick in ticks(y_top):
        y = _px(sy(tick))
        out.append(f'<line x1="{_px(_LEFT)}" y1="{y}" x2="{_px(_W - _RIGHT)}" y2="{y}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{_px(_LEFT - 6)}" y="{y}" text-anchor="end" dominant-baseline="middle">'
                   f'{escape(y_format(tick))}</text>')
    for tick in ticks(x_top):
        x = _px(sx(tick))
        out.append(f'<line x1="{x}" y1="{_px(_H - _BOTTOM)}" x2="{x}" y2="{_px(_H - _BOTTOM + 4)}" stroke="#555"/>')
        out.append(f'<text x="{x}" y="{_px(_H - _BOTTOM + 16)}" text-anchor="middle">{escape(short_count(tick))}</text>')
    out.append(f'<text x="{_px((_LEFT + _W - _RIGHT) / 2)}" y="{_px(_H - 6)}" text-anchor="middle">'
               f'{escape(x_label)}</text>')
    out.append(f'<line x1="{_px(_LEFT)}" y1="{_px(_H - _BOTTOM)}" x2="{_px(_W - _RIGHT)}" y2="{_px(_H - _BOTTOM)}" '
               'stroke="#555"/>')
    for m in markers:
        x = _px(sx(m.x))
        out.append(f'<g class="cliff"><title>{escape(m.label)}</title>'
                   f'<line x1="{x}" y1="{_px(_TOP)}" x2="{x}" y2="{_px(_H - _BOTTOM)}" stroke="{m.color}" '
                   f'stroke-dasharray="4 3"/><circle cx="{x}" cy="{_px(sy(m.y))}" r="4" fill="{m.color}"/></g>')
    for s in series:
        path = " ".join(f"{_px(sx(x))},{_px(sy(y))}" for x, y in s.points)
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        out.append(f'<polyline class="series" fill="none" stroke="{s.color}" stroke-width="2"{dash} '
                   f'points="{path}"><title>{escape(s.label)}</title></polyline>')
    out += _legend([(s.label, s.color) for s in series] + ([("price cliff", PALETTE[2])] if markers else []), _W)
    out.append("</svg>")
    return "\n".join(out)


def _legend(items, width: Decimal) -> list[str]:
    out = []
    x = width - _RIGHT
    for label, color in reversed(items):
        x -= Decimal(14 + 7 * len(label))
        out.append(f'<rect x="{_px(x)}" y="8" width="10" height="10" fill="{color}"/>'
                   f'<text x="{_px(x + 14)}" y="17">{escape(label)}</text>')
    return out


def bar_chart(title: str, groups: Sequence[tuple[str, Sequence[Decimal]]], labels: Sequence[str],
              colors: Sequence[str], *, value_format: Callable[[Decimal], str]) -> str:
    """Horizontal grouped bars: one group per row (e.g. a category), one bar per series (base, new).
    Negative values extend to the left of the zero line."""
    rows = max(len(groups), 1)
    bar = Decimal(12)
    gap = Decimal(10)
    group_h = bar * len(labels) + gap
    label_w = Decimal(200)
    height = _TOP + group_h * rows + Decimal(24)
    values = [v for _, vs in groups for v in vs] or [_ZERO]
    hi = nice_ceiling(max(max(values), _ZERO)) if max(values) > 0 else _ZERO
    lo = -nice_ceiling(-min(values)) if min(values) < 0 else _ZERO
    if hi == lo:
        hi = Decimal(1)
    sx = _scale(lo, hi, label_w, _W - Decimal(90))
    zero = sx(_ZERO)
    out = _frame(title, _W, height)
    out += _legend(list(zip(labels, colors)), _W)
    out.append(f'<line x1="{_px(zero)}" y1="{_px(_TOP - 4)}" x2="{_px(zero)}" y2="{_px(height - 20)}" stroke="#555"/>')
    for row, (name, vs) in enumerate(groups):
        top = _TOP + group_h * row
        out.append(f'<text x="{_px(label_w - 8)}" y="{_px(top + bar * len(labels) / 2)}" text-anchor="end" '
                   f'dominant-baseline="middle">{escape(name)}</text>')
        for i, value in enumerate(vs):
            x0, x1 = sorted((zero, sx(value)))
            y = top + bar * i
            out.append(f'<rect class="bar" x="{_px(x0)}" y="{_px(y)}" width="{_px(x1 - x0)}" height="{_px(bar - 2)}" '
                       f'fill="{colors[i]}"><title>{escape(f"{name}, {labels[i]}: {value_format(value)}")}</title></rect>')
            anchor, tx = ("start", x1 + 4) if value >= 0 else ("end", x0 - 4)
            out.append(f'<text x="{_px(tx)}" y="{_px(y + bar / 2)}" text-anchor="{anchor}" dominant-baseline="middle" '
                       f'font-size="10">{escape(value_format(value))}</text>')
    out.append("</svg>")
    return "\n".join(out)
