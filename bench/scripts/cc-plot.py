#!/usr/bin/env python3
"""Convergence plot of an automatic-layer run: the CSV timeline that
tests/auto-layer-shaped-link.rs writes with TERN_CC_TRACE=<file> (seconds, link_bps,
estimate_bps, layer, sent, dropped) drawn as a self-contained SVG with three panels: link
rate and the relay's estimate, the layer received, and the shaper's loss per second.

    TERN_CC_TRACE=/tmp/trace.csv cargo test --test auto-layer-shaped-link
    python3 bench/scripts/cc-plot.py /tmp/trace.csv > perf-reports/cc.svg

Standard library only.
"""
import csv
import sys

W, PANEL, GAP, LEFT = 900, 160, 40, 70


def main(path):
    rows = list(csv.DictReader(open(path)))
    t = [float(r["seconds"]) for r in rows]
    link = [min(int(r["link_bps"]), 3_000_000) / 1e6 for r in rows]
    est = [int(r["estimate_bps"]) / 1e6 for r in rows]
    layer = [1 if r["layer"] == "h" else 0 for r in rows]
    # Loss per second: dropped / sent over each 1 s step (4 samples).
    loss = []
    for i in range(len(rows)):
        j = max(0, i - 4)
        sent = int(rows[i]["sent"]) - int(rows[j]["sent"])
        dropped = int(rows[i]["dropped"]) - int(rows[j]["dropped"])
        loss.append(100.0 * dropped / sent if sent else 0.0)
    tmax = max(t)
    x = lambda s: LEFT + (W - LEFT - 20) * s / tmax
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{3 * (PANEL + GAP) + 30}" '
           'font-family="sans-serif" font-size="12">']

    def panel(k, title, series, ymax, unit):
        top = 20 + k * (PANEL + GAP)
        y = lambda v: top + PANEL - PANEL * min(v, ymax) / ymax
        out.append(f'<text x="{LEFT}" y="{top - 6}">{title}</text>')
        out.append(f'<rect x="{LEFT}" y="{top}" width="{W - LEFT - 20}" height="{PANEL}" '
                   'fill="none" stroke="#999"/>')
        for frac in (0, 0.5, 1):
            v = ymax * frac
            out.append(f'<text x="{LEFT - 6}" y="{y(v) + 4}" text-anchor="end">{v:g}{unit}</text>')
        for s in range(0, int(tmax) + 1, 5):
            out.append(f'<text x="{x(s)}" y="{top + PANEL + 14}" text-anchor="middle">{s}s</text>')
        for name, values, colour in series:
            pts = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in zip(t, values))
            out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        for i, (name, _, colour) in enumerate(series):
            out.append(f'<text x="{W - 200}" y="{top + 14 + 14 * i}" fill="{colour}">{name}</text>')

    panel(0, "rate (Mbit/s; link capped at 3 for the plot)",
          [("link", link, "#888"), ("estimate", est, "#d33")], 3.0, "")
    panel(1, "layer received (1 = high, 0 = low)", [("layer", layer, "#36c")], 1.0, "")
    panel(2, "shaper loss per second (%)", [("loss", loss, "#393")], max(5.0, max(loss)), "%")
    out.append("</svg>")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
