"""What each kernel form compiles to: `kernel_call` gives the jit function, every argument
(constexprs and example values) and the launch options in one call.

Used to compile kernels ahead of time with no GPU (bench/compile_report.py), which derives
the signature and the run-time specialization from the example values exactly as the JIT
does (bench/jit_specialization.py). Each form is compiled with the heaviest flags it can run
with (training, variable lengths, initial states, every optional gradient), which bounds the
registers and shared memory of its lighter variants. Keep in step with the launchers in
recurrence.py (tests/test_jit_specialization.py holds the two together).
"""
import inspect
from dataclasses import dataclass

import triton.language as tl

from . import cells, dtypes
from .fused import fused_backward_kernel, fused_forward_kernel
from .split import split_backward_kernel, split_forward_kernel

# Every form runs a whole sequence in one launch. The main forms are what ordinary sizes
# launch; the multi-slice forms (MULTI=True: a program walks several hidden slices, keeping
# c in global memory) run when a split recurrence has more slices than the GPU has SMs.
FUSED_FORMS = ("fused_forward", "fused_backward")
SPLIT_MAIN_FORMS = ("split_forward", "split_backward")
MAIN_FORMS = FUSED_FORMS + SPLIT_MAIN_FORMS
MULTI_SLICE_FORMS = ("split_forward_multi", "split_backward_multi")
KERNEL_FORMS = MAIN_FORMS + MULTI_SLICE_FORMS

_INT_POINTERS = {"len_ptr", "sync_ptr"}
# The split kernels' carried state, partial products and exchanged dh: ACC_DTYPE buffers.
_ACC_POINTERS = {"c_ptr", "h_ptr", "parts_ptr", "dhx_ptr", "dc_ptr", "dh_ptr"}
_OPTIONS = ("num_warps", "num_stages", "maxnreg")


def kernel_forms(split, proj):
    """Kernel forms a plan of this regime launches (`proj`: LSTM with projection)."""
    if not split:
        return FUSED_FORMS
    return SPLIT_MAIN_FORMS + MULTI_SLICE_FORMS


def is_multi_slice(form):
    return form in MULTI_SLICE_FORMS


def split_layout_for(cell, dtype, config, hidden, width, arch, programs=None):
    """The SplitLayout the launcher runs a split plan with on sm_`arch` (resident chunks
    from that architecture's shared memory, lowered past pruned resident forms as
    config.split_layout does), with `programs` per group (default: one per hidden slice)."""
    from . import config as plans
    plan = plans.Plan(**config)
    programs = programs or -(-hidden // plan.block_h)
    with dtypes.tf32_for(dtype):
        return plans.resident_layout(plan, cells.lookup(cell).code, hidden, width,
                                     dtypes.torch_dtype(dtype), programs,
                                     plans.SHARED_PER_BLOCK[arch // 10], arch // 10)


def _constexprs(form, cell, dtype, config, hidden, width, arch, programs):
    """(jit function, constexprs, launch options) of `form`: the heaviest flags it runs with;
    the split forms' tiles and options from the launcher's own split_meta."""
    from .recurrence import fused_meta, split_meta
    kind = cells.lookup(cell)
    code = kind.code
    acc = tl.float64 if dtype == "fp64" else tl.float32
    common = dict(CELL=code, G=kind.gates, S=kind.saved, PROJ=kind.projects, VARLEN=True,
                  BLOCK_B=config["block_b"], DOT_DTYPE=dtypes.tl_dtype(dtype), ACC_DTYPE=acc,
                  PRECISION="tf32" if dtypes.DTYPES[dtype].tf32 else "ieee")
    has_bhn = kind.name == "GRU"
    lstm = kind.has_c  # only LSTM has c: the launchers pass c0, dc_n for it alone
    if form in FUSED_FORMS:
        from . import config as plans
        meta = fused_meta(plans.Plan(**config), code, hidden, width,
                          form == "fused_backward", common["PRECISION"] if dtype in
                          ("fp32", "tf32") else None)
        options = {k: meta.pop(k) for k in _OPTIONS if k in meta}
        if form == "fused_forward":
            return fused_forward_kernel, dict(
                common, **meta, HAS_H0=True, HAS_C0=lstm, HAS_BHN=has_bhn, TRAINING=True), options
        return fused_backward_kernel, dict(
            common, **meta, HAS_DY=True, HAS_DHN=True, HAS_DCN=lstm, HAS_H0=True, HAS_C0=lstm
        ), options
    backward = form.startswith("split_backward")
    if not backward and not form.startswith("split_forward"):
        raise ValueError(f"unknown kernel form {form!r}")
    layout = split_layout_for(cell, dtype, config, hidden, width, arch, programs)
    meta = split_meta(layout, code, hidden, width, dtypes.DTYPES[dtype].itemsize, backward)
    options = {k: meta.pop(k) for k in _OPTIONS}
    meta["MULTI"] = is_multi_slice(form)
    if backward:
        return split_backward_kernel, dict(
            common, **meta, HAS_DY=True, HAS_H0=True, HAS_C0=lstm), options
    return split_forward_kernel, dict(common, **meta, HAS_BHN=has_bhn, TRAINING=True), options


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
                programs=None, steps=1024, arch=90, measure=None):
    """The launch of `form` for `cell` ("LSTM_PROJ" = LSTM with projection), `dtype` ("fp32",
    "tf32", "fp16", "bf16", "fp64"), a Plan.as_dict() `config`, H=`hidden`, K=`width`, with
    `programs` per group (split regime; default one per hidden slice), on sm_`arch` (the
    split regime keeps what that architecture's shared memory holds). `measure`: constexprs
    a measurement launch sets over the shipped ones (split.py's ABLATE, PROFILE). Example
    tensors are small and freshly allocated (so 16-byte aligned, as the launcher's are); int
    arguments carry the real sizes."""
    import torch
    from . import config as plans
    fn, constexprs, options = _constexprs(form, cell, dtype, config, hidden, width, arch,
                                          programs)
    constexprs.update(measure or {})
    element = dtypes.torch_dtype(dtype)
    acc = torch.float64 if dtype == "fp64" else torch.float32
    slices = -(-hidden // config["block_h"])
    sizes = dict(T=steps, B=batch, H=hidden, K=width, D=directions,
                 progs=programs or slices, spin_limit=plans.SPIN_LIMIT)
    args = {}
    defaults = {name for name, p in inspect.signature(fn.fn).parameters.items()
                if p.default is not inspect.Parameter.empty}  # the JIT's and interpreter's
    for name in fn.arg_names:
        if name in constexprs:
            args[name] = constexprs[name]
        elif name in defaults:  # left at its default, as every real launch leaves it
            continue
        elif name in _INT_POINTERS:
            args[name] = torch.empty(16, dtype=torch.int32)
        elif name in _ACC_POINTERS:
            args[name] = torch.empty(16, dtype=acc)
        elif name.endswith("_ptr"):
            args[name] = torch.empty(16, dtype=element)
        else:
            args[name] = sizes[name]
    return KernelCall(fn, args, options)
