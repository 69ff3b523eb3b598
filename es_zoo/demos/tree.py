"""Draw a dependency tree as an SVG: the words on a line, an arc from each head to its dependent with
the relation on it, and an arrow down from above for the root (the layout of displaCy and brat)."""

from __future__ import annotations

from html import escape

_CHAR_W, _GAP, _LEVEL_H, _BASE = 8.0, 24.0, 28.0, 40.0


def tree_svg(tokens: list[dict]) -> str:
    """An ``<svg>`` for tokens ``[{"id", "form", "head", "deprel"}]`` (ids 1-based, head 0 = root).
    Arcs nest by length, so shorter arcs are drawn lower and never cross the words."""
    if not tokens:
        return "<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'></svg>"
    xs, x = {}, 10.0
    for t in tokens:
        w = max(len(t["form"]), len(t["deprel"]) * 0.8, 3) * _CHAR_W
        xs[t["id"]] = x + w / 2
        x += w + _GAP
    width = x
    arcs = sorted((t for t in tokens if t["head"]), key=lambda t: abs(t["head"] - t["id"]))
    level: dict[int, int] = {}
    occupied: list[tuple[int, int, int]] = []  # (lo, hi, level)
    for t in arcs:
        lo, hi = sorted((t["id"], t["head"]))
        lv = 1 + max([lvl for a, b, lvl in occupied if a <= hi and lo <= b and (a, b) != (lo, hi)] or [0])
        level[t["id"]] = lv
        occupied.append((lo, hi, lv))
    top = max(level.values() or [1]) + 1
    height = _BASE + top * _LEVEL_H + 50
    base_y = height - 40
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' class='es-zoo-tree' width='{width:.0f}' height='{height:.0f}' "
             f"viewBox='0 0 {width:.0f} {height:.0f}' font-family='sans-serif' font-size='13'>",
             "<defs><marker id='arrow' markerWidth='8' markerHeight='8' refX='4' refY='4' orient='auto'>"
             "<path d='M0,0 L8,4 L0,8 z' fill='#555'/></marker></defs>"]
    for t in tokens:
        parts.append(f"<text x='{xs[t['id']]:.1f}' y='{base_y + 20:.1f}' text-anchor='middle' class='word'>"
                     f"{escape(t['form'])}</text>")
    for t in tokens:
        x2 = xs[t["id"]]
        if not t["head"]:
            y1 = base_y - top * _LEVEL_H
            parts.append(f"<line x1='{x2:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{base_y:.1f}' stroke='#555' "
                         "marker-end='url(#arrow)'/>")
            parts.append(f"<text x='{x2 + 4:.1f}' y='{y1 + 12:.1f}' class='rel' fill='#b3261e'>"
                         f"{escape(t['deprel'])}</text>")
            continue
        x1, h = xs[t["head"]], level[t["id"]] * _LEVEL_H
        mid = (x1 + x2) / 2
        parts.append(f"<path d='M{x1:.1f},{base_y:.1f} C{x1:.1f},{base_y - h:.1f} {x2:.1f},{base_y - h:.1f} "
                     f"{x2:.1f},{base_y:.1f}' fill='none' stroke='#555' marker-end='url(#arrow)' class='arc' "
                     f"data-head='{t['head']}' data-dep='{t['id']}'/>")
        parts.append(f"<text x='{mid:.1f}' y='{base_y - 0.75 * h - 3:.1f}' text-anchor='middle' class='rel' "
                     f"fill='#1a5fb4'>{escape(t['deprel'])}</text>")
    parts.append("</svg>")
    return "".join(parts)
