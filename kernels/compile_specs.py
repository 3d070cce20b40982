"""What each kernel form compiles to: the jit function, its constexprs and its signature.

Used to compile kernels ahead of time with no GPU (bench/compile_report.py). Each form is
compiled with the heaviest flags it can run with (training, variable lengths, initial states,
every optional gradient), which bounds the registers and shared memory of its lighter
variants. Keep in step with the launchers in recurrence.py.
"""
import triton.language as tl

from .cells import CELL_CODES, GATES, SAVED
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
_PTR = {"fp32": "fp32", "tf32": "fp32", "fp16": "fp16", "bf16": "bf16", "fp64": "fp64"}
_INT_POINTERS = {"len_ptr", "bar_ptr"}
_ACC_POINTERS = {"ring_ptr", "c_ptr", "dc_ptr"}


def kernel_forms(split, proj):
    """Kernel forms a plan of this regime launches (`proj`: LSTM with projection)."""
    if not split:
        return ("fused_forward", "fused_backward")
    return MAIN_FORMS[2:] + MULTI_SLICE_FORMS


def is_multi_slice(form):
    return form in MULTI_SLICE_FORMS


def launch_options(form, config):
    """Compile options the launchers pass with `form` under a Plan.as_dict() `config`."""
    options = dict(num_warps=config["num_warps"], num_stages=config["num_stages"])
    if form.startswith("split"):
        options["maxnreg"] = split_maxnreg(config["num_warps"])
    return options


def compile_spec(form, cell, dtype, config):
    """(jit function, constexprs) of `form` for `cell` ("LSTM_PROJ" = LSTM with projection),
    `dtype` ("fp32", "tf32", "fp16", "bf16", "fp64") and a Plan.as_dict() `config`."""
    proj = cell == "LSTM_PROJ"
    code = CELL_CODES["LSTM" if proj else cell]
    acc = tl.float64 if dtype == "fp64" else tl.float32
    common = dict(CELL=code, G=GATES[code], S=SAVED[code], PROJ=proj, VARLEN=True,
                  BLOCK_B=config["block_b"], DOT_DTYPE=_TL[dtype], ACC_DTYPE=acc,
                  PRECISION="tf32" if dtype == "tf32" else "ieee")
    has_bhn = cell == "GRU"
    if form == "fused_forward":
        return fused_forward_kernel, dict(
            common, HAS_H0=True, HAS_C0=True, HAS_BHN=has_bhn, TRAINING=True,
            BLOCK_H=config["block_h"], BLOCK_K=config["block_k"])
    if form == "fused_backward":
        return fused_backward_kernel, dict(
            common, HAS_DY=True, HAS_DHN=True, HAS_DCN=True, HAS_H0=True, HAS_C0=True,
            BLOCK_H=config["block_h"], BLOCK_K=config["block_k"])
    tiles = dict(BLOCK_N=config["block_h"], BLOCK_KC=config["block_k"])
    multi = is_multi_slice(form)
    if form.startswith("split_forward"):
        return split_forward_kernel, dict(
            common, **tiles, HAS_BHN=has_bhn, TRAINING=True, MULTI=multi)
    if form.startswith("split_backward"):
        return split_backward_kernel, dict(
            common, **tiles, HAS_DY=True, HAS_H0=True, HAS_C0=True, MULTI=multi)
    raise ValueError(f"unknown kernel form {form!r}")


def signature(fn, constexprs, dtype):
    """Triton signature for ahead-of-time compilation: element pointers in `dtype`, the
    split regime's carried state in fp32 (fp64 for fp64), lengths and barriers int32."""
    sig = {}
    for name in fn.arg_names:
        if name in constexprs:
            sig[name] = "constexpr"
        elif name in _INT_POINTERS:
            sig[name] = "*i32"
        elif name in _ACC_POINTERS:
            sig[name] = "*fp64" if dtype == "fp64" else "*fp32"
        elif name.endswith("_ptr"):
            sig[name] = "*" + _PTR[dtype]
        else:
            sig[name] = "i32"
    return sig
