"""Compile the recurrence kernels ahead of time for sm_90 and sm_80, with no GPU.

Shows that the GPU-only forms (the split regime's persistent launch with a grid barrier,
which the interpreter cannot run) compile, and that the fused regime's shared memory stays
under each architecture's per-block limit. Must run with TRITON_INTERPRET unset.
Run: python -m bench.compile_check
"""
import argparse
import os
import time

import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from tritonrnn.kernels.fused import fused_forward_kernel, fused_backward_kernel
from tritonrnn.kernels.split import split_backward_kernel, split_forward_kernel

SHARED_LIMIT = {90: 227 * 1024, 80: 163 * 1024}
_INT_POINTERS = {"len_ptr", "bar_ptr"}
_ACC_POINTERS = {"ring_ptr", "c_in_ptr", "c_out_ptr", "dc_in_ptr", "dc_out_ptr"}


def _signature(fn, constexprs, dtype):
    sig = {}
    for name in fn.arg_names:
        if name in constexprs:
            sig[name] = "constexpr"
        elif name in _INT_POINTERS:
            sig[name] = "*i32"
        elif name in _ACC_POINTERS:
            sig[name] = "*fp32"
        elif name.endswith("_ptr"):
            sig[name] = "*" + dtype
        else:
            sig[name] = "i32"
    return sig


def cases():
    """(name, kernel, element type, constexprs) for LSTM with projection and lengths, the
    heaviest cell, in the largest tiles config.plan selects for each regime."""
    common = dict(CELL=2, G=4, S=4, PROJ=False, VARLEN=True, BLOCK_B=16, ACC_DTYPE=tl.float32,
                  PRECISION="ieee")
    for dtype, tl_dtype, block in (("fp16", tl.float16, 128), ("bf16", tl.bfloat16, 128),
                                   ("fp32", tl.float32, 64)):
        d = dict(common, DOT_DTYPE=tl_dtype)
        yield ("fused_forward", fused_forward_kernel, dtype,
               dict(d, HAS_H0=True, HAS_C0=True, HAS_BHN=False, TRAINING=True,
                    BLOCK_H=block, BLOCK_K=block))
        yield ("fused_backward", fused_backward_kernel, dtype,
               dict(d, HAS_DY=True, HAS_DHN=True, HAS_DCN=True, HAS_H0=True, HAS_C0=True,
                    BLOCK_H=block, BLOCK_K=block))
        yield ("split_forward_sync", split_forward_kernel, dtype,
               dict(d, PROJ=True, HAS_C0=True, HAS_BHN=False, TRAINING=True, SYNC=True,
                    RUN_CELL=True, RUN_PROJ=True, BLOCK_N=64, BLOCK_KC=64))
        yield ("split_backward_sync", split_backward_kernel, dtype,
               dict(d, PROJ=True, HAS_DY=True, HAS_DC=True, HAS_H0=True, HAS_C0=True,
                    SYNC=True, RUN_CELL=True, RUN_REC=True, BLOCK_N=64, BLOCK_KC=64))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="90,80", help="comma-separated: 90 (H100), 80 (A100)")
    args = parser.parse_args()
    assert os.environ.get("TRITON_INTERPRET", "0") != "1", "unset TRITON_INTERPRET to compile"
    failures = 0
    for arch in (int(a) for a in args.arch.split(",")):
        for name, fn, dtype, constexprs in cases():
            start = time.time()
            compiled = triton.compile(ASTSource(fn, _signature(fn, constexprs, dtype), constexprs),
                                      target=GPUTarget("cuda", arch, 32))
            shared = compiled.metadata.shared
            ok = shared <= SHARED_LIMIT[arch]
            failures += not ok
            print(f"sm_{arch} {name:20} {dtype}  shared {shared:>7} / {SHARED_LIMIT[arch]}"
                  f"  {'ok' if ok else 'OVER LIMIT'}  {time.time() - start:.1f}s", flush=True)
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
