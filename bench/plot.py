"""Draw the benchmark CSV as PNGs: ``python -m bench.plot CSV [--out DIR]``.

From a GPU run (run_kind ``gpu``): speedup over torch.nn against batch, hidden size and
sequence length (one figure per axis and mode, a panel per dtype and cell, a line per provider,
error bars from the 20th/80th percentiles), speedup at each DeepBench shape and depth/direction
setting, and the anchor against its published reference timings and our targets. The device is
in every title.

From a CPU run (run_kind ``cpu-interpreter``): the GPU-independent metrics only (agreement with
float64, bytes per step against the lower bound, compiled resources), every title saying
"CPU interpreter — not a speed measure". No interpreter time is ever drawn.
"""
import argparse
import math
from collections import defaultdict
from pathlib import Path

from . import records
from .shapes import ANCHOR_REFERENCE_MS, ANCHOR_TARGET_MS

PROVIDER_STYLE = {"tritonrnn": ("tab:red", "o"), "torch": ("tab:blue", "s"),
                  "loop": ("tab:gray", "v"), "loop_compiled": ("tab:green", "^")}
PROVIDER_LABEL = {"tritonrnn": "tritonrnn", "torch": "torch.nn",
                  "loop": "PyTorch loop", "loop_compiled": "PyTorch loop, compiled"}
_AXES = {"sweep-batch": "batch", "sweep-hidden": "hidden", "sweep-seq": "seq"}
_AXIS_LABEL = {"batch": "batch size B", "hidden": "hidden size H", "seq": "sequence length T"}



def _log_bar_axes(ax, labels, ylabel, title):
    """Shared look of the bar panels: slanted case labels, log scale, legend, grid."""
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", which="both", alpha=0.3)

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt
    return plt


def _num(v):
    return float(v) if v not in ("", None) else math.nan


def _slug(mode):
    return mode.replace("+", "_").replace(" ", "_")


def _times(rows):
    """{(suite, shape key, dtype, mode, provider): (median, p20, p80)} of the time rows."""
    out = {}
    for r in rows:
        if r["metric"] == "time":
            key = (r["suite"], _shape_key(r), r["dtype"], r["mode"], r["provider"])
            out[key] = (_num(r["value"]), _num(r["p20"]), _num(r["p80"]))
    return out


def _shape_key(r):
    return (r["cell"], int(r["batch"]), int(r["hidden"]), int(r["seq"]), int(r["input_size"]),
            int(r["layers"]), int(r["bidirectional"]))


def speedup(base, other):
    """Speedup of `other` over `base` (median, low, high) from (median, p20, p80) times: the
    bar spans the slowest-against-fastest combinations of the two spreads."""
    return base[0] / other[0], base[1] / other[2], base[2] / other[1]


def _speedups(rows, suite):
    """{(dtype, mode, cell, provider): [(shape key, (s, lo, hi))]} over torch.nn."""
    times = _times(rows)
    out = defaultdict(list)
    for (s, key, dtype, mode, provider), t in times.items():
        if s != suite or provider == "torch":
            continue
        base = times.get((s, key, dtype, mode, "torch"))
        if base:
            out[(dtype, mode, key[0], provider)].append((key, speedup(base, t)))
    return out


def _errorbar(ax, xs, sp, provider, label=True, joined=True):
    color, marker = PROVIDER_STYLE.get(provider, ("black", "x"))
    ys = [s for s, _, _ in sp]
    lo = [max(0.0, s - l) for s, l, _ in sp]
    hi = [max(0.0, h - s) for s, _, h in sp]
    ax.errorbar(xs, ys, yerr=[lo, hi], color=color, marker=marker, capsize=3,
                linewidth=1.2 if joined else 0, elinewidth=1.2, markersize=4,
                label=PROVIDER_LABEL.get(provider, provider) if label else None)


def _grid(plt, nrows, ncols):
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(9.0, 4.2 * ncols), 3.3 * nrows + 1.2),
                             squeeze=False)
    return fig, axes


def _finish(fig, path, legend=True):
    """Legend in a row under the panels (never over a title), then save."""
    if legend:
        handles, labels = [], []
        for ax in fig.axes:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        fig.legend(handles, labels, loc="lower center", ncol=max(1, len(labels)), fontsize=8,
                   frameon=False)
    height = fig.get_figheight()  # keep ~0.8 in for the two-line title, ~0.4 in for the legend
    fig.tight_layout(rect=(0, 0.4 / height if legend else 0, 1, 1 - 0.8 / height))
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path


def _device(rows):
    return " / ".join(sorted({r["device"] for r in rows})) or "unknown device"


def _sorted_values(rows, column):
    return sorted({r[column] for r in rows if r[column]})


def plot_axis_sweeps(plt, rows, out):
    """speedup_<axis>_<mode>.png for each swept axis and mode."""
    written = []
    device = _device(rows)
    for suite, axis in _AXES.items():
        per = _speedups(rows, suite)
        if not per:
            continue
        index = {"batch": 1, "hidden": 2, "seq": 3}[axis]
        for mode in sorted({m for _, m, _, _ in per}):
            dtypes = sorted({d for d, m, _, _ in per if m == mode})
            cells = sorted({c for d, m, c, _ in per if m == mode})
            fig, axes = _grid(plt, len(dtypes), len(cells))
            for i, dtype in enumerate(dtypes):
                for j, cell in enumerate(cells):
                    ax = axes[i][j]
                    for provider in PROVIDER_STYLE:
                        pts = sorted(per.get((dtype, mode, cell, provider), []))
                        if pts:
                            _errorbar(ax, [k[index] for k, _ in pts], [s for _, s in pts],
                                      provider, label=(i, j) == (0, 0))
                    ax.axhline(1.0, color="tab:blue", linewidth=0.8, linestyle="--")
                    ax.set_xscale("log", base=2)
                    ax.set_yscale("log")
                    ax.set_title(f"{cell}, {dtype}", fontsize=9)
                    ax.set_xlabel(_AXIS_LABEL[axis], fontsize=8)
                    ax.set_ylabel("speedup over torch.nn", fontsize=8)
                    ax.grid(True, which="both", alpha=0.3)
            fig.suptitle(f"Speedup over torch.nn, {mode}, against {_AXIS_LABEL[axis]}\n"
                         f"{device} (median; bars: 20th-80th percentile)", fontsize=10)
            written.append(_finish(fig, out / f"speedup_{axis}_{_slug(mode)}.png"))
    return written


def plot_categorical(plt, rows, out, suite, name, title):
    """Speedup per shape of a suite without one numeric axis (DeepBench tables, stacks)."""
    per = _speedups(rows, suite)
    if not per:
        return []
    device = _device(rows)
    written = []
    for mode in sorted({m for _, m, _, _ in per}):
        dtypes = sorted({d for d, m, _, _ in per if m == mode})
        keys = sorted({k for (d, m, _, _), pts in per.items() if m == mode for k, _ in pts})
        fig, axes = plt.subplots(len(dtypes), 1, figsize=(max(9, 0.22 * len(keys) + 3),
                                                        3.4 * len(dtypes) + 2.0), squeeze=False)
        for i, dtype in enumerate(dtypes):
            ax = axes[i][0]
            for provider in PROVIDER_STYLE:
                pts = {k: s for (d, m, c, p), lst in per.items()
                       if d == dtype and m == mode and p == provider for k, s in lst}
                xs = [n for n, k in enumerate(keys) if k in pts]
                if xs:
                    _errorbar(ax, xs, [pts[keys[n]] for n in xs], provider, label=i == 0,
                              joined=False)
            ax.axhline(1.0, color="tab:blue", linewidth=0.8, linestyle="--")
            ax.set_yscale("log")
            ax.set_xticks(range(len(keys)))
            ax.set_xticklabels([_short(k) for k in keys], rotation=90, fontsize=6)
            ax.set_ylabel(f"speedup over torch.nn\n{dtype}", fontsize=8)
            ax.grid(True, which="both", alpha=0.3)
        fig.suptitle(f"{title}, {mode}: speedup over torch.nn\n{device} "
                     "(median; bars: 20th-80th percentile)", fontsize=10)
        written.append(_finish(fig, out / f"{name}_{_slug(mode)}.png"))
    return written


def _short(key):
    cell, B, H, T, _, L, bi = key
    extra = (f" L{L}" if L > 1 else "") + (" bi" if bi else "")
    return f"{cell} H{H} B{B} T{T}{extra}"


def plot_anchor(plt, rows, out):
    """anchor.png: measured milliseconds at the anchor beside the published references and
    the targets, forward and forward+backward."""
    times = {(r["dtype"], r["mode"], r["provider"]): (_num(r["value"]), _num(r["p20"]),
                                                       _num(r["p80"]))
             for r in rows if r["metric"] == "time" and r["suite"] == "anchor"}
    if not times:
        return []
    modes = [m for m in ("forward", "forward+backward") if any(k[1] == m for k in times)]
    fig, axes = plt.subplots(1, len(modes), figsize=(6.5 * len(modes), 4.2), squeeze=False)
    for j, mode in enumerate(modes):
        ax = axes[0][j]
        labels, values, errs, colors = [], [], [[], []], []
        order = list(PROVIDER_STYLE)
        for (dtype, m, provider), (med, p20, p80) in sorted(
                times.items(), key=lambda kv: (kv[0][0], order.index(kv[0][2])
                                               if kv[0][2] in order else len(order))):
            if m != mode:
                continue
            labels.append(f"{PROVIDER_LABEL.get(provider, provider)}\n{dtype}")
            values.append(med)
            errs[0].append(med - p20)
            errs[1].append(p80 - med)
            colors.append(PROVIDER_STYLE.get(provider, ("black",))[0])
        for name, by_mode in ANCHOR_REFERENCE_MS.items():
            labels.append(name.replace(" (", "\n("))
            values.append(by_mode[mode])
            errs[0].append(0.0)
            errs[1].append(0.0)
            colors.append("lightgray")
        ax.bar(range(len(values)), values, yerr=errs, color=colors, capsize=3)
        ax.axhline(ANCHOR_TARGET_MS[mode], color="black", linestyle="--", linewidth=1,
                   label=f"target {ANCHOR_TARGET_MS[mode]} ms")
        _log_bar_axes(ax, labels, "ms per call (lower is better)", mode)
    fig.suptitle(f"Anchor: LSTM B=16 T=1024 H=768 — {_device(rows)}\n"
                 "measured (median, 20th-80th percentile) beside published H100 references",
                 fontsize=10)
    return [_finish(fig, out / "anchor.png", legend=False)]


def plot_gpu(rows, out):
    plt = _pyplot()
    written = plot_axis_sweeps(plt, rows, out)
    written += plot_categorical(plt, rows, out, "sweep-stack", "speedup_stack",
                                "Layers and directions at B=16 T=1024 H=768")
    written += plot_categorical(plt, rows, out, "deepbench-inference", "deepbench_inference",
                                "DeepBench inference shapes")
    written += plot_categorical(plt, rows, out, "deepbench-training", "deepbench_training",
                                "DeepBench training shapes")
    written += plot_anchor(plt, rows, out)
    return written


# -- CPU interpreter figures -------------------------------------------------------------------

def plot_agreement(plt, rows, out):
    agree = [r for r in rows if r["metric"] == "max_abs_err_vs_float64"]
    if not agree:
        return []
    dtypes, cells = _sorted_values(agree, "dtype"), list(dict.fromkeys(r["cell"] for r in agree))
    quantities = list(dict.fromkeys(r["quantity"] for r in agree))
    providers = list(dict.fromkeys(r["provider"] for r in agree))
    value = {(r["dtype"], r["cell"], r["provider"], r["quantity"]): _num(r["value"])
             for r in agree}
    fig, axes = _grid(plt, len(dtypes), len(cells))
    width = 0.8 / len(providers)
    for i, dtype in enumerate(dtypes):
        for j, cell in enumerate(cells):
            ax = axes[i][j]
            for n, provider in enumerate(providers):
                ys = [max(value.get((dtype, cell, provider, q), math.nan), 1e-12)
                      for q in quantities]
                ax.bar([x + n * width for x in range(len(quantities))], ys, width,
                       color=PROVIDER_STYLE.get(provider, ("black",))[0],
                       label=PROVIDER_LABEL.get(provider, provider) if (i, j) == (0, 0)
                       else None)
            ax.set_yscale("log")
            ax.set_xticks([x + width * (len(providers) - 1) / 2 for x in range(len(quantities))])
            ax.set_xticklabels(quantities, rotation=45, ha="right", fontsize=7)
            ax.set_title(f"{cell}, {dtype}", fontsize=9)
            ax.set_ylabel("max |error| vs float64", fontsize=8)
            ax.grid(True, axis="y", which="both", alpha=0.3)
    a = agree[0]
    fig.suptitle(f"{records.CPU_LABEL}\nAgreement with torch.nn in float64 (same weights): "
                 f"L={a['layers']}, T={a['seq']}, B={a['batch']}, I={a['input_size']}, "
                 f"H={a['hidden']}", fontsize=10)
    return [_finish(fig, out / "agreement.png")]


def plot_traffic(plt, rows, out):
    moved = [r for r in rows if r["metric"] == "bytes_per_step"]
    if not moved:
        return []
    bound = {(r["cell"], r["hidden"], r["mode"]): _num(r["value"]) for r in rows
             if r["metric"] == "bytes_per_step_lower_bound"}
    launches = defaultdict(list)  # at T=3 then T=6: equal when the launch count is per sequence
    for r in rows:
        if r["metric"] == "launches_per_sequence":
            launches[(r["cell"], r["hidden"], r["mode"])].append(str(int(_num(r["value"]))))
    modes = list(dict.fromkeys(r["mode"] for r in moved))
    fig, axes = plt.subplots(1, len(modes), figsize=(6.5 * len(modes), 4.2), squeeze=False)
    for j, mode in enumerate(modes):
        ax = axes[0][j]
        mine = [r for r in moved if r["mode"] == mode]
        labels = [f"{r['cell']} H{r['hidden']} {r['quantity']}\n"
                  f"launches {'/'.join(launches[(r['cell'], r['hidden'], mode)])}"
                  for r in mine]
        got = [_num(r["value"]) for r in mine]
        low = [bound[(r["cell"], r["hidden"], mode)] for r in mine]
        xs = range(len(mine))
        ax.bar([x - 0.2 for x in xs], got, 0.4, color="tab:red", label="bytes per step")
        ax.bar([x + 0.2 for x in xs], low, 0.4, color="lightgray", label="lower bound")
        for x, g, b in zip(xs, got, low):
            ax.annotate(f"{g / b:.2g}x", (x, max(g, b)), ha="center", va="bottom", fontsize=7)
        _log_bar_axes(ax, labels, "global-memory bytes per timestep", mode)
    fig.suptitle(f"{records.CPU_LABEL}\nForward recurrence traffic counted in the interpreter "
                 f"(fp16, B={moved[0]['batch']}) against the lower bound; launches per sequence "
                 "at T=3/6"
                 + ("\n(split: W_hh re-read every step; the interpreter's one-program-per-batch-tile "
                    "layout)" if any(r["quantity"] == "split" for r in moved) else ""), fontsize=10)
    return [_finish(fig, out / "traffic.png", legend=False)]


def plot_compile(plt, rows, out):
    res = [r for r in rows if r["suite"].startswith("compile-report")]
    if not res:
        return []
    by = defaultdict(dict)
    for r in res:
        by[(r["quantity"], r["dtype"], r["hidden"])][r["metric"]] = _num(r["value"])
    keys = list(by)
    labels = [f"{q} {d} H{h}".strip() for q, d, h in keys]
    fig, axes = plt.subplots(1, 2, figsize=(max(10, 0.35 * len(keys) + 4), 4.6), squeeze=False)
    xs = range(len(keys))
    ax = axes[0][0]
    ax.bar(xs, [by[k].get("registers", math.nan) for k in keys], color="tab:red")
    ax.axhline(255, color="black", linestyle="--", linewidth=1, label="255 per thread")
    ax.set_ylabel("registers per thread")
    ax.legend(fontsize=8)
    ax = axes[0][1]
    ax.bar(xs, [by[k].get("shared_bytes", math.nan) / 1024 for k in keys], color="tab:red",
           label="shared memory")
    ax.plot(xs, [by[k].get("shared_limit", math.nan) / 1024 for k in keys], "k_",
            markersize=12, label="per-block limit")
    ax.set_ylabel("KiB per block")
    ax.legend(fontsize=8)
    for ax in axes[0]:
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, rotation=75, ha="right", fontsize=6)
        ax.grid(True, axis="y", alpha=0.3)
    arch = res[0]["suite"].split("-")[-1]
    fig.suptitle(f"{records.CPU_LABEL}\nKernels compiled ahead of time for {arch} (no GPU "
                 "needed): resources per kernel", fontsize=10)
    return [_finish(fig, out / "compile_resources.png", legend=False)]


def plot_cpu(rows, out):
    plt = _pyplot()
    return plot_agreement(plt, rows, out) + plot_traffic(plt, rows, out) + \
        plot_compile(plt, rows, out)


def _sweep_series(rows):
    """{(cell, dtype, mode): {batch: [(hidden, (speedup, lo, hi))]}}: tritonrnn over torch.nn
    for every timed shape of a run (any suite), one series per batch size."""
    times = _times(rows)
    series = defaultdict(lambda: defaultdict(list))
    for (suite, key, dtype, mode, provider), t in times.items():
        base = times.get((suite, key, dtype, mode, "torch"))
        if provider == "tritonrnn" and base:
            series[(key[0], dtype, mode)][key[1]].append((key[2], speedup(base, t)))
    return {k: {b: sorted(pts) for b, pts in v.items()} for k, v in sorted(series.items())}


def _svg_speedup(series, title, path):
    """The speedup figure as SVG with the standard library only (an image without matplotlib):
    a panel per (cell, dtype, mode), log axes, a polyline per batch size, 20th-80th bars."""
    panels = list(series.items())
    width, height, cols = 320, 240, 2
    rows_n = (len(panels) + cols - 1) // cols
    colors = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{cols * width}" '
           f'height="{rows_n * height + 40}" font-family="sans-serif" font-size="10">',
           f'<text x="10" y="20" font-size="12">{title}</text>']
    for i, ((cell, dtype, mode), by_batch) in enumerate(panels):
        x0, y0 = (i % cols) * width + 45, (i // cols) * height + 50
        w, h = width - 70, height - 70
        pts = [p for s in by_batch.values() for p in s]
        hs = [hid for hid, _ in pts]
        ys = [v for _, sp in pts for v in sp if v > 0] + [1.0]
        lx = (math.log2(min(hs)), math.log2(max(hs)) + 1e-9)
        ly = (math.log10(min(ys)) - 0.05, math.log10(max(ys)) + 0.05)

        def xy(hid, v):
            return (x0 + w * (math.log2(hid) - lx[0]) / (lx[1] - lx[0] or 1),
                    y0 + h - h * (math.log10(v) - ly[0]) / (ly[1] - ly[0]))
        out.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" '
                   f'stroke="#888"/><text x="{x0}" y="{y0 - 5}">{cell}, {dtype}, {mode}</text>')
        one = xy(min(hs), 1.0)[1]
        out.append(f'<line x1="{x0}" y1="{one:.1f}" x2="{x0 + w}" y2="{one:.1f}" '
                   f'stroke="#1f77b4" stroke-dasharray="4"/>')
        for hid in sorted(set(hs)):
            x = xy(hid, 1.0)[0]
            out.append(f'<text x="{x:.1f}" y="{y0 + h + 12}" text-anchor="middle">{hid}</text>')
        for e in range(math.ceil(ly[0]), math.floor(ly[1]) + 1):
            y = xy(min(hs), 10.0 ** e)[1]
            out.append(f'<text x="{x0 - 4}" y="{y:.1f}" text-anchor="end">{10.0 ** e:g}x</text>')
        for j, (batch, series_pts) in enumerate(sorted(by_batch.items())):
            color = colors[j % len(colors)]
            line = " ".join("%.1f,%.1f" % xy(hid, sp[0]) for hid, sp in series_pts)
            out.append(f'<polyline points="{line}" fill="none" stroke="{color}"/>')
            for hid, (_, lo, hi) in series_pts:
                (x, ylo), (_, yhi) = xy(hid, lo), xy(hid, hi)
                out.append(f'<line x1="{x:.1f}" y1="{ylo:.1f}" x2="{x:.1f}" y2="{yhi:.1f}" '
                           f'stroke="{color}"/>')
            out.append(f'<text x="{x0 + w - 40}" y="{y0 + 12 + 11 * j}" fill="{color}">'
                       f'B={batch}</text>')
        out.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 25}" text-anchor="middle">hidden '
                   f'size H</text>')
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n")
    return Path(path)


def draw_speedup_vs_hidden(csv_path, path):
    """One figure of a GPU run: tritonrnn's speedup over torch.nn against H, a panel per cell,
    dtype and mode, a line per batch size. PNG with matplotlib; where matplotlib is missing,
    the same figure as SVG beside `path` (suffix .svg). Returns the path written."""
    rows = records.read(csv_path)
    series = _sweep_series(rows)
    if not series:
        raise ValueError(f"{csv_path}: no shape timed for both tritonrnn and torch")
    title = (f"tritonrnn speedup over torch.nn against H, {_device(rows)} "
             "(median; bars: 20th-80th percentile)")
    try:
        plt = _pyplot()
    except ImportError:
        return _svg_speedup(series, title, Path(path).with_suffix(".svg"))
    panels = list(series.items())
    cols = 2 if len(panels) > 1 else 1
    fig, axes = _grid(plt, (len(panels) + cols - 1) // cols, cols)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    colors = ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown")
    for ax, ((cell, dtype, mode), by_batch) in zip(axes.flat, panels):
        for j, (batch, pts) in enumerate(sorted(by_batch.items())):
            ys = [sp for _, sp in pts]
            ax.errorbar([hid for hid, _ in pts], [s for s, _, _ in ys],
                        yerr=[[max(0.0, s - lo) for s, lo, _ in ys],
                              [max(0.0, hi - s) for s, _, hi in ys]],
                        color=colors[j % len(colors)], marker="o", markersize=4, capsize=3,
                        label=f"B={batch}")
        ax.axhline(1.0, color="tab:blue", linewidth=0.8, linestyle="--")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"{cell}, {dtype}, {mode}", fontsize=9)
        ax.set_xlabel("hidden size H", fontsize=8)
        ax.set_ylabel("speedup over torch.nn", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(title.replace(", ", "\n", 1), fontsize=10)
    return _finish(fig, Path(path))


def draw(csv_path, out):
    """Read the CSV and write its figures into `out`; returns the paths written."""
    rows = records.read(csv_path)
    kinds = {r["run_kind"] for r in rows}
    if len(kinds) != 1:
        raise ValueError(f"{csv_path}: expected rows of one run kind, found {sorted(kinds)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if kinds == {records.GPU}:
        return plot_gpu(rows, out)
    return plot_cpu(rows, out)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Draw a benchmark CSV as PNGs.")
    parser.add_argument("csv", help="CSV written by python -m bench")
    parser.add_argument("--speedup-vs-hidden", default=None, metavar="PNG",
                        help="draw only the one figure of speedup against H (a line per batch "
                             "size) to this file (SVG beside it without matplotlib)")
    parser.add_argument("--out", default=None,
                        help="folder for the PNGs (default: plots/ for a GPU run, "
                             "plots/cpu-interpreter/ for a CPU run)")
    args = parser.parse_args(argv)
    if args.speedup_vs_hidden:
        print(f"wrote {draw_speedup_vs_hidden(args.csv, args.speedup_vs_hidden)}")
        return
    out = args.out
    if out is None:
        kinds = {r["run_kind"] for r in records.read(args.csv)}
        out = default_plot_dir(records.GPU in kinds)
    for path in draw(args.csv, out):
        print(f"wrote {path}")


ROOT = Path(__file__).resolve().parents[1]


def default_plot_dir(gpu):
    """GPU figures go in plots/ (committed); CPU interpreter figures in a git-ignored
    subfolder, so they are never committed as if they were speed."""
    return ROOT / "plots" if gpu else ROOT / "plots" / "cpu-interpreter"


if __name__ == "__main__":
    main()
