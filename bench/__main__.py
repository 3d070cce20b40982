"""tritonrnn's benchmark: ``python -m bench`` (``--help`` lists the knobs).

On a CUDA GPU: times tritonrnn against torch.nn (cuDNN), a plain PyTorch time loop over the
torch.nn cells and that loop under torch.compile, for LSTM, GRU and RNN, inference forward and
training forward+backward, over a sweep around the anchor shape and DeepBench's RNN tables;
writes a long CSV (bench/results/gpu.csv), prints a table and the speed targets, and draws
plots/ (python -m bench.plot).

Without a GPU: runs the kernels under Triton's interpreter on small shapes and reports only
what does not depend on a GPU -- agreement with torch.nn, launches per sequence, bytes per step
against the lower bound, compiled resources for sm_90 -- labelled "CPU interpreter — not a
speed measure"; CSV and figures go to git-ignored paths. It times nothing.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import torch

from . import shapes

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
MODE_ALIASES = {"forward": "forward", "fwd": "forward", "inference": "forward",
                "forward+backward": "forward+backward", "fwd+bwd": "forward+backward",
                "training": "forward+backward", "train": "forward+backward"}


def _list(kind, allowed=None):
    def parse(text):
        items = [t.strip() for t in text.split(",") if t.strip()]
        if kind is int:
            return tuple(int(t) for t in items)
        if allowed is not None:
            bad = [t for t in items if t not in allowed]
            if bad:
                raise argparse.ArgumentTypeError(f"{bad}: choose from {', '.join(allowed)}")
        return tuple(items)
    return parse


def parse_args(argv=None):
    from .providers import PROVIDERS

    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Speed of tritonrnn against torch.nn (cuDNN), a PyTorch time loop and that "
                    "loop compiled; without a GPU, the GPU-independent metrics under Triton's "
                    "interpreter (never timed).")
    level = p.add_mutually_exclusive_group()
    level.add_argument("--quick", action="store_const", dest="level", const="quick",
                       help="GPU: the anchor and a three-point sweep of LSTM in fp16 (minutes). "
                            "Default: the sweep for every cell, the anchor and DeepBench's "
                            "inference table, in fp16 and bf16")
    level.add_argument("--full", action="store_const", dest="level", const="full",
                       help="GPU: also DeepBench's training table, and fp32")
    p.set_defaults(level="default")
    p.add_argument("--cells", type=_list(str, tuple(shapes.CELL_FAMILIES)),
                   default=tuple(shapes.CELL_FAMILIES),
                   help="comma-separated from LSTM,GRU,RNN (default: all)")
    p.add_argument("--dtypes", type=_list(str, shapes.DTYPES), default=None,
                   help="comma-separated from fp32,fp16,bf16 (default: fp16 with --quick, "
                        "fp16,bf16 by default, all three with --full; the CPU report checks "
                        "all three)")
    p.add_argument("--modes", type=_list(str, tuple(MODE_ALIASES)), default=shapes.MODES,
                   help="forward (inference), forward+backward (training) or both, "
                        "comma-separated (default: both)")
    p.add_argument("--providers", type=_list(str, PROVIDERS), default=PROVIDERS,
                   help="comma-separated from tritonrnn, torch (torch.nn: cuDNN), loop "
                        "(PyTorch time loop over torch.nn cells), loop_compiled (that loop "
                        "under torch.compile) (default: all four)")
    shape = p.add_argument_group(
        "shapes", "giving any of these replaces the default sweep with their product; a "
                  "dimension not given keeps the anchor's value (B=16, H=768, T=1024, one "
                  "unidirectional layer). Without a GPU they set the agreement check's shape.")
    shape.add_argument("--batch", type=_list(int), help="e.g. 1,16,256")
    shape.add_argument("--hidden", type=_list(int), help="e.g. 64,768,2048 (input size = H)")
    shape.add_argument("--seq", type=_list(int), help="e.g. 16,1024,4096")
    shape.add_argument("--layers", type=_list(int), help="e.g. 1,2")
    shape.add_argument("--bidirectional", choices=("no", "yes", "both"), default=None,
                       help="one direction, two, or both settings")
    timing = p.add_argument_group("timing (GPU)")
    timing.add_argument("--warmup", type=int, default=3,
                        help="untimed calls per measurement (default: 3)")
    timing.add_argument("--budget-ms", type=float, default=300.0,
                        help="time to spend on samples per measurement (default: 300)")
    timing.add_argument("--min-reps", type=int, default=5,
                        help="fewest samples, whatever the budget (default: 5)")
    timing.add_argument("--max-reps", type=int, default=100,
                        help="most samples (default: 100)")
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, default=None,
                     help="folder for the CSV (default bench/results/; gpu.csv or "
                          "cpu-interpreter.csv)")
    out.add_argument("--csv", type=Path, default=None,
                     help="write the GPU run's CSV to this file instead of OUT/gpu.csv")
    out.add_argument("--plots-dir", type=Path, default=None,
                     help="folder for the PNGs (default plots/ on GPU, "
                          "plots/cpu-interpreter/ on CPU)")
    out.add_argument("--no-plots", action="store_true", help="skip drawing")
    out.add_argument("--no-compile-report", action="store_true",
                     help="CPU: skip the sm_90 compile report subprocess")
    out.add_argument("--dry-run", action="store_true",
                     help="list the GPU run's cases and exit (any machine)")
    args = p.parse_args(argv)
    args.modes = tuple(dict.fromkeys(MODE_ALIASES[m] for m in args.modes))
    return args


def _bidirectional(choice):
    return {None: None, "no": (False,), "yes": (True,), "both": (False, True)}[choice]


def custom_shapes(args):
    """The --batch/--hidden/... product for each cell family, or None when none was given."""
    given = (args.batch, args.hidden, args.seq, args.layers, args.bidirectional)
    if all(g is None for g in given):
        return None
    return [s for f in args.cells for s in shapes.custom_grid(
        f, args.batch, args.hidden, args.seq, args.layers, _bidirectional(args.bidirectional))]


def gpu_plan(args):
    return shapes.plan(args.level, args.cells, args.dtypes, args.modes, custom_shapes(args))


class Progress:
    """One status line for a sweep: rewritten in place on a terminal, a line per step
    otherwise."""

    def __init__(self, total, stream=None):
        self.total, self.start = total, time.time()
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()

    def show(self, done, what):
        elapsed = time.time() - self.start
        eta = elapsed / done * (self.total - done) if done else 0.0
        line = f"[{done:>4}/{self.total}] {elapsed / 60:5.1f} min, ~{eta / 60:.0f} min left  {what}"
        if self.tty:
            self.stream.write("\r" + line[:150].ljust(150))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self):
        if self.tty:
            self.stream.write("\n")


def run_gpu(args, timer=None, device="cuda", device_name=None):
    """The GPU benchmark. ``timer``, ``device`` and ``device_name`` are seams for tests, which
    run this flow on CPU with a fake timer; a real run leaves them alone."""
    from . import records, summary
    from .measure import measure_cases
    from .timing import CudaEventTimer

    cases = gpu_plan(args)
    torch.backends.cudnn.benchmark = False  # torch.nn's default: what users get
    if timer is None:
        timer = CudaEventTimer(args.warmup, args.budget_ms, args.min_reps, args.max_reps)
    ctx = records.context(records.GPU, device_name)
    path = args.csv or (args.out or RESULTS) / "gpu.csv"
    writer = records.CsvWriter(path)
    print(f"GPU benchmark on {ctx['device']}: {len(cases)} cases x {len(args.providers)} "
          f"providers -> {path}")
    progress, rows = Progress(len(cases)), []
    try:
        def show(i, case):
            progress.show(i, f"{case.shape.label()} {case.dtype} {case.mode}")

        for new in measure_cases(cases, args.providers, timer, device, ctx, show):
            writer.write(new)
            rows += new
        progress.show(len(cases), "done")
    finally:
        progress.close()
        writer.close()
    summary.print_table(rows)
    summary.print_targets(rows)
    return path


def run_cpu(args):
    from . import cpu_report, records  # imports tritonrnn: the interpreter is on by now

    shape_kw = dict(cpu_report.AGREEMENT_SHAPE)
    for name, key in (("batch", "batch"), ("hidden", "hidden"), ("seq", "seq"),
                      ("layers", "layers")):
        values = getattr(args, name)
        if values:
            if len(values) > 1:
                print(f"CPU report: --{name} takes one value here; using {values[0]}")
            shape_kw[key] = values[0]
    if args.hidden:
        shape_kw["input_size"] = args.hidden[0]
    if args.bidirectional is not None:
        shape_kw["bidirectional"] = args.bidirectional != "no"
    if shape_kw["seq"] > 16 or shape_kw["hidden"] > 256:
        print(f"note: T={shape_kw['seq']} H={shape_kw['hidden']} is large for the interpreter "
              "(~10 ms per step per program); this may take a while")
    cells = [c for f in args.cells for c in shapes.CELL_FAMILIES[f]]
    print(f"No CUDA GPU: {records.CPU_LABEL}. Reporting the metrics that do not depend on a "
          "GPU; nothing is timed.")
    rows = cpu_report.run(cells, args.dtypes or shapes.DTYPES,
                          with_compile=not args.no_compile_report, shape_kw=shape_kw)
    path = (args.out or RESULTS) / "cpu-interpreter.csv"
    writer = records.CsvWriter(path)
    writer.write(rows)
    writer.close()
    return path


def draw(csv_path, gpu, plots_dir):
    from .plot import default_plot_dir, draw as draw_csv

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("plots skipped: matplotlib is not installed (pip install -e '.[bench]')")
        return
    for path in draw_csv(csv_path, plots_dir or default_plot_dir(gpu)):
        print(f"wrote {path}")


def main(argv=None):
    gpu = torch.cuda.is_available()
    if not gpu:
        # Must be set before triton or tritonrnn is imported: parse_args already imports
        # tritonrnn (bench/providers.py). Set after it, the CPU run refused to start.
        os.environ["TRITON_INTERPRET"] = "1"
    args = parse_args(argv)
    if args.dry_run:
        cases = gpu_plan(args)
        for c in cases:
            print(f"{c.shape.suite:20} {c.shape.label():45} {c.dtype:5} {c.mode}")
        print(f"{len(cases)} cases x {len(args.providers)} providers ({', '.join(args.providers)})")
        return
    if gpu and os.environ.get("TRITON_INTERPRET", "0") == "1":
        sys.exit("TRITON_INTERPRET=1 would run the kernels in the interpreter, not on the GPU: "
                 "unset it to benchmark")
    csv_path = run_gpu(args) if gpu else run_cpu(args)
    print(f"\nwrote {csv_path}")
    if not args.no_plots:
        draw(csv_path, gpu, args.plots_dir)


if __name__ == "__main__":
    main()
