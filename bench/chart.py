"""bench/chart.py: draws docs/benchmarks.png from the `summary` that bench/run.mjs writes into
bench/results/benchmarks.json. Usage: python3 bench/chart.py RESULTS.json OUT.png

Each panel is one workload: bars are medians, whiskers the min-max range, codepane in
blue, Jupyter with TCP_NODELAY in orange, Jupyter as shipped in grey. Times use a log
scale where the two sides are orders of magnitude apart.
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CODEPANE = "#2f6db5"
NODELAY = "#e08a2c"
SHIPPED = "#9a9a9a"
FLOOR = "#c0392b"
MIB = 2 ** 20

J = "jupyter"
JN = "jupyter+nodelay"
JNL = "jupyter+nodelay, no rate limit"


def bars(ax, items, title, unit, log=False, floor=None, floor_label=None):
    """items: (label, stats-or-number, colour); stats is {median, min, max}."""
    items = [it for it in items if it[1] is not None]
    xs = range(len(items))
    med, lo, hi = [], [], []
    for _, st, _ in items:
        if isinstance(st, dict):
            med.append(st["median"])
            lo.append(st["median"] - st["min"])
            hi.append(st["max"] - st["median"])
        else:
            med.append(st)
            lo.append(0)
            hi.append(0)
    ax.bar(xs, med, color=[c for _, _, c in items], yerr=[lo, hi], capsize=3,
           error_kw={"elinewidth": 0.8, "ecolor": "#333"})
    ax.set_xticks(list(xs))
    ax.set_xticklabels([label for label, _, _ in items], rotation=30, ha="right", fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(unit, fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    if log and all(m > 0 for m in med):
        ax.set_yscale("log")
    for x, m in zip(xs, med):
        text = f"{m:.3g}" if m < 1000 else f"{m:,.0f}"
        ax.annotate(text, (x, m), ha="center", va="bottom", fontsize=6.5,
                    xytext=(0, 2), textcoords="offset points")
    if floor is not None:
        ax.axhline(floor, color=FLOOR, lw=0.9, ls="--")
        ax.annotate(floor_label, (0.99, floor), xycoords=("axes fraction", "data"), ha="right",
                    va="bottom", fontsize=6.5, color=FLOOR)


def main():
    src, out = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as fh:
        S = json.load(fh)["summary"]
    fig, axes = plt.subplots(2, 4, figsize=(18, 8.5), gridspec_kw={"width_ratios": [1.45, 1, 1, 1]})
    w = S["warm"]
    floor = (S["floor"].get("warm") or {}).get("median")
    bars(axes[0][0], [
        ("codepane\nNode client", w.get("clientPy"), CODEPANE),
        ("codepane\nraw ws", w.get("rawPy"), CODEPANE),
        ("codepane\nChromium", w.get("browserPy"), CODEPANE),
        ("Jupyter+nodelay\nraw ws", w.get(JN), NODELAY),
        ("Jupyter+nodelay\nChromium", w.get("browserJN"), NODELAY),
        ("Jupyter\nraw ws", w.get(J), SHIPPED),
        ("Jupyter\nChromium", w.get("browserJ"), SHIPPED),
        ("Jupyter raw ws\n300 ms apart", w.get("pacedJ"), SHIPPED),
    ], "warm first output, print('x')", "ms (log)", log=True, floor=floor,
        floor_label=f"WebSocket echo floor {floor:.2f} ms" if floor else None)

    ax = axes[0][1]
    rps = S["rps"]
    ns = sorted(rps["codepane"].keys(), key=int)
    width = 0.27
    for i, (key, colour, label) in enumerate([("codepane", CODEPANE, "codepane"),
                                              (JN, NODELAY, "Jupyter+nodelay"),
                                              (J, SHIPPED, "Jupyter")]):
        meds, lo, hi = [], [], []
        for n in ns:
            st = rps[key].get(n)
            meds.append(st["median"] if st else 0)
            lo.append(st["median"] - st["min"] if st else 0)
            hi.append(st["max"] - st["median"] if st else 0)
        xs = [j + (i - 1) * width for j in range(len(ns))]
        ax.bar(xs, meds, width, color=colour, label=label, yerr=[lo, hi], capsize=2,
               error_kw={"elinewidth": 0.8})
        for x, m in zip(xs, meds):
            ax.annotate(f"{m:,.0f}", (x, m), ha="center", va="bottom", fontsize=6, xytext=(0, 2),
                        textcoords="offset points")
    ax.set_xticks(range(len(ns)))
    ax.set_xticklabels([f"{n} session{'s' if n != '1' else ''}" for n in ns], fontsize=7)
    ax.set_yscale("log")
    ax.set_title("runs per second (print('x'), raw ws)", fontsize=9)
    ax.set_ylabel("runs/s (log)", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    lo_y, hi_y = ax.get_ylim()
    ax.set_ylim(lo_y, hi_y * 4)
    ax.legend(fontsize=7, loc="upper right", ncol=3)

    c = S["cold"]
    bars(axes[0][2], [
        ("codepane\nNode client", (c.get("client") or {}).get("total"), CODEPANE),
        ("codepane\nraw ws", (c.get("raw") or {}).get("total"), CODEPANE),
        ("codepane\nno pool", (c.get("rawNoPool") or {}).get("total"), CODEPANE),
        ("Jupyter+nodelay", (c.get(JN) or {}).get("total"), NODELAY),
        ("Jupyter", (c.get(J) or {}).get("total"), SHIPPED),
    ], "cold: new session → first output", "ms (log)", log=True,
        floor=(S["floor"].get("bwrap") or {}).get("median"), floor_label="bare bwrap python3 spawn")

    b = S["big"]
    bars(axes[0][3], [
        ("codepane\nraw ws", (b.get("raw") or {}).get("mbps"), CODEPANE),
        ("codepane\nNode client", (b.get("client") or {}).get("mbps"), CODEPANE),
        ("Jupyter+nodelay\nno rate limit", (b.get(JNL) or {}).get("mbps"), NODELAY),
        ("Jupyter\nrate limit" + ("\n(0 bytes arrived)" if ((b.get(J) or {}).get("bytes") or {}).get("max") == 0 else ""),
         (b.get(J) or {}).get("mbps"), SHIPPED),
    ], "10 MB of stdout: throughput", "MB/s", floor=100, floor_label="target 100 MB/s")

    bars(axes[1][0], [
        ("codepane\nraw ws", (b.get("raw") or {}).get("first"), CODEPANE),
        ("codepane\nNode client", (b.get("client") or {}).get("first"), CODEPANE),
        ("Jupyter+nodelay\nno rate limit", (b.get(JNL) or {}).get("first"), NODELAY),
        ("codepane: gap\nraw ws", (b.get("raw") or {}).get("gap"), CODEPANE),
        ("Jupyter: gap\nno rate limit", (b.get(JNL) or {}).get("gap"), NODELAY),
    ], "10 MB: first chunk and largest gap", "ms", floor=50, floor_label="first-chunk target 50 ms")

    p, lv = S["plot"], S["live"]
    bars(axes[1][1], [
        ("codepane\nplot, raw ws", (p.get("raw") or {}).get("png"), CODEPANE),
        ("Jupyter+nodelay\nplot", (p.get(JN) or {}).get("png"), NODELAY),
        ("Jupyter\nplot", (p.get(J) or {}).get("png"), SHIPPED),
        ("codepane\nrunning cell", lv.get("raw"), CODEPANE),
        ("Jupyter+nodelay\nrunning cell", lv.get(JN), NODELAY),
    ], "PNG plot, warm; first output of a running cell", "ms (log)", log=True)

    m = S.get("memory")
    if m:
        bars(axes[1][2], [
            ("codepane\nRSS", m["codepane"]["rss"] / MIB, CODEPANE),
            ("ipykernel\nRSS", m["jupyter"]["rss"] / MIB, NODELAY),
            ("codepane\nPSS", m["codepane"]["pss"] / MIB, CODEPANE),
            ("ipykernel\nPSS", m["jupyter"]["pss"] / MIB, NODELAY),
        ], "idle python session", "MiB", floor=0.6 * m["jupyter"]["rss"] / MIB,
            floor_label="target 0.6 × ipykernel RSS")
    else:
        axes[1][2].set_axis_off()

    wt = S.get("weight")
    if wt and wt.get("codepane") and wt.get("e2b"):
        bars(axes[1][3], [
            ("codepane\nclient core", wt["codepane"] / 1000, CODEPANE),
            ("E2B SDK\n(Node built-ins external)", wt["e2b"] / 1000, SHIPPED),
        ], "client weight, gzip -9", "kB", floor=0.15 * wt["e2b"] / 1000, floor_label="target 0.15 × E2B")
    else:
        axes[1][3].set_axis_off()

    fig.suptitle("codepane vs Jupyter Server (medians, whiskers min-max; blue codepane, "
                 "orange Jupyter+TCP_NODELAY, grey Jupyter as shipped)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
