"""The one tolerance table and the one comparison helper every test uses.

An element passes when |actual - expected| <= atol * scale + rtol * |expected|, with (atol, rtol)
from TOL for the dtype under test and scale = max(1, largest |expected| in the tensor): the
absolute part is measured against the tensor's magnitude, because an element of a reduction
(a weight gradient sums T*B products) carries an error proportional to its summands, which can
be far larger than the element itself when they cancel. For outputs and states (|.| <= 1 for
tanh/sigmoid cells) scale is 1. "eps" below is the dtype's machine epsilon (torch.finfo().eps):
fp64 2.2e-16, fp32 1.2e-7, fp16 9.8e-4, bf16 7.8e-3.

Low-precision runs (fp16, bf16) are compared with the float64 reference computed from the
*same rounded* weights, inputs, states and loss weights, so the tolerance covers only the error
of computing in that dtype, never the rounding of the inputs.

Calibration 1, the plain-PyTorch reference loop run entirely in the dtype (every intermediate
rounded: worse than kernels that accumulate in fp32) against float64; LSTM, LSTM-proj, GRU,
RNN-tanh, H 1..2048, T=8, bidirectional, with lengths; worst error in units of
eps * (1 + |expected|), outputs / gradients:
    fp32: 8 / 74 (74 at H=2048, <= 10 for H <= 31)    fp16: 1 / 11    bf16: 1 / 10
Calibration 2, this suite against the kernels (TRITONRNN_TOL_LOG, below): worst error / allowed
    fp64 5e-6    fp32 0.014    fp16 0.07    bf16 0.13
so every tolerance has >= 7x headroom, and each is far below what the bug it guards against
makes (a wrong term or mask: O(0.1..1); fp32 math done in fp16/TF32: ~1e-3).

Set TRITONRNN_TOL_LOG=<file> to append every comparison's worst error / allowed ratio to
<file>: that is how to check the headroom after a kernel change.
"""
import os

import torch

TOL = {
    # Same-precision oracle (reference loop or torch.nn in float64): only the summation order
    # of dot products differs, a few eps per step. 1e-10 = ~5e5 eps.
    torch.float64: (1e-10, 1e-10),
    # ~420 eps32: 5x the worst reference-loop error (74 eps), 70x this suite's worst; 20x below
    # the ~1e-3 that fp16 or TF32 arithmetic anywhere in an fp32 path would give.
    torch.float32: (5e-5, 5e-5),
    # 200x the fp32 tolerance, as eps16 is 8192x eps32 but the tests stay at small T*H:
    # ~10 eps16, the worst reference-loop error (11 eps at H=2048; <= 5 eps at tested sizes).
    torch.float16: (1e-2, 1e-2),
    # 1200x the fp32 tolerance, 6x fp16's (bf16 has 3 fewer mantissa bits: eps 8x fp16's):
    # ~8 eps_bf16, vs. the worst reference-loop error of ~5 eps_bf16 at the tested sizes.
    torch.bfloat16: (6e-2, 6e-2),
    # fp32 tensors with TF32 matmuls (CUDA with torch.backends.cudnn.allow_tf32, torch's default
    # for recurrent layers): 10-bit operands like fp16, but that rounding is *not* reproduced in
    # the reference, so twice fp16's. Used by the gpu tier only; not calibrated on hardware yet.
    "tf32": (2e-2, 2e-2),
}


def _errors(a, e, atol, rtol):
    """(|a - e|, allowed difference, their ratio; inf where a is not finite) in float64."""
    diff = (a - e).abs()
    allowed = atol * max(1.0, e.abs().max().item()) + rtol * e.abs()
    ratio = torch.where(torch.isfinite(diff), diff / allowed, torch.full_like(diff, float("inf")))
    return diff, allowed, ratio


def worst_ratio(actual, expected, dtype=None):
    """Largest |actual - expected| / allowed over the tensor (<= 1 passes; inf for NaN), for
    reports that record how close a result came rather than stopping at the first failure."""
    dtype = dtype or actual.dtype
    a = actual.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    if a.numel() == 0:
        return 0.0
    return _errors(a, e, *TOL[dtype])[2].max().item()


def assert_close(name, actual, expected, dtype=None):
    """Fail with the location of the worst mismatch: its index, both values, the difference and
    what was allowed, plus how many elements failed and how many are NaN.

    dtype: whose tolerance applies, a key of TOL (default: actual's dtype). Shapes must match
    exactly; the expected tensor may have another dtype (a float64 oracle).
    """
    __tracebackhide__ = True
    if actual is None or expected is None:
        raise AssertionError(f"{name}: actual is {'None' if actual is None else 'a tensor'}, "
                             f"expected is {'None' if expected is None else 'a tensor'}")
    dtype = dtype or actual.dtype
    atol, rtol = TOL[dtype]
    if tuple(actual.shape) != tuple(expected.shape):
        raise AssertionError(f"{name}: shape {tuple(actual.shape)}, expected "
                             f"{tuple(expected.shape)}")
    a = actual.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    if not torch.isfinite(e).all():
        raise AssertionError(f"{name}: the expected tensor itself is not finite (test bug)")
    if a.numel() == 0:
        return
    diff, allowed, ratio = _errors(a, e, atol, rtol)
    scale = max(1.0, e.abs().max().item())
    worst = ratio.max().item()
    log = os.environ.get("TRITONRNN_TOL_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{dtype}\t{name}\t{worst:.4g}\n")
    if worst <= 1.0:
        return
    idx = tuple(int(i) for i in torch.unravel_index(ratio.argmax(), a.shape))
    n_bad = int((ratio > 1).sum())
    n_nan = int(torch.isnan(a).sum())
    finite = diff[torch.isfinite(diff)]
    largest = finite.max().item() if finite.numel() else float("nan")
    raise AssertionError(
        f"{name} [{dtype}, atol={atol:g} x scale {scale:.3g}, rtol={rtol:g}]: {n_bad}/"
        f"{a.numel()} elements out of tolerance ({n_nan} NaN); worst at index {idx}: actual "
        f"{a[idx].item():.9g}, expected {e[idx].item():.9g}, |diff| {diff[idx].item():.3g} > "
        f"allowed {allowed[idx].item():.3g}; largest finite |diff| {largest:.3g}")


def assert_all_close(prefix, actual, expected, dtype=None):
    """assert_close over two dicts name -> tensor (or None) with the same keys."""
    __tracebackhide__ = True
    if set(actual) != set(expected):
        raise AssertionError(f"{prefix}: got entries {sorted(actual)}, expected {sorted(expected)}")
    for key in expected:
        if actual[key] is None and expected[key] is None:
            continue
        assert_close(f"{prefix}{key}", actual[key], expected[key], dtype)
