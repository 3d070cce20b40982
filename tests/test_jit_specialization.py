"""The compile report compiles what the launcher launches: for a shape, the kernel call the
report builds (kernels/compile_specs.kernel_call) specializes, by the JIT's own code
(bench/jit_specialization.py), to the same signature, constexprs and divisibility
attributes as the call the launcher really makes with real tensors of that shape, and with
the same launch options.

The launcher's call is captured by standing in for the kernel object in kernels/recurrence
(no kernel runs; the split layout is the GPU's, with 132 SMs). Nothing is compiled here.
"""
import pytest
import torch

from bench.compile_report import job_call
from bench.jit_specialization import bind_launch, by_name, specialize
from tritonrnn.kernels import cells, config, recurrence
from tritonrnn.kernels.cells import CELL_CODES

ARCH = 90


class _Launched(Exception):
    pass


class _Capture:
    """Stands in for a jit kernel: `kernel[grid](*args, **kwargs)` records the call."""

    def __init__(self, kernel):
        self.kernel, self.calls = kernel, []

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.calls.append((grid, args, kwargs))
            raise _Launched
        return launch


SMS = {"H100": 132, "small": 4}  # a GPU with fewer SMs than any anchor plan has slices


@pytest.fixture
def launcher_calls(monkeypatch, request):
    """Captures every kernel launch of kernels/recurrence, laid out as on a GPU with
    SMS[request.param] SMs (132 unless parametrized)."""
    sms = SMS[getattr(request, "param", "H100")]
    monkeypatch.setattr(recurrence, "INTERPRET", False)
    monkeypatch.setattr(config, "device_limits",
                        lambda device: (sms, config.SHARED_PER_BLOCK[9], 9))
    captures = {}
    for name in ("fused_forward_kernel", "fused_backward_kernel", "split_forward_kernel",
                 "split_backward_kernel"):
        captures[name] = _Capture(getattr(recurrence, name))
        monkeypatch.setattr(recurrence, name, captures[name])
    return captures


def _forward(cell, T, B, H, K, dtype):
    """Launch the forward recurrence with every optional input (the report's heaviest form);
    K < H: LSTM with a projection to K."""
    G = cells.lookup(cell).gates
    t = lambda *shape: torch.randn(*shape, dtype=dtype)  # noqa: E731
    with pytest.raises(_Launched):
        recurrence.forward(t(T, B, 1, G, H), t(1, G * H, K), t(1, H) if cell == "GRU" else None,
                           t(1, K, H) if K < H else None, t(1, B, K),
                           t(1, B, H) if cell == "LSTM" else None,
                           torch.full((B,), T, dtype=torch.int32), cell, training=True)


def _backward(cell, T, B, H, K, dtype):
    G = cells.lookup(cell).gates
    S = max(1, cells.lookup(cell).saved)  # RNN saves none: a 1-wide buffer stands in
    t = lambda *shape: torch.randn(*shape, dtype=dtype)  # noqa: E731
    lstm = cell == "LSTM"
    with pytest.raises(_Launched):
        recurrence.backward(t(T, B, 1, K), t(1, B, K), t(1, B, H) if lstm else None,
                            t(1, T, B, S, H), t(1, T, B, H) if lstm else None, t(T, B, 1, K),
                            t(1, B, K), t(1, B, H) if lstm else None,
                            torch.full((B,), T, dtype=torch.int32), t(1, G * H, K),
                            t(1, K, H) if K < H else None, cell)


# (kernel form, cell, hidden, projection, dtype): split forms at the anchor's size (768,
# divisible by 16) and at 100 (not: no divisibility attribute for H and K), a projection
# (K = 64 < H), bf16, fused forms where the plan fuses.
CASES = [("split_forward", "LSTM", 768, 0, "fp16"), ("split_backward", "LSTM", 768, 0, "fp16"),
         ("split_forward", "GRU", 200, 0, "fp16"), ("split_backward", "LSTM_PROJ", 256, 64, "bf16"),
         ("fused_forward", "LSTM", 64, 0, "bf16"), ("fused_backward", "GRU", 32, 0, "fp16"),
         ("fused_backward", "LSTM", 100, 0, "fp16")]


def _check_same_call(launcher_calls, form, cell, hidden, proj, dname, sms=132):
    dtype, B, T = config.torch_dtype(dname), 16, 5
    base = "LSTM" if cell == "LSTM_PROJ" else cell
    width = proj or hidden
    plan = config.plan(CELL_CODES[base], hidden, width, dtype, B, torch.device("cpu"))
    assert plan.split == form.startswith("split"), "the test's shape must run in this regime"
    if form.endswith("_multi"):
        assert -(-hidden // plan.block_h) > sms, "the test's shape must walk several slices"
        plan = config.multi_slice_plan(CELL_CODES[base], hidden, width, dtype)
        assert -(-hidden // plan.block_h) > sms
    (_forward if "forward" in form else _backward)(base, T, B, hidden, width, dtype)
    capture = launcher_calls[form.removesuffix("_multi") + "_kernel"]
    assert len(capture.calls) == 1
    _, args, kwargs = capture.calls[0]
    params, options = bind_launch(capture.kernel, args, kwargs)
    launched = specialize(capture.kernel, params, options, ARCH)

    job = dict(kernel=form, cell=cell, dtype=dname, hidden_size=hidden, proj_size=proj,
               config=plan.as_dict())
    call, *reported = job_call(job, ARCH)
    signature, constexprs, attrs, compile_options = reported
    assert signature == launched[0]
    assert by_name(call.fn, constexprs, attrs) == by_name(capture.kernel, launched[1], launched[2])
    assert call.options == options
    for key in ("num_warps", "num_stages", "maxnreg"):
        assert compile_options[key] == launched[3][key]
    # The specialization is real: pointers are 16-byte aligned, and so are H and K when
    # divisible by 16; the time-loop length and the batch never specialize.
    divisible = by_name(call.fn, constexprs, attrs)[1]
    assert "whh_ptr" in divisible and "T" not in divisible and "B" not in divisible
    assert ("H" in divisible) == (hidden % 16 == 0)


@pytest.mark.parametrize("form,cell,hidden,proj,dname", CASES,
                         ids=[f"{c[0]}-{c[1]}-H{c[2]}-{c[4]}" for c in CASES])
def test_report_compiles_the_launchers_call(launcher_calls, form, cell, hidden, proj, dname):
    _check_same_call(launcher_calls, form, cell, hidden, proj, dname)


@pytest.mark.parametrize("launcher_calls", ["small"], indirect=True)
@pytest.mark.parametrize("form", ["split_forward_multi", "split_backward_multi"])
def test_report_compiles_the_launchers_multi_slice_call(launcher_calls, form):
    """On a GPU with fewer SMs than slices the launcher runs the multi-slice form with
    config.multi_slice_plan; the report's multi-slice records are that call."""
    _check_same_call(launcher_calls, form, "LSTM", 768, 0, "fp16", sms=SMS["small"])
