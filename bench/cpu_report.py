"""What the benchmark can say without a GPU. CPU interpreter — not a speed measure.

- agreement: the largest absolute difference of tritonrnn (kernels under Triton's interpreter)
  and of torch.nn (PyTorch's native CPU kernels), each in the dtype under test, from torch.nn
  in float64 with the same weights, for outputs, final states and every gradient. torch.nn's
  own error is the yardstick for the dtype's rounding.
- traffic: kernel launches per sequence and global-memory bytes per timestep of the forward
  recurrence against the lower bound (bench.traffic, counted in the interpreter).
- compile report: registers, spills, shared memory and tensor-core use of the kernels
  compiled ahead of time for sm_90 (bench.compile_report, in a subprocess without the
  interpreter, since kernels defined under TRITON_INTERPRET=1 cannot be compiled).
- saved bytes per step: what training keeps for backward, per timestep, when bench.memory
  provides ``saved_bytes_per_step`` (issue 6); a column left out otherwise.

Must be imported with TRITON_INTERPRET=1 already set (bench/__main__.py does that).
Dimension legend: T time, B batch, I input, H hidden, L layers, D directions.
"""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import torch

import tritonrnn
from tritonrnn import runtime

from . import records
from .providers import DTYPES
from .shapes import Shape

_OURS = {"LSTM": tritonrnn.LSTM, "GRU": tritonrnn.GRU, "RNN_TANH": tritonrnn.RNN,
         "RNN_RELU": tritonrnn.RNN}
_TORCH = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "RNN_TANH": torch.nn.RNN,
          "RNN_RELU": torch.nn.RNN}

# Small enough for the interpreter (~10 ms per step per program), with sizes that are not
# powers of two so masking is exercised: two bidirectional layers, T=6, B=3, I=12, H=20.
AGREEMENT_SHAPE = dict(batch=3, hidden=20, seq=6, input_size=12, layers=2, bidirectional=True)
# Traffic: B=16 (one batch tile), hidden sizes on both sides of the fused/split boundary.
TRAFFIC_HIDDEN = (64, 128, 256)
TRAFFIC_BATCH = 16
REPO = Path(__file__).resolve().parents[1]
SPLIT_NOTE = ("split regime: one launch per sequence; the interpreter runs it with one program "
              "per batch tile walking every hidden slice (c kept in memory); W_hh is re-read "
              "every step, from L2 on a GPU")


def _kwargs(shape):
    kw = dict(num_layers=shape.layers, bidirectional=shape.bidirectional)
    if shape.cell.startswith("RNN"):
        kw["nonlinearity"] = "tanh" if shape.cell == "RNN_TANH" else "relu"
    return kw


def _run(layer, x, h0, c0, loss_w):
    """Forward and backward with a loss touching output and final states; returns the output,
    final states and gradients by name (all float64 for comparison)."""
    x = x.clone().requires_grad_(True)
    h0 = h0.clone().requires_grad_(True)
    state = h0
    if c0 is not None:
        c0 = c0.clone().requires_grad_(True)
        state = (h0, c0)
    y, s = layer(x, state)
    h_n, c_n = s if c0 is not None else (s, None)
    loss = (y * loss_w["y"]).sum() + (h_n * loss_w["h"]).sum()
    if c_n is not None:
        loss = loss + (c_n * loss_w["c"]).sum()
    loss.backward()
    out = {"output": y, "h_n": h_n, "c_n": c_n, "grad_input": x.grad, "grad_h0": h0.grad,
           "grad_c0": None if c0 is None else c0.grad,
           "grad_weights": [p.grad for p in layer.parameters()]}
    return {k: v for k, v in out.items() if v is not None}


def _max_err(a, b):
    if isinstance(a, list):
        return max(_max_err(p, q) for p, q in zip(a, b))
    return (a.double() - b.double()).abs().max().item()


def agreement(cells, dtypes, ctx, shape_kw=AGREEMENT_SHAPE):
    """Rows of max |error| from float64 torch.nn, for tritonrnn and torch.nn in each dtype."""
    rows = []
    for cell in cells:
        shape = Shape(cell, suite="agreement", **shape_kw)
        torch.manual_seed(0)
        exact = _TORCH[cell](shape.input_size, shape.hidden, **_kwargs(shape)).double()
        D = 2 if shape.bidirectional else 1
        x = torch.randn(shape.seq, shape.batch, shape.input_size, dtype=torch.float64)
        h0 = torch.randn(shape.layers * D, shape.batch, shape.hidden, dtype=torch.float64)
        c0 = torch.randn_like(h0) if cell == "LSTM" else None
        loss_w = {"y": torch.randn(shape.seq, shape.batch, D * shape.hidden,
                                   dtype=torch.float64),
                  "h": torch.randn_like(h0), "c": torch.randn_like(h0)}
        want = _run(exact, x, h0, c0, loss_w)
        for dtype in dtypes:
            dt = DTYPES[dtype]
            cast = {k: v.to(dt) for k, v in loss_w.items()}
            for provider, cls in (("tritonrnn", _OURS[cell]), ("torch", _TORCH[cell])):
                layer = cls(shape.input_size, shape.hidden, **_kwargs(shape)).to(dt)
                layer.load_state_dict(exact.state_dict())
                got = _run(layer, x.to(dt), h0.to(dt), None if c0 is None else c0.to(dt), cast)
                for quantity, value in want.items():
                    rows.append(records.row(
                        ctx, "max_abs_err_vs_float64", _max_err(got[quantity], value), "",
                        shape=shape, dtype=dtype, mode="forward+backward", provider=provider,
                        quantity=quantity))
    return rows


def traffic(cells, ctx, hiddens=TRAFFIC_HIDDEN, batch=TRAFFIC_BATCH, dtype="fp16"):
    """Rows of launches per sequence and bytes per step against the lower bound."""
    from tritonrnn.kernels import cells as cell_table, config

    from .traffic import per_step

    rows = []
    for cell in cells:
        for H in hiddens:
            shape = Shape(cell, batch=batch, hidden=H, seq=0, input_size=H, suite="traffic")
            split = config.plan(cell_table.lookup(cell).code, H, H, DTYPES[dtype]).split
            regime = "split" if split else "fused"
            for training in (False, True):
                T = (3, 6)
                with warnings.catch_warnings():
                    # Random fp16 weights can overflow in the interpreter's casts; only the
                    # bytes moved are read here, not the values.
                    warnings.simplefilter("ignore", RuntimeWarning)
                    (n1, n2), per, bound = per_step(cell, H, batch, training=training,
                                                    dtype=DTYPES[dtype], T=T)
                common = dict(shape=shape, dtype=dtype, provider="tritonrnn",
                              mode="training-forward" if training else "forward")
                rows += [
                    records.row(ctx, "launches_per_sequence", n1, "launches",
                                quantity=f"T={T[0]}", **common),
                    records.row(ctx, "launches_per_sequence", n2, "launches",
                                quantity=f"T={T[1]}", **common),
                    records.row(ctx, "bytes_per_step", per, "bytes", quantity=regime,
                                **common),
                    records.row(ctx, "bytes_per_step_lower_bound", bound, "bytes",
                                quantity=regime, **common),
                ]
    return rows


def saved_bytes(cells, ctx, hiddens=(64, 128), batch=TRAFFIC_BATCH, dtype="fp32"):
    """Rows of bytes saved for backward per timestep (one layer-direction, whole batch), for
    tritonrnn (kernels under the interpreter) and torch.nn (PyTorch's native CPU path), from
    bench.memory.saved_bytes_per_step. fp32: torch's CPU recurrent layers train in fp32."""
    from . import memory

    rows = []
    for cell in cells:
        mode = "RNN_TANH" if cell == "RNN" else cell
        for H in hiddens:
            shape = Shape(cell, batch=batch, hidden=H, seq=0, input_size=H, suite="memory")
            for impl, provider in (("tritonrnn", "tritonrnn"), ("torch.nn", "torch")):
                saved = memory.saved_bytes_per_step(impl, mode, H, H, batch,
                                                    dtype=DTYPES[dtype])
                rows.append(records.row(ctx, "saved_bytes_per_step", saved["per_step"],
                                        "bytes", shape=shape, dtype=dtype, provider=provider,
                                        mode="forward+backward"))
    return rows, None


COMPILE_METRICS = (("registers", "registers/thread"), ("spills_bytes", "bytes"),
                   ("shared_bytes", "bytes"), ("shared_limit", "bytes"),
                   ("tensor_cores", "bool"))


def compile_report(ctx, arch="sm_90", module="bench.compile_report", timeout=600):
    """Rows from ``python -m bench.compile_report --arch ARCH --quick --json PATH`` run in a
    subprocess without TRITON_INTERPRET; (rows, note) where note explains an absence.

    The JSON is a list of records with keys kernel, arch, dtype, config, hidden_size,
    registers, spills_bytes, shared_bytes, shared_limit, tensor_cores, compile_s."""
    if importlib.util.find_spec(module) is None:
        return [], f"compile report: {module} is not in this tree"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    # The subprocess imports from the same places as this process (this tree first).
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "compile.json"
        # The default plans of the three cells at a fused and a split size keep this to a
        # minute; `python -m bench.compile_report --full` covers every configuration.
        proc = subprocess.run([sys.executable, "-m", module, "--arch", arch, "--quick",
                               "--cells", "LSTM,GRU,RNN_TANH", "--hidden", "64,768",
                               "--json", str(path)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=timeout)
        if not path.exists():
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
            return [], "compile report failed:\n    " + "\n    ".join(tail)
        found = json.loads(path.read_text())
    # A failing record (spills, over a limit, no tensor cores) is a finding: keep its numbers
    # and say so; a record that did not compile has none.
    failing = [r for r in found if not r.get("ok", True)]
    note = None
    if proc.returncode != 0 or failing:
        from tritonrnn.kernels.pruning import problems
        note = (f"compile report: {len(failing)} of {len(found)} kernels fail its checks: "
                + "; ".join(f"{r['kernel']} {r.get('cell', '')} {r.get('dtype', '')} "
                            f"H={r.get('hidden_size', '')} ({', '.join(problems(r))})"
                            for r in failing[:6]))
    rows = []
    for rec in (r for r in found if not r.get("error")):
        config = rec.get("config", "")
        if isinstance(config, dict):
            config = " ".join(f"{k}={v}" for k, v in config.items())
        for key, unit in COMPILE_METRICS:
            rows.append(records.row(
                ctx, key, int(rec[key]), unit, suite=f"compile-report-{rec['arch']}",
                hidden=rec.get("hidden_size", ""), dtype=rec.get("dtype", ""),
                provider="tritonrnn", quantity=f"{rec['kernel']} {config}".strip()))
    return rows, note


def _worst_ratio(keyed, cell, dtype, quantities):
    """Our error over torch.nn's in the same dtype, for the quantity where it is largest."""
    ratios = [keyed[(cell, dtype, "tritonrnn", q)] / max(keyed[(cell, dtype, "torch", q)], 1e-30)
              for q in quantities if (cell, dtype, "torch", q) in keyed
              and (cell, dtype, "tritonrnn", q) in keyed]
    return f"{max(ratios):.1f}x" if ratios else "-"


def print_tables(rows, notes):
    """The labelled console report of the rows."""
    print(f"\n== {records.CPU_LABEL} ==")
    agree = [r for r in rows if r["metric"] == "max_abs_err_vs_float64"]
    if agree:
        a = agree[0]
        print("\nAgreement: max |error| from torch.nn in float64 with the same weights, for "
              "tritonrnn and torch.nn in the same dtype\n"
              f"(L={a['layers']}{' bidirectional' if a['bidirectional'] else ''}, "
              f"T={a['seq']} B={a['batch']} I={a['input_size']} H={a['hidden']})")
        quantities = list(dict.fromkeys(r["quantity"] for r in agree))
        print(f"{'cell':9}{'dtype':6}{'provider':10}" + "".join(f"{q:>13}" for q in quantities)
              + f"{'worst ours/torch':>18}")
        keyed = {(r["cell"], r["dtype"], r["provider"], r["quantity"]): r["value"] for r in agree}
        for cell, dtype, provider in dict.fromkeys((r["cell"], r["dtype"], r["provider"])
                                                   for r in agree):
            cells = [keyed.get((cell, dtype, provider, q)) for q in quantities]
            ratio = _worst_ratio(keyed, cell, dtype, quantities) if provider == "tritonrnn" else ""
            print(f"{cell:9}{dtype:6}{provider:10}"
                  + "".join(f"{v:>13.2e}" if v is not None else f"{'-':>13}" for v in cells)
                  + f"{ratio:>18}")
    moved = [r for r in rows if r["metric"] == "bytes_per_step"]
    if moved:
        print("\nTraffic of the forward recurrence (fp16, B=16): launches per sequence at T=3 "
              "and T=6, global-memory bytes per step against the lower bound")
        print(f"{'cell':9}{'H':>6}{'mode':>18}{'regime':>8}{'launches':>10}{'bytes/step':>12}"
              f"{'bound':>10}{'ratio':>7}")
        by = {(r["cell"], r["hidden"], r["mode"], r["metric"], r["quantity"]): r["value"]
              for r in rows if r["suite"] == "traffic"}
        for r in moved:
            k = (r["cell"], r["hidden"], r["mode"])
            bound = by[k + ("bytes_per_step_lower_bound", r["quantity"])]
            launches = f"{by[k + ('launches_per_sequence', 'T=3')]}/" \
                       f"{by[k + ('launches_per_sequence', 'T=6')]}"
            print(f"{r['cell']:9}{r['hidden']:>6}{r['mode']:>18}{r['quantity']:>8}"
                  f"{launches:>10}{r['value']:>12.0f}{bound:>10}{r['value'] / bound:>7.2f}")
        if any(r["quantity"] == "split" for r in moved):
            print(SPLIT_NOTE)
    saved = [r for r in rows if r["metric"] == "saved_bytes_per_step"]
    if saved:
        print(f"\nSaved for backward per timestep (fp32, B={TRAFFIC_BATCH}, one layer-direction; "
              "torch.nn = PyTorch's native CPU path)")
        print(f"{'cell':9}{'H':>6}{'tritonrnn':>12}{'torch.nn':>12}")
        pairs = {}
        for r in saved:
            pairs.setdefault((r["cell"], r["hidden"]), {})[r["provider"]] = r["value"]
        for (cell, H), v in pairs.items():
            print(f"{cell:9}{H:>6}{v.get('tritonrnn', float('nan')):>12.0f}"
                  f"{v.get('torch', float('nan')):>12.0f}")
    resources = [r for r in rows if r["suite"].startswith("compile-report")]
    if resources:
        print(f"\nCompiled for {resources[0]['suite'].split('-')[-1]} ahead of time "
              "(no GPU): per kernel")
        print(f"{'kernel and config':48}{'dtype':>6}{'H':>6}{'regs':>6}{'spills':>8}"
              f"{'shared':>9}{'limit':>9}{'tensor cores':>14}")
        by = {}
        for r in resources:
            by.setdefault((r["quantity"], r["dtype"], r["hidden"]), {})[r["metric"]] = r["value"]
        for (what, dtype, H), m in by.items():
            print(f"{what[:47]:48}{dtype:>6}{H:>6}{m['registers']:>6}{m['spills_bytes']:>8}"
                  f"{m['shared_bytes']:>9}{m['shared_limit']:>9}"
                  f"{'yes' if m['tensor_cores'] else 'no':>14}")
    for note in notes:
        print("\n" + note)


def run(cells, dtypes, with_compile=True, shape_kw=AGREEMENT_SHAPE, progress=print):
    """Every GPU-independent metric as rows, printed as labelled tables."""
    probe = torch.empty(1)
    if not runtime.triton_enabled(probe):
        raise RuntimeError("the CPU report needs TRITON_INTERPRET=1 set before triton is "
                           "imported (python -m bench sets it when there is no GPU)")
    ctx = records.context(records.CPU_INTERPRETER)
    rows, notes = [], []
    progress(f"{records.CPU_LABEL}: agreement with torch.nn float64 "
             f"({len(cells)} cells x {len(dtypes)} dtypes)")
    rows += agreement(cells, dtypes, ctx, shape_kw)
    progress(f"{records.CPU_LABEL}: launches and bytes per step")
    rows += traffic(cells, ctx)
    saved, note = saved_bytes(cells, ctx)
    rows += saved
    notes += [note] if note else []
    if with_compile:
        progress(f"{records.CPU_LABEL}: compile report for sm_90 (subprocess)")
        compiled, note = compile_report(ctx)
        rows += compiled
        notes += [note] if note else []
    print_tables(rows, notes)
    return rows
