"""Console summary of a GPU run: a table per case and the project's speed targets.

Works on rows as written (numbers) or as read back from the CSV (strings):
``python -m bench.summary CSV``.
"""
import argparse
from collections import defaultdict

from . import records
from .shapes import (ANCHOR_REFERENCE_MS, ANCHOR_TARGET_MS, DEEPBENCH_TARGET_MAX_BATCH,
                     LOOP_SPEEDUP_TARGET)

_ORDER = ("tritonrnn", "torch", "loop", "loop_compiled")


def _case_key(r):
    return (r["suite"], r["cell"], int(r["batch"]), int(r["hidden"]), int(r["seq"]),
            int(r["input_size"]), int(r["layers"]), int(r["bidirectional"]), r["dtype"],
            r["mode"])


def medians(rows):
    """{case key: {provider: median ms}} from the time rows."""
    out = defaultdict(dict)
    for r in rows:
        if r["metric"] == "time":
            out[_case_key(r)][r["provider"]] = float(r["value"])
    return out


def print_table(rows):
    per_case = medians(rows)
    providers = [p for p in _ORDER if any(p in v for v in per_case.values())]
    tokens = {_case_key(r): float(r["value"]) for r in rows
              if r["metric"] == "tokens_per_s" and r["provider"] == "tritonrnn"}
    print(f"\n{'suite':20}{'shape':34}{'dtype':>6}{'mode':>17}"
          + "".join(f"{p + ' ms':>17}" for p in providers)
          + f"{'vs torch.nn':>13}{'vs loop':>9}{'Mtok/s':>9}")
    for key, ms in per_case.items():
        suite, cell, B, H, T, _, L, bi, dtype, mode = key
        shape = f"{cell} B{B} H{H} T{T}" + (f" L{L}" if L > 1 else "") + (" bi" if bi else "")
        ours = ms.get("tritonrnn")
        vs = lambda p: f"{ms[p] / ours:.2f}x" if ours and p in ms else "-"  # noqa: E731
        mtok = f"{tokens[key] / 1e6:.1f}" if key in tokens else "-"
        print(f"{suite:20}{shape:34}{dtype:>6}{mode:>17}"
              + "".join(f"{ms[p]:>17.3f}" if p in ms else f"{'-':>17}" for p in providers)
              + f"{vs('torch'):>13}{vs('loop'):>9}{mtok:>9}")
    errors = [r for r in rows if r["metric"] == "error"]
    for r in errors:
        print(f"FAILED {r['provider']} {r['cell']} B{r['batch']} H{r['hidden']} T{r['seq']} "
              f"{r['dtype']} {r['mode']}: {r['value']}")


def targets(rows):
    """[(target, verdict, detail)]: verdict True (met), False (missed) or None (not measured)."""
    per_case = medians(rows)
    out = []
    for mode, limit in ANCHOR_TARGET_MS.items():
        got = {k[8]: v["tritonrnn"] for k, v in per_case.items()
               if k[0] == "anchor" and k[9] == mode and "tritonrnn" in v}
        refs = ", ".join(f"{name} {ms[mode]} ms" for name, ms in ANCHOR_REFERENCE_MS.items())
        if not got:
            out.append((f"anchor {mode} <= {limit} ms", None, "not measured"))
            continue
        detail = ", ".join(f"{d} {ms:.3f} ms" for d, ms in sorted(got.items()))
        out.append((f"anchor {mode} <= {limit} ms", all(v <= limit for v in got.values()),
                    f"{detail} (published: {refs})"))

    deep = [(k, v) for k, v in per_case.items()
            if k[0] == "deepbench-inference" and k[9] == "forward"
            and k[2] <= DEEPBENCH_TARGET_MAX_BATCH and "tritonrnn" in v and "torch" in v]
    slower = [k for k, v in deep if v["tritonrnn"] > v["torch"]]
    out.append((f"DeepBench inference, B <= {DEEPBENCH_TARGET_MAX_BATCH}: not slower than "
                "torch.nn", (not slower) if deep else None,
                f"{len(deep) - len(slower)}/{len(deep)} shapes" if deep else "not measured"))

    looped = [(k, v["loop"] / v["tritonrnn"]) for k, v in per_case.items()
              if "loop" in v and "tritonrnn" in v]
    short = [(k, s) for k, s in looped if s < LOOP_SPEEDUP_TARGET]
    worst = min((s for _, s in looped), default=None)
    out.append((f">= {LOOP_SPEEDUP_TARGET:g}x faster than the PyTorch loop everywhere",
                (not short) if looped else None,
                f"{len(looped) - len(short)}/{len(looped)} cases, worst {worst:.1f}x"
                if looped else "not measured"))
    return out


def print_targets(rows):
    devices = sorted({r["device"] for r in rows})
    print(f"\nTargets (set for an H100; this run: {', '.join(devices)})")
    for name, verdict, detail in targets(rows):
        mark = {True: "met", False: "MISSED", None: "n/a"}[verdict]
        print(f"  [{mark:>6}] {name}: {detail}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Summarise a GPU benchmark CSV.")
    parser.add_argument("csv")
    rows = [r for r in records.read(parser.parse_args(argv).csv) if r["run_kind"] == records.GPU]
    print_table(rows)
    print_targets(rows)


if __name__ == "__main__":
    main()
