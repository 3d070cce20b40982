"""What each kernel form compiles to: `kernel_call` gives the jit function, every argument
(constexprs and example values) and the launch options in one call.

Used to compile kernels ahead of time with no GPU (bench/compile_report.py), which derives
the signature and the run-time specialization from the example values exactly as the JIT
does (bench/jit_specialization.py). Each form is compiled with the heaviest flags it can run
with (training, variable lengths, initial states, every optional gradient), which bounds the
registers and shared memory of its lighter variants. Keep in step with the launchers in
recurrence.py (tests/test_jit_specialization.py holds the two together).
"""
from dataclasses import dataclass

import triton.language as tl

from .cells import CELL_CODES, GATES, LSTM, SAVED
from .fused import fused_backward_kernel, fused_forward_kernel
from .split import split_backward_kernel, split_forward_kernel, split_maxnreg

# Every form runs a whole sequence in one launch. The main forms are what ordinary sizes
# launch; the multi-slice forms (MULTI=True: a program walks several hidden slices, keeping
# c in global memory) run when a split recurrence has more slices than the GPU has SMs.
MAIN_FORMS = ("fused_forward", "fused_backward", "split_forward", "split_backward")
MULTI_SLICE_FORMS = ("split_forward_multi", "split_backward_multi")
KERNEL_FORMS = MAIN_FORMS + MULTI_SLICE_FORMS

_TL = {"fp32": tl.float32, "tf32": tl.float32, "fp16": tl.float16, "bf16": tl.bfloat16,
       "fp64": tl.float64}
_INT_POINTERS = {"len_ptr", "bar_ptr"}
_ACC_POINTERS = {"ring_ptr"}
_STATE_POINTERS = {"c_ptr", "dc_ptr"}  # LSTM's carried c (dc); other cells get a dummy


def kernel_forms(split, proj):
    """Kernel forms a plan of this regime launches (`proj`: LSTM with projection)."""
    if not split:
        return ("fused_forward", "fused_backward")
    return MAIN_FORMS[2:] + MULTI_SLICE_FORMS


def is_multi_slice(form):
    return form in MULTI_SLICE_FORMS


def _launch_options(form, config):
    """Compile options the launchers pass with `form` under a Plan.as_dict() `config`."""
    options = dict(num_warps=config["num_warps"], num_stages=config["num_stages"])
    if form.startswith("split"):
        options["maxnreg"] = split_maxnreg(config["num_warps"])
    return options


def _constexprs(form, cell, dtype, config):
    """(jit function, constexprs) of `form`: the heaviest flags it runs with."""
    proj = cell == "LSTM_PROJ"
    code = CELL_CODES["LSTM" if proj else cell]
    acc = tl.float64 if dtype == "fp64" else tl.float32
    common = dict(CELL=code, G=GATES[code], S=SAVED[code], PROJ=proj, VARLEN=True,
                  BLOCK_B=config["block_b"], DOT_DTYPE=_TL[dtype], ACC_DTYPE=acc,
                  PRECISION="tf32" if dtype == "tf32" else "ieee")
    has_bhn = cell == "GRU"
    lstm = code == LSTM  # only LSTM has c: the launchers pass c0, dc_n for it alone
    if form == "fused_forward":
        return fused_forward_kernel, dict(
            common, HAS_H0=True, HAS_C0=lstm, HAS_BHN=has_bhn, TRAINING=True,
            BLOCK_H=config["block_h"], BLOCK_K=config["block_k"])
    if form == "fused_backward":
        return fused_backward_kernel, dict(
            common, HAS_DY=True, HAS_DHN=True, HAS_DCN=lstm, HAS_H0=True, HAS_C0=lstm,
            BLOCK_H=config["block_h"], BLOCK_K=config["block_k"])
    tiles = dict(BLOCK_N=config["block_h"], BLOCK_KC=config["block_k"])
    multi = is_multi_slice(form)
    if form.startswith("split_forward"):
        return split_forward_kernel, dict(
            common, **tiles, HAS_BHN=has_bhn, TRAINING=True, MULTI=multi)
    if form.startswith("split_backward"):
        return split_backward_kernel, dict(
            common, **tiles, HAS_DY=True, HAS_H0=True, HAS_C0=lstm, MULTI=multi)
    raise ValueError(f"unknown kernel form {form!r}")


@dataclass(frozen=True)
class KernelCall:
    """One kernel launch as the launcher would make it: the jit function, every parameter by
    name (constexprs, and example tensors and integers standing for the real ones: the JIT
    specializes on their dtypes, 16-byte alignment and divisibility by 16) and the launch
    options (num_warps, num_stages, maxnreg)."""
    fn: object
    args: dict
    options: dict


def kernel_call(form, cell, dtype, config, hidden, width, batch=16, directions=1,
                programs=None, steps=1024):
    """The launch of `form` for `cell` ("LSTM_PROJ" = LSTM with projection), `dtype` ("fp32",
    "tf32", "fp16", "bf16", "fp64"), a Plan.as_dict() `config`, H=`hidden`, K=`width`, with
    `programs` per group (split regime; default one per hidden slice). Example tensors are
    small and freshly allocated (so 16-byte aligned, as the launcher's are); int arguments
    carry the real sizes."""
    import torch
    fn, constexprs = _constexprs(form, cell, dtype, config)
    element = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16,
               "bf16": torch.bfloat16, "fp64": torch.float64}[dtype]
    acc = torch.float64 if dtype == "fp64" else torch.float32
    slices = -(-hidden // config["block_h"])
    sizes = dict(T=steps, B=batch, H=hidden, K=width, D=directions,
                 progs=programs or slices)
    args = {}
    for name in fn.arg_names:
        if name in constexprs:
            args[name] = constexprs[name]
        elif name in _INT_POINTERS:
            args[name] = torch.empty(16, dtype=torch.int32)
        elif name in _ACC_POINTERS or (name in _STATE_POINTERS and constexprs["CELL"] == LSTM):
            args[name] = torch.empty(16, dtype=acc)
        elif name.endswith("_ptr"):
            args[name] = torch.empty(16, dtype=element)
        else:
            args[name] = sizes[name]
    return KernelCall(fn, args, _launch_options(form, config))
