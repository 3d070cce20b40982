"""Autotuning run: time every candidate launch configuration on this GPU and write the
fastest per cell, dtype, hidden size and batch bucket into the tuning table.

    python -m bench.tune                        # default sweep, into the user table
    python -m bench.tune --cells LSTM --dtypes fp16 --hidden 768 --batch 16
    python -m bench.tune --ship                 # into the table shipped with the package
    python -m bench.tune --dry-run              # no GPU needed: show candidates and pruning

Candidates come from tritonrnn.kernels.config.candidates, which already leaves out the
configurations the compile report found spilling or over the shared-memory limit
(kernels/pruned_configs.json); --dry-run lists both. Each candidate is timed as one
training step of the recurrence alone (forward with saved activations, then backward), the
way a layer runs it, with the benchmark's CUDA-event timer (bench/timing.py: warm-up, L2
cleared before each sample); the median decides.
Without a CUDA GPU this exits with status 2 unless --dry-run is given.
"""
import argparse
import datetime
import statistics
import sys

import torch

from bench.timing import CudaEventTimer
from tritonrnn import tuning
from tritonrnn.kernels import backward, cells, config, dtypes, forward

DEFAULT_CELLS = ("LSTM", "GRU", "RNN_TANH")
DEFAULT_DTYPES = ("fp16", "bf16", "tf32", "fp32")
DEFAULT_HIDDEN = (64, 128, 256, 512, 768, 1024, 2048)
DEFAULT_BATCH = (1, 8, 16, 32, 64, 128, 256)


def all_plans(cell, hidden, width, dtype):
    """Every plan of the search space with whether it is pruned, for the dry run's listing."""
    kept = config.candidates(cell, hidden, width, dtype)
    return [(p, p not in kept)
            for p in config.candidates(cell, hidden, width, dtype, include_pruned=True)]


def training_step(cell, hidden, width, dtype, batch, seq, device):
    """A closure running forward (training) + backward of one recurrence on fresh inputs."""
    G = cells.lookup(cell).gates
    scale = hidden ** -0.5
    xp = torch.randn(seq, batch, 1, G, hidden, device=device, dtype=dtype)
    whh = (torch.randn(1, G * hidden, width, device=device) * scale).to(dtype)
    whr = (torch.randn(1, width, hidden, device=device) * scale).to(dtype) if width != hidden else None
    bhn = torch.zeros(1, hidden, device=device, dtype=dtype) if cell == "GRU" else None
    dy = torch.randn(seq, batch, 1, width, device=device, dtype=dtype)

    def step():
        y, h_n, c_n, act, cs = forward(xp, whh, bhn, whr, None, None, None, cell, True)
        backward(dy, None, None, act, cs, y, None, None, None, whh, whr, cell)
    return step


def pick(plans, measure):
    """(best plan, its median ms, {plan: median}) over `plans`; measure(plan) -> list of ms.
    A plan whose launch fails (e.g. out of resources on this GPU) is skipped."""
    medians = {}
    for plan in plans:
        try:
            medians[plan] = statistics.median(measure(plan))
        except Exception as exc:  # noqa: BLE001 - one bad candidate must not end the run
            print(f"    {plan}: failed ({type(exc).__name__}: {str(exc)[:80]})", flush=True)
    if not medians:
        return None, None, medians
    best = min(medians, key=lambda p: (medians[p], plans.index(p)))
    return best, medians[best], medians


def tune(cell_names, dtype_names, hiddens, batches, seq, device_name, measure_factory,
         progress=print):
    """Tuning-table entries for every (cell, dtype, hidden, batch bucket).

    measure_factory(cell, hidden, width, dtype, batch) -> measure(plan) -> list of ms; the
    tests inject a fake one, the command line times on the GPU."""
    entries = []
    for cell in cell_names:
        code = cells.lookup(cell).code
        for dname in dtype_names:
            dtype = dtypes.torch_dtype(dname)
            for hidden in hiddens:
                with dtypes.tf32_for(dname):
                    plans = config.candidates(code, hidden, hidden, dtype)
                for batch in batches:
                    measure = measure_factory(cell, hidden, hidden, dtype, batch)
                    with dtypes.tf32_for(dname):  # fp32 and TF32 time different kernels
                        best, ms, medians = pick(plans, measure)
                    progress(f"  {cell:8} {dname} H={hidden:<5} B={batch:<4} "
                             f"{len(medians)}/{len(plans)} timed -> "
                             f"{best.as_dict() if best else 'none'} {ms or float('nan'):.3f} ms")
                    if best is None:
                        continue
                    entries.append(dict(
                        device=device_name, cell=cell, proj=False, dtype=dname, hidden=hidden,
                        batch_bucket=tuning.batch_bucket(batch), config=best.as_dict(),
                        ms=round(ms, 4), seq=seq,
                        tuned_at=datetime.datetime.now(datetime.timezone.utc)
                        .strftime("%Y-%m-%dT%H:%M:%SZ")))
    return entries


def _gpu_measure_factory(seq, device):
    # The benchmark's timer (bench/timing.py): CUDA events around each call after warm-up,
    # L2 cleared before each sample; a fixed 10 samples per plan.
    timer = CudaEventTimer(warmup=3, min_reps=10, max_reps=10)

    def factory(cell, hidden, width, dtype, batch):
        step = training_step(cell, hidden, width, dtype, batch, seq, device)

        def measure(plan):
            with config.force_plan(plan):
                if config.launch(cells.lookup(cell).code, hidden, width, dtype, batch,
                                 device).plan != plan:
                    # More hidden slices than SMs: the launcher would run
                    # config.multi_slice_plan instead, so the time would not be this plan's.
                    raise ValueError("more hidden slices than SMs")
                return timer(lambda _: step(), [None])
        return measure
    return factory


def _ints(text):
    return tuple(int(v) for v in text.split(","))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default=",".join(DEFAULT_CELLS))
    parser.add_argument("--dtypes", default=",".join(DEFAULT_DTYPES),
                        help="fp32, tf32, fp16, bf16")
    parser.add_argument("--hidden", default=",".join(map(str, DEFAULT_HIDDEN)))
    parser.add_argument("--batch", default=",".join(map(str, DEFAULT_BATCH)),
                        help="batch sizes; each lands in its bucket "
                             f"{tuning.BATCH_BUCKETS}")
    parser.add_argument("--seq", type=int, default=128, help="sequence length timed")
    parser.add_argument("--out", default=None,
                        help="table to write (default: the user table, "
                             f"{tuning.user_table_path()})")
    parser.add_argument("--ship", action="store_true",
                        help="write into the table shipped with the package")
    parser.add_argument("--dry-run", action="store_true",
                        help="no timing: list each shape's candidates and the pruned ones")
    args = parser.parse_args(argv)
    cell_names, dtype_names = args.cells.split(","), args.dtypes.split(",")
    hiddens, batches = _ints(args.hidden), _ints(args.batch)

    if args.dry_run:
        for cell in cell_names:
            for dname in dtype_names:
                for hidden in hiddens:
                    with dtypes.tf32_for(dname):
                        plans = all_plans(cells.lookup(cell).code, hidden, hidden,
                                          dtypes.torch_dtype(dname))
                    kept = sum(not pruned for _, pruned in plans)
                    print(f"{cell:8} {dname} H={hidden}: {kept} candidates, "
                          f"{len(plans) - kept} pruned")
                    for plan, pruned in plans:
                        print(f"    {'PRUNED ' if pruned else '       '}{plan.as_dict()}")
        return 0
    if not torch.cuda.is_available():
        print("bench.tune: no CUDA GPU here, so there is nothing to time. "
              "Use --dry-run to see the candidate set.", file=sys.stderr)
        return 2

    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    print(f"tuning on {name}, T={args.seq}", flush=True)
    entries = tune(cell_names, dtype_names, hiddens, batches, args.seq, name,
                   _gpu_measure_factory(args.seq, device),
                   progress=lambda line: print(line, flush=True))
    path = tuning.SHIPPED_TABLE if args.ship else (args.out or tuning.user_table_path())
    tuning.write_entries(path, entries)
    print(f"wrote {len(entries)} entries to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
