"""Parity smoke on a CUDA GPU: every regime, every cell, fp16/bf16/fp32, forward and backward,
against the float64 reference, in about a minute.

    python -m bench.parity_smoke --csv parity.csv          # on a GPU
    python -m bench.parity_smoke --dry-run [--sms 132]     # anywhere: the cases and plans

Regimes (what a launch runs as; kernels/recurrence.py decides, this only picks shapes):
- fused: one program holds all of W_hh (the first fused candidate at a small H);
- split: the hidden units split into slices, one program per slice (the first split
  candidate; its slices fit the GPU's SMs);
- split_multi: more slices than SMs, so each program walks several slices. Forced by telling
  the launcher the GPU has FAKE_SMS SMs (as tests/test_split_layout.py does): the launcher
  then picks its multi-slice plan, exactly as on a GPU with too few SMs.

Each case is a two-direction layer with h0 (and c0), variable lengths and TF32 off, compared
output by output and gradient by gradient with the float64 reference on the CPU holding the
same rounded numbers (tests/tolerances.py). Cases run in parallel worker processes (Triton
compiles on the host, so workers overlap their compiles); every case runs under a deadline:
a launch that does not finish in time (a program waiting for one that never runs) ends its
worker with a "timeout" row, and the cases left go on in a fresh worker. Rows are written to
the CSV as they come, so a killed run keeps what finished.
"""
import argparse
import csv
import json
import os
import queue
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from itertools import product
from pathlib import Path

REGIMES = ("fused", "split", "split_multi")
KINDS = ("lstm", "lstm_proj", "gru", "rnn_tanh", "rnn_relu")  # tests/common.py's names
DTYPES = ("fp16", "bf16", "fp32")
# Hidden sizes tried in order: the first with an unpruned plan of the regime is used (odd
# sizes, so every tile has masked lanes).
HIDDEN = {"fused": (29, 13, 5, 48), "split": (100,), "split_multi": (300,)}
FAKE_SMS = 2        # split_multi: slices of its multi-slice plan outnumber these
H200_SMS = 132      # what --dry-run lays the plans out for by default
T, B, I, D = 7, 5, 11, 2
LENGTHS = (3, 7, 1, 6, 7)
COLUMNS = ("regime", "kind", "dtype", "hidden", "proj", "plan", "programs_per_group", "slices",
           "status", "worst_output", "worst_grad", "seconds", "detail")


@dataclass(frozen=True)
class Case:
    regime: str
    kind: str
    dtype: str

    def label(self):
        return f"{self.regime}/{self.kind}/{self.dtype}"


def all_cases():
    return [Case(r, k, d) for r, k, d in product(REGIMES, KINDS, DTYPES)]


def _dims(case):
    """(cell code, hidden, projection or 0, the first candidate plan of the regime or None)."""
    from tests.common import MODE, proj_for
    from tritonrnn.kernels import config
    from tritonrnn.kernels.cells import CELL_CODES
    code = CELL_CODES[MODE[case.kind]]
    for hidden in HIDDEN[case.regime]:
        proj = proj_for(hidden) if case.kind == "lstm_proj" else 0
        chosen = next((p for p in config.candidates(code, hidden, proj or hidden,
                                                    _torch_dtype(case.dtype))
                       if p.split == (case.regime != "fused")), None)
        if chosen is not None:
            break
    return code, hidden, proj, chosen


def _torch_dtype(name):
    import torch
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[name]


def no_tf32():
    """fp32 is checked at fp32 tolerance: TF32 off for the recurrence and torch's matmuls."""
    import torch
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


class fake_sm_count:
    """Within: the launcher believes the GPU has `sms` SMs (None: leave it alone); its shared
    memory stays the real one (an H100's where there is no GPU)."""

    def __init__(self, sms):
        self.sms = sms

    def __enter__(self):
        from tritonrnn.kernels import config
        self.saved = real = config.device_limits
        if self.sms is not None:
            def limits(device):
                if device is not None and device.type == "cuda" and torch_cuda_available():
                    return (self.sms,) + real(device)[1:]
                return self.sms, config.SHARED_PER_BLOCK[9], 9
            config.device_limits = limits
        return self

    def __exit__(self, *exc):
        from tritonrnn.kernels import config
        config.device_limits = self.saved


def torch_cuda_available():
    import torch
    return torch.cuda.is_available()


def case_plan(case, sms):
    """(plan forced for the case, plan launched, programs per group, hidden slices) on a GPU
    with `sms` SMs (split_multi: FAKE_SMS whatever `sms` is). Asks the launcher's own layout
    (kernels/config.split_layout), so this is what a launch runs as. Raises when no plan of the
    regime exists or the layout is not the regime's."""
    import torch
    from tritonrnn.kernels import config
    no_tf32()
    code, hidden, proj, chosen = _dims(case)
    width, dtype = proj or hidden, _torch_dtype(case.dtype)
    if chosen is None:
        raise RuntimeError(f"{case.label()}: no unpruned {case.regime} plan at H in "
                           f"{HIDDEN[case.regime]}")
    if not chosen.split:
        return chosen, chosen, None, None
    with fake_sm_count(FAKE_SMS if case.regime == "split_multi" else sms):
        layout = config.split_layout(chosen, code, hidden, width, dtype,
                                     config.device_limits(torch.device("cuda")))
    launched, progs, slices = layout.plan, layout.progs, layout.n_slices
    multi = progs < slices
    if multi != (case.regime == "split_multi"):
        raise RuntimeError(f"{case.label()}: laid out as {progs} programs for {slices} slices")
    return chosen, launched, progs, slices


def plan_text(plan):
    return (f"{'split' if plan.split else 'fused'} b{plan.block_b} n{plan.block_h} "
            f"k{plan.block_k} w{plan.num_warps} s{plan.num_stages}")


def run_case(case, sms, device="cuda"):
    """One case on `device` (the GPU; "cpu" rehearses it under the interpreter): a result row
    (dict of COLUMNS)."""
    import torch
    from tests.common import MODE, make_problem, run_layer
    from tests.tolerances import worst_ratio
    from tritonrnn import functional, reference
    from tritonrnn.kernels import config, testing
    code, hidden, proj, _ = _dims(case)
    chosen, launched, progs, slices = case_plan(case, sms)
    row = dict(regime=case.regime, kind=case.kind, dtype=case.dtype, hidden=hidden, proj=proj,
               plan=plan_text(launched), programs_per_group=progs or "", slices=slices or "")
    start = time.time()
    dtype = _torch_dtype(case.dtype)
    torch.manual_seed(zlib.crc32(case.label().encode()))  # each case its own fixed numbers
    prob = make_problem(MODE[case.kind], T=T, B=B, I=I, H=hidden, P=proj, D=D, h0=True,
                        lengths=LENGTHS).rounded(dtype)
    with config.force_plan(chosen), fake_sm_count(FAKE_SMS if case.regime == "split_multi"
                                                  else None), \
            testing.count_launches() as launched:
        outs, grads = run_layer(functional.recurrent_layer, prob, dtype, device=device)
        if device == "cuda":
            torch.cuda.synchronize()
    ran = sorted(launched)
    expected_kernels = ["fused_backward", "fused_forward"] if case.regime == "fused" else \
        ["split_backward", "split_forward"]
    ref_outs, ref_grads = run_layer(reference.recurrent_layer, prob, torch.float64)
    worst_out = max(worst_ratio(outs[k], ref_outs[k], dtype) for k in outs
                    if outs[k] is not None)
    # relu' is discontinuous: low-precision rounding flips it for some elements (as in
    # tests/test_gpu.py), so those gradients are not compared.
    compare_grads = not (case.kind == "rnn_relu" and case.dtype != "fp32")
    worst_grad = max(worst_ratio(grads[k], ref_grads[k], dtype) for k in grads) \
        if compare_grads else None
    ok = worst_out <= 1 and (worst_grad is None or worst_grad <= 1) and ran == expected_kernels
    detail = "" if ran == expected_kernels else f"kernels launched: {ran}"
    if worst_grad is None:
        detail = "gradients not compared (relu' flips under low-precision rounding)"
    row.update(status="ok" if ok else "FAIL", worst_output=f"{worst_out:.3g}",
               worst_grad="" if worst_grad is None else f"{worst_grad:.3g}",
               seconds=f"{time.time() - start:.1f}", detail=detail)
    return row


# -- the worker: runs given cases, one JSON line per event on stdout ----------------------------

def worker(indices, deadline_s, device):
    import torch
    no_tf32()
    sms = torch.cuda.get_device_properties(0).multi_processor_count if device == "cuda" \
        else H200_SMS
    cases = all_cases()

    def emit(kind, index, **fields):
        print(json.dumps(dict(event=kind, index=index, **fields)), flush=True)

    for index in indices:
        case = cases[index]
        emit("start", index)

        def timed_out(index=index, case=case):
            emit("row", index, row=dict(regime=case.regime, kind=case.kind, dtype=case.dtype,
                                        status="timeout",
                                        detail=f"not finished after {deadline_s:.0f} s "
                                               "(compile + launches + reference)"))
            os._exit(124)  # a hung kernel cannot be interrupted: leave, the GPU context goes

        watchdog = threading.Timer(deadline_s, timed_out)
        watchdog.daemon = True
        watchdog.start()
        try:
            row = run_case(case, sms, device)
        except Exception as err:  # noqa: BLE001 - a failing case is a finding; go on
            row = dict(regime=case.regime, kind=case.kind, dtype=case.dtype, status="error",
                       detail=f"{type(err).__name__}: {err}".splitlines()[0][:300])
        finally:
            watchdog.cancel()
        emit("row", index, row=row)


# -- the parent: spreads cases over workers, writes rows as they come ---------------------------

def _drive(indices, deadline_s, device, rows, env):
    """Run `indices` in a worker; on a worker's death, record the case it was on and go on
    with the rest in a new one."""
    pending = list(indices)
    while pending:
        cmd = [sys.executable, "-m", "bench.parity_smoke", "--worker",
               ",".join(map(str, pending)), "--deadline", str(deadline_s), "--device", device]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)  # our cwd
        current, progressed = None, False
        for line in proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue  # stray output of a library
            if msg["event"] == "start":
                current = msg["index"]
            else:
                rows.put(msg["row"])
                pending.remove(msg["index"])
                current, progressed = None, True
        try:
            rc = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:  # a process stuck on a hung GPU context
            proc.kill()
            rc = proc.wait()
        if current is not None:  # died inside a case without a row
            case = all_cases()[current]
            rows.put(dict(regime=case.regime, kind=case.kind, dtype=case.dtype, status="died",
                          detail=f"worker exit status {rc}"))
            pending.remove(current)
            progressed = True
        if pending and not progressed:  # died before its first case: do not loop forever
            for index in pending:
                case = all_cases()[index]
                rows.put(dict(regime=case.regime, kind=case.kind, dtype=case.dtype,
                              status="died", detail=f"worker exit status {rc} before start"))
            pending = []


def run(csv_path, workers, deadline_s, selected=None, device="cuda"):
    """The cases (indices into all_cases(), all by default), `workers` processes at a time;
    returns the rows (also in `csv_path`)."""
    selected = list(range(len(all_cases()))) if selected is None else list(selected)
    n = len(selected)
    chunks = [selected[w::workers] for w in range(workers)]
    env = dict(os.environ)
    if device == "cuda":
        env.pop("TRITON_INTERPRET", None)
    else:
        env["TRITON_INTERPRET"] = "1"
    rows, done = queue.Queue(), []
    threads = [threading.Thread(target=_drive, args=(c, deadline_s, device, rows, env),
                                daemon=True) for c in chunks if c]
    for t in threads:
        t.start()
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        f.flush()
        while len(done) < n:
            try:
                row = rows.get(timeout=1.0)
            except queue.Empty:
                if not any(t.is_alive() for t in threads) and rows.empty():
                    break
                continue
            done.append(row)
            writer.writerow({k: row.get(k, "") for k in COLUMNS})
            f.flush()
            print(f"  [{len(done):>2}/{n}] {row['regime']:11} {row['kind']:9} {row['dtype']:4} "
                  f"{row['status']:7} out {row.get('worst_output', '')!s:>7} grad "
                  f"{row.get('worst_grad', '')!s:>7}  {row.get('detail', '')}", flush=True)
    return done


def dry_run(sms):
    """The cases and what each would launch on a GPU with `sms` SMs; no GPU needed."""
    rows = []
    for case in all_cases():
        code, hidden, proj, _ = _dims(case)
        try:
            chosen, launched, progs, slices = case_plan(case, sms)
            layout = (f"{progs} programs/group, {slices} slices" if progs else
                      "1 program per batch tile and direction")
            rows.append((case, hidden, proj, plan_text(launched), layout))
        except RuntimeError as err:
            rows.append((case, hidden, proj, "NONE", str(err)))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", type=Path, help="where the rows go (GPU run)")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    p.add_argument("--deadline", type=float, default=60.0,
                   help="seconds one case may take, compile included (default 60)")
    p.add_argument("--dry-run", action="store_true", help="list the cases and plans; no GPU")
    p.add_argument("--sms", type=int, default=H200_SMS,
                   help=f"dry run: SM count to lay the plans out for (default {H200_SMS}, H200)")
    p.add_argument("--cases", default=None,
                   help="comma-separated labels such as split_multi/gru/bf16 (default: all)")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                   help="cpu: rehearse under Triton's interpreter (slow; a few cases)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is not None:
        worker([int(i) for i in args.worker.split(",") if i], args.deadline, args.device)
        return 0
    if args.dry_run:
        rows = dry_run(args.sms)
        print(f"parity smoke: {len(rows)} cases (T={T} B={B} I={I}, {D} directions, h0/c0, "
              f"lengths {LENGTHS}), plans as laid out on {args.sms} SMs "
              f"(split_multi on {FAKE_SMS}):")
        for case, hidden, proj, plan, layout in rows:
            print(f"  {case.regime:11} {case.kind:9} {case.dtype:4} H={hidden:<3} "
                  f"P={proj:<3} {plan:28} {layout}")
        missing = [r for r in rows if r[3] == "NONE"]
        return 1 if missing else 0
    if args.csv is None:
        p.error("--csv is required for a GPU run")
    import torch
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("no CUDA device: use --dry-run to see the plan, or --device cpu")
    labels = [c.label() for c in all_cases()]
    wanted = args.cases.split(",") if args.cases else labels
    unknown = sorted(set(wanted) - set(labels))
    if unknown:
        p.error(f"unknown cases {unknown}")
    selected = [labels.index(w) for w in wanted]
    start = time.time()
    rows = run(args.csv, args.workers, args.deadline, selected, args.device)
    bad = [r for r in rows if r["status"] != "ok"]
    print(f"parity smoke: {len(rows)}/{len(selected)} cases, {len(bad)} not ok, "
          f"{time.time() - start:.0f} s")
    return 1 if bad or len(rows) < len(selected) else 0


if __name__ == "__main__":
    sys.exit(main())
