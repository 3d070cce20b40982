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


@pytest.fixture
def launcher_calls(monkeypatch):
    """Captures every kernel launch of kernels/recurrence, laid out as on a 132-SM GPU."""
    monkeypatch.setattr(recurrence, "INTERPRET", False)
    monkeypatch.setattr(config, "device_limits",
                        lambda device: (132, config.SHARED_PER_BLOCK[9]))
    captures = {}
    for name in ("fused_forward_kernel", "fused_backward_kernel", "split_forward_kernel",
                 "split_backward_kernel"):
        captures[name] = _Capture(getattr(recurrence, name))
        monkeypatch.setattr(recurrence, name, captures[name])
    return captures


def _forward(cell, T, B, H, dtype):
    """Launch the forward recurrence with every optional input (the report's heaviest form)."""
    G = cells.lookup(cell).gates
    xp = torch.randn(T, B, 1, G, H, dtype=dtype)
    whh = torch.randn(1, G * H, H, dtype=dtype)
    bhn = torch.randn(1, H, dtype=dtype) if cell == "GRU" else None
    h0 = torch.randn(1, B, H, dtype=dtype)
    c0 = torch.randn(1, B, H, dtype=dtype) if cell == "LSTM" else None
    lengths = torch.full((B,), T, dtype=torch.int32)
    with pytest.raises(_Launched):
        recurrence.forward(xp, whh, bhn, None, h0, c0, lengths, cell, training=True)


def _backward(cell, T, B, H, dtype):
    code = CELL_CODES[cell]
    G = cells.lookup(cell).gates
    S = cells.lookup(cell).saved
    t = lambda *shape: torch.randn(*shape, dtype=dtype)  # noqa: E731
    lstm = code == CELL_CODES["LSTM"]
    with pytest.raises(_Launched):
        recurrence.backward(t(T, B, 1, H), t(1, B, H), t(1, B, H) if lstm else None,
                            t(1, T, B, S, H), t(1, T, B, H) if lstm else None, t(T, B, 1, H),
                            t(1, B, H), t(1, B, H) if lstm else None,
                            torch.full((B,), T, dtype=torch.int32), t(1, G * H, H), None, cell)


# (kernel form, cell, hidden): split forms at the anchor's size (768, both divisible by 16)
# and at 100 (not: no divisibility attribute for H and K), fused forms where the plan fuses.
CASES = [("split_forward", "LSTM", 768), ("split_backward", "LSTM", 768),
         ("split_forward", "GRU", 100), ("fused_forward", "LSTM", 64),
         ("fused_backward", "GRU", 32)]


@pytest.mark.parametrize("form,cell,hidden", CASES, ids=[f"{c[0]}-{c[1]}-H{c[2]}" for c in CASES])
def test_report_compiles_the_launchers_call(launcher_calls, form, cell, hidden):
    dtype, B, T = torch.float16, 16, 5
    plan = config.plan(CELL_CODES[cell], hidden, hidden, dtype, B, torch.device("cpu"))
    assert plan.split == form.startswith("split"), "the test's shape must run in this regime"
    (_forward if form.endswith("forward") else _backward)(cell, T, B, hidden, dtype)
    capture = launcher_calls[form + "_kernel"]
    assert len(capture.calls) == 1
    _, args, kwargs = capture.calls[0]
    params, options = bind_launch(capture.kernel, args, kwargs)
    launched = specialize(capture.kernel, params, options, ARCH)

    job = dict(kernel=form, cell=cell, dtype="fp16", hidden_size=hidden, proj_size=0,
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
