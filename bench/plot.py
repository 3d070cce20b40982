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
    parser.add_argument("--out", default=None,
                        help="folder for the PNGs (default: plots/ for a GPU run, "
                             "plots/cpu-interpreter/ for a CPU run)")
    args = parser.parse_args(argv)
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
