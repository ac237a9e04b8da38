#!/usr/bin/env python3
"""Plots a soak's samples.csv (bench/scripts/soak.sh) as one SVG: RSS, open fds and threads,
sessions, and packet rates over time, churn samples shaded. Standard library only.

usage: soak-plot.py SAMPLES_CSV OUT_SVG [TITLE]
"""
import csv
import sys

W, PANEL_H, LEFT, RIGHT, TOP, GAP = 900, 150, 70, 20, 40, 40


def series(rows, key, scale=1.0):
    return [(float(r["t"]), float(r[key]) * scale) for r in rows]


def rate(rows, key):
    out = []
    for a, b in zip(rows, rows[1:]):
        dt = float(b["t"]) - float(a["t"])
        if dt > 0:
            out.append((float(b["t"]), (float(b[key]) - float(a[key])) / dt))
    return out


def panel(svg, y0, title, lines, t_max, churn):
    """lines: [(label, colour, [(t, v)])]."""
    values = [v for _, _, pts in lines for _, v in pts] or [0.0]
    lo, hi = min(values), max(values)
    if lo > 0 and (hi - lo) < 0.2 * hi:
        lo = lo * 0.95  # a flat line near its value, not near zero
    else:
        lo = 0.0
    hi = hi * 1.05 if hi > lo else lo + 1
    x = lambda t: LEFT + (W - LEFT - RIGHT) * t / max(t_max, 1)
    y = lambda v: y0 + PANEL_H - PANEL_H * (v - lo) / (hi - lo)
    for t in churn:
        svg.append(f'<rect x="{x(t) - 2:.1f}" y="{y0}" width="4" height="{PANEL_H}" fill="#f3e6c8"/>')
    svg.append(f'<rect x="{LEFT}" y="{y0}" width="{W - LEFT - RIGHT}" height="{PANEL_H}" '
               'fill="none" stroke="#999"/>')
    svg.append(f'<text x="{LEFT}" y="{y0 - 6}" font-size="13" font-weight="bold">{title}</text>')
    for v in (lo, (lo + hi) / 2, hi):
        svg.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" font-size="11" '
                   f'text-anchor="end">{v:,.0f}</text>')
    lx = LEFT + 260
    for label, colour, pts in lines:
        if pts:
            d = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
            svg.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        svg.append(f'<text x="{lx}" y="{y0 - 6}" font-size="12" fill="{colour}">{label}</text>')
        lx += 9 * len(label) + 20


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rows = list(csv.DictReader(open(sys.argv[1])))
    if not rows:
        sys.exit("no samples")
    title = sys.argv[3] if len(sys.argv) > 3 else "Tern soak"
    t_max = float(rows[-1]["t"])
    churn = [float(r["t"]) for r in rows if r["phase"] == "churn"]
    panels = [
        ("Resident memory (MiB)", [("RSS", "#1f77b4", series(rows, "rss_kb", 1 / 1024))]),
        ("Open fds and threads", [("fds", "#2ca02c", series(rows, "fds")),
                                  ("threads", "#d62728", series(rows, "threads"))]),
        ("Sessions", [("publishers", "#9467bd", series(rows, "sessions_pub")),
                      ("subscribers", "#8c564b", series(rows, "sessions_sub"))]),
        ("Packets per second", [("in", "#17becf", rate(rows, "packets_in")),
                                ("out", "#ff7f0e", rate(rows, "packets_out"))]),
    ]
    h = TOP + len(panels) * (PANEL_H + GAP) + 30
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" '
           'font-family="sans-serif">', f'<rect width="{W}" height="{h}" fill="white"/>',
           f'<text x="{LEFT}" y="20" font-size="15" font-weight="bold">{title}</text>']
    for i, (name, lines) in enumerate(panels):
        panel(svg, TOP + 10 + i * (PANEL_H + GAP), name, lines, t_max, churn)
    base = TOP + 10 + len(panels) * (PANEL_H + GAP) - GAP + 16
    for k in range(6):
        t = t_max * k / 5
        xx = LEFT + (W - LEFT - RIGHT) * k / 5
        label = f"{t / 60:.0f} min" if t_max >= 600 else f"{t:.0f} s"
        svg.append(f'<text x="{xx:.1f}" y="{base}" font-size="11" text-anchor="middle">'
                   f'{label}</text>')
    svg.append(f'<text x="{W - RIGHT}" y="{base + 14}" font-size="11" text-anchor="end">'
               'shaded: samples during a churn wave</text>')
    svg.append("</svg>")
    open(sys.argv[2], "w").write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
