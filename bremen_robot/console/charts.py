"""Small SVG charts built on the server, so the page needs no chart library and no network.

Each function returns a list of plain shapes (dicts of attributes); the template writes them
with Jinja2's autoescape, so no value ever becomes markup. Numbers only come from the
workspace's evaluation files; labels are formatted here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeGuard

W, H = 360, 200
Cand = tuple[float, float | None, float | None, str] | None  # x, y, error, label
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 14, 34


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=raw)
    first = math.ceil(lo / step) * step
    out = []
    v = first
    while v <= hi + 1e-9 * step:
        out.append(round(v, 10))
        v += step
    return out


def is_number(v: Any) -> TypeGuard[float]:
    """A finite int or float (a damaged file may hold text, a list or NaN where a figure goes)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 10 or float(v).is_integer() else f"{v:.2g}"


def chart(
    points: Sequence[tuple[float, float | None, float | None]],
    *,
    x_label: str,
    y_label: str,
    y_range: tuple[float, float] | None = None,
    percent: bool = False,
    bars: bool = False,
    candidate: Cand = None,
) -> dict[str, Any]:
    """Points ``(x, y, error)`` as one chart: axes, ticks, error bars, markers (or bars).

    ``candidate`` ``(x, y, error, label)``: one point of its own series, a hollow marker with
    its label, neither joined to the line nor given an x tick of its own."""
    chart_: dict[str, Any] = {"width": W, "height": H, "x_label": x_label, "y_label": y_label}
    # a damaged evaluation file may hold text or NaN: such a point is left out, never drawn
    pts = [(x, y, e if is_number(e) else None) for x, y, e in points if is_number(y)]
    cand = None
    if candidate is not None and is_number(candidate[1]):
        cand = (candidate[0], candidate[1], candidate[2] if is_number(candidate[2]) else None)
    if not pts and cand is None:
        chart_.update(empty=True, lines=[], texts=[], circles=[], rects=[], path="")
        return chart_
    every = pts + ([cand] if cand is not None else [])
    xs = [p[0] for p in every]
    lows = [p[1] - (p[2] or 0) for p in every]
    highs = [p[1] + (p[2] or 0) for p in every]
    y0, y1 = y_range if y_range is not None else (min(lows + ([0.0] if bars else [])), max(highs))
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 1, y1 + 1
    pad = 0.0 if y_range is not None else 0.05 * (y1 - y0)
    y0, y1 = y0 - (0 if bars and y0 == 0 else pad), y1 + pad
    x0, x1 = min(xs), max(xs)
    if x1 - x0 < 1e-9:
        x0, x1 = x0 - 1, x1 + 1
    xpad = 0.06 * (x1 - x0) if not bars else 0.5 * (x1 - x0) / max(len(xs) - 1, 1)
    x0, x1 = x0 - xpad, x1 + xpad

    def sx(x: float) -> float:
        return round(LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT), 1)

    def sy(y: float) -> float:
        return round(H - BOTTOM - (y - y0) / (y1 - y0) * (H - TOP - BOTTOM), 1)

    lines: list[dict[str, Any]] = []
    texts: list[dict[str, Any]] = []
    circles: list[dict[str, Any]] = []
    rects: list[dict[str, Any]] = []
    for t in _ticks(y0, y1):
        lines.append({"x1": LEFT, "y1": sy(t), "x2": W - RIGHT, "y2": sy(t), "cls": "grid"})
        texts.append(
            {"x": LEFT - 4, "y": sy(t) + 4, "anchor": "end", "text": f"{t:.0%}" if percent else _fmt(t)}
        )
    ticked = [p[0] for p in pts] or xs
    for t in sorted(set(ticked)) if len(set(ticked)) <= 12 else _ticks(min(xs), max(xs), 5):
        texts.append({"x": sx(t), "y": H - BOTTOM + 14, "anchor": "middle", "text": _fmt(t)})
    lines.append({"x1": LEFT, "y1": H - BOTTOM, "x2": W - RIGHT, "y2": H - BOTTOM, "cls": "axis"})
    lines.append({"x1": LEFT, "y1": TOP, "x2": LEFT, "y2": H - BOTTOM, "cls": "axis"})
    bar_w = max(4.0, min(40.0, (W - LEFT - RIGHT) / (len(pts) * 2)))
    for n, (x, y, e) in enumerate(every):
        cls = "candidate" if cand is not None and n == len(pts) else "marker"
        if bars:
            top, base = sy(max(y, 0.0)), sy(0.0 if y0 <= 0 else y0)
            rects.append(
                {"x": round(sx(x) - bar_w / 2, 1), "y": top, "w": round(bar_w, 1), "h": round(base - top, 1)}
            )
            texts.append({"x": sx(x), "y": top - 3, "anchor": "middle", "text": _fmt(y)})
            continue
        if e:
            lines.append({"x1": sx(x), "y1": sy(y - e), "x2": sx(x), "y2": sy(y + e), "cls": "err"})
            for yy in (y - e, y + e):
                x_a, x_b = round(sx(x) - 4, 1), round(sx(x) + 4, 1)
                lines.append({"x1": x_a, "y1": sy(yy), "x2": x_b, "y2": sy(yy), "cls": "err"})
        circles.append({"cx": sx(x), "cy": sy(y), "r": 4, "cls": cls})
        if cls == "candidate" and candidate is not None:
            texts.append(
                {"x": round(sx(x) - 7, 1), "y": round(sy(y) - 7, 1), "anchor": "end", "text": candidate[3]}
            )
    path = "" if bars or not pts else "M" + " L".join(f"{sx(x)},{sy(y)}" for x, y, _ in pts)
    chart_.update(empty=False, lines=lines, texts=texts, circles=circles, rects=rects, path=path)
    return chart_


def timeline_charts(timeline: dict[str, Any]) -> list[dict[str, Any]]:
    """Return and success against deployment and against samples, and interventions per deployment.

    Row k's policy was trained on the samples of deployments 1..k-1 (``trained_on``). The last
    candidate is no deployment: drawn one position further on, a 3-deployment campaign read as
    4, so it is its own labelled point at its deployment k (and at the samples it trained on).
    """
    rows = [r for r in timeline["rows"] if r.get("eval_return_mean") is not None]
    final = timeline.get("final")
    ret_dep = [(r["deployment"], r["eval_return_mean"], r["eval_return_std"]) for r in rows]
    ret_smp = [(r["trained_on"], r["eval_return_mean"], r["eval_return_std"]) for r in rows]
    suc_dep = [(r["deployment"], r["success_rate"], None) for r in rows if r.get("success_rate") is not None]
    suc_smp = [(r["trained_on"], r["success_rate"], None) for r in rows if r.get("success_rate") is not None]
    c_ret_dep: Cand = None
    c_ret_smp: Cand = None
    c_suc_dep: Cand = None
    c_suc_smp: Cand = None
    if final and final.get("eval_return_mean") is not None:
        k, label = final["after_deployment"], f"candidate after {final['after_deployment']}"
        c_ret_dep = (k, final["eval_return_mean"], final.get("eval_return_std"), label)
        c_ret_smp = (final["trained_on"], final["eval_return_mean"], final.get("eval_return_std"), label)
        if final.get("success_rate") is not None:
            c_suc_dep = (k, final["success_rate"], None, label)
            c_suc_smp = (final["trained_on"], final["success_rate"], None, label)
    ivs = [
        (r["deployment"], float(r["interventions"]), None)
        for r in timeline["rows"]
        if is_number(r.get("interventions"))
    ]
    out = [
        {
            "title": "return ± std against deployment",
            **chart(ret_dep, x_label="deployment", y_label="return", candidate=c_ret_dep),
        },
        {
            "title": "return ± std against samples",
            **chart(ret_smp, x_label="samples trained on", y_label="return", candidate=c_ret_smp),
        },
    ]
    if suc_dep or c_suc_dep:
        out += [
            {
                "title": "success rate against deployment",
                **chart(
                    suc_dep,
                    x_label="deployment",
                    y_label="success",
                    y_range=(0.0, 1.0),
                    percent=True,
                    candidate=c_suc_dep,
                ),
            },
            {
                "title": "success rate against samples",
                **chart(
                    suc_smp,
                    x_label="samples trained on",
                    y_label="success",
                    y_range=(0.0, 1.0),
                    percent=True,
                    candidate=c_suc_smp,
                ),
            },
        ]
    out.append(
        {
            "title": "safety interventions per deployment",
            **chart(ivs, x_label="deployment", y_label="interventions", bars=True),
        }
    )
    return out
