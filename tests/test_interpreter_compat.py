"""Run-time loop bounds under the interpreter (kernels/interpreter_compat.py): Triton 3.6's
interpreter with NumPy >= 2.4 raised TypeError at `for s in range(T)`; every installed
Triton must run such a loop once tritonrnn.kernels is imported."""
import pytest
import torch
import triton
import triton.language as tl

from tritonrnn.kernels import config, interpreter_compat


@triton.jit
def _count_kernel(out_ptr, n, start, step):
    pid = tl.program_id(0)
    total = 0
    for i in range(start + pid, n, step):  # every bound a run-time scalar
        total += i
    tl.store(out_ptr + pid, total)


@pytest.mark.parametrize("n", [0, 1, 7])
def test_runtime_scalar_bounds(n):
    if not config.INTERPRET:
        pytest.skip("interpreter-only fix")
    out = torch.full((2,), -1, dtype=torch.int32)
    _count_kernel[(2,)](out, n, 1, 2)
    assert out.tolist() == [sum(range(1, n, 2)), sum(range(2, n, 2))]


def test_fix_installed_only_where_needed():
    if not config.INTERPRET:
        pytest.skip("interpreter-only fix")
    from triton.language import core
    from triton.runtime import interpreter
    fixed = getattr(interpreter._patch_lang_tensor, "_tritonrnn_fixed", False)
    # The interpreter's own conversion (under ours when we replaced it) fails exactly when fixed.
    own = interpreter._patch_lang_tensor
    interpreter._patch_lang_tensor = getattr(own, "__wrapped__", own)
    try:
        assert interpreter_compat._interpreter_index_works(interpreter, core) is not fixed
    finally:
        interpreter._patch_lang_tensor = own
    assert interpreter_compat.apply() is fixed  # idempotent
