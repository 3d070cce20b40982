"""Extreme sizes: ones everywhere, zero batch, non-contiguous inputs, very long sequences and
tensors past 2^31 elements.

Every numerical comparison is against torch.nn on the same weights (outputs, final states and
all gradients), as in test_modules.py. Zero *length* is an error in torch.nn and here alike;
that is checked with the other bad calls in test_bad_input.py.
"""
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import tritonrnn
from tests.common import KINDS, cell_pair, flat_state, layer_pair, proj_for
from tests.tolerances import assert_all_close
from tritonrnn.kernels import config, recurrence, testing

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

CELL_KINDS = ("rnn_tanh", "rnn_relu", "lstm", "gru")
REPO = Path(__file__).resolve().parents[1]


def _run(mod, kind, x, states):
    """Forward + backward of a loss touching every output; returns (outputs, gradients)."""
    x = x.detach().requires_grad_()
    states = [s.detach().requires_grad_() for s in states]
    hx = None
    if states:
        hx = tuple(states) if kind.startswith("lstm") else states[0]
    out, state = mod(x, hx)
    final = flat_state(state)
    outs = {"output": out, "h_n": final[0]}
    if len(final) > 1:
        outs["c_n"] = final[1]
    gen = torch.Generator().manual_seed(7)  # same loss weights for both modules
    loss = sum((t * torch.randn(t.shape, generator=gen)).sum() for t in outs.values())
    loss.backward()
    grads = {"input": x.grad, **{f"hx[{i}]": s.grad for i, s in enumerate(states)}}
    grads.update({f"param {n}": p.grad for n, p in mod.named_parameters()})
    return outs, grads


def _compare_layers(kind, x, states, H, **kwargs):
    ref, tri = layer_pair(kind, x.shape[-1], H, proj_size=proj_for(H), **kwargs)
    ref_outs, ref_grads = _run(ref, kind, x, states)
    tri_outs, tri_grads = _run(tri, kind, x, states)
    assert_all_close("", tri_outs, ref_outs)
    assert_all_close("grad ", tri_grads, ref_grads)
    return tri_outs


# -- sizes of one ---------------------------------------------------------------------------

# (id, T, B or None for unbatched, I, H): every size 1 at once, batched and unbatched, and
# hidden 1 over several steps and batch rows.
ONES = [("all1", 1, 1, 1, 1), ("all1-unbatched", 1, None, 1, 1), ("H1-I1", 4, 3, 1, 1)]


@pytest.mark.parametrize("kind,T,B,I,H", [
    pytest.param(k, *c[1:], id=f"{k}-{c[0]}") for c in ONES for k in KINDS
    if c[0] != "H1-I1" or k in ("rnn_relu", "lstm", "gru")])
def test_sizes_of_one(kind, T, B, I, H):
    if kind == "lstm_proj" and H == 1:
        H = 2  # proj_size must be smaller than hidden_size: the smallest LSTM with projection
    K = proj_for(H) if kind == "lstm_proj" else H
    batch = () if B is None else (B,)
    x = torch.randn(T, *batch, I)
    states = [torch.randn(2, *batch, K)] + ([torch.randn(2, *batch, H)] if kind.startswith(
        "lstm") else [])
    _compare_layers(kind, x, states, H, bidirectional=True)


# -- zero batch -----------------------------------------------------------------------------


@pytest.mark.parametrize("with_state", [False, True], ids=["no-hx", "hx"])
@pytest.mark.parametrize("kind", KINDS)
def test_zero_batch_layer(kind, with_state):
    """B = 0 is valid in torch.nn: empty output and states of the right shapes, empty
    gradients, zero parameter gradients."""
    H = 5
    K = proj_for(H) if kind == "lstm_proj" else H
    x = torch.randn(3, 0, 4)
    states = []
    if with_state:
        states = [torch.randn(2, 0, K)] + ([torch.randn(2, 0, H)] if kind.startswith("lstm")
                                           else [])
    outs = _compare_layers(kind, x, states, H, num_layers=2)
    assert outs["output"].shape == (3, 0, K)


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_zero_batch_cell(kind):
    ref, tri = cell_pair(kind, 4, 6)
    x = torch.randn(0, 4)
    outs = {}
    for name, cell in (("torch.nn", ref), ("tritonrnn", tri)):
        xi = x.clone().requires_grad_()
        out = cell(xi)
        flat = list(out) if isinstance(out, tuple) else [out]
        sum(t.sum() for t in flat).backward()
        outs[name] = [t.shape for t in flat] + [xi.grad.shape]
        outs[name] += [p.grad.abs().sum().item() for p in cell.parameters()]
    assert outs["tritonrnn"] == outs["torch.nn"]


# -- non-contiguous inputs and states -------------------------------------------------------


def _noncontiguous(case, T, B, I, K, H, lstm):
    """(x [T, B, I], states) built non-contiguous in the way `case` names."""
    if case == "transposed":   # time-major view of a batch-major tensor, states likewise
        x = torch.randn(B, T, I).transpose(0, 1)
        states = [torch.randn(B, 2, K).transpose(0, 1)]
        if lstm:
            states.append(torch.randn(B, 2, H).transpose(0, 1))
    elif case == "sliced":     # every other batch row and feature
        x = torch.randn(T, 2 * B, 2 * I)[:, ::2, 1::2]
        states = [torch.randn(2, 2 * B, K + 3)[:, ::2, 3:]]
        if lstm:
            states.append(torch.randn(2, B, 2 * H)[..., ::2])
    else:                      # expanded: one sequence and one state broadcast over the batch
        x = torch.randn(T, 1, I).expand(T, B, I)
        states = [torch.randn(2, 1, K).expand(2, B, K)]
        if lstm:
            states.append(torch.randn(2, 1, H).expand(2, B, H))
    assert not x.is_contiguous() and not any(s.is_contiguous() for s in states)
    return x, states


# Each way of being non-contiguous with two cell kinds; contiguity is handled once for all cells.
NONCONTIGUOUS = [("transposed", "lstm"), ("transposed", "gru"), ("sliced", "lstm_proj"),
                 ("sliced", "rnn_tanh"), ("expanded", "rnn_relu"), ("expanded", "lstm")]


@pytest.mark.parametrize("case,kind", [pytest.param(c, k, id=f"{c}-{k}") for c, k in NONCONTIGUOUS])
def test_noncontiguous_input_and_state(kind, case):
    T, B, I, H = 3, 3, 4, 5
    K = proj_for(H) if kind == "lstm_proj" else H
    x, states = _noncontiguous(case, T, B, I, K, H, kind.startswith("lstm"))
    before = [t.clone() for t in [x, *states]]
    _compare_layers(kind, x, states, H, bidirectional=True)
    for t, b in zip([x, *states], before):
        assert torch.equal(t, b), "a non-contiguous input was written"


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_noncontiguous_cell(kind):
    ref, tri = cell_pair(kind, 4, 6)
    x = torch.randn(4, 3).t()                    # [3, 4], transposed
    states = [torch.randn(1, 6).expand(3, 6)]    # expanded
    if kind == "lstm":
        states.append(torch.randn(3, 12)[:, ::2])  # sliced
    results = {}
    for name, cell in (("ref", ref), ("tri", tri)):
        xi = x.detach().requires_grad_()
        si = [s.detach().requires_grad_() for s in states]
        out = cell(xi, tuple(si) if kind == "lstm" else si[0])
        flat = list(out) if isinstance(out, tuple) else [out]
        gen = torch.Generator().manual_seed(3)
        sum((t * torch.randn(t.shape, generator=gen)).sum() for t in flat).backward()
        results[name] = ({f"out{i}": t for i, t in enumerate(flat)},
                         {"x": xi.grad, **{f"s{i}": s.grad for i, s in enumerate(si)}})
    assert_all_close("", results["tri"][0], results["ref"][0])
    assert_all_close("grad ", results["tri"][1], results["ref"][1])


# -- very long sequences ----------------------------------------------------------------------


class _RecordingKernel:
    """Stands in for a jitted kernel: kernel[grid](*args, **meta) records the launch and
    computes nothing (outputs keep their NaN poison)."""

    def __init__(self):
        self.calls = []

    def __getitem__(self, grid):
        return lambda *args, **meta: self.calls.append((grid, args, meta))


def _graph_size(tensor):
    """Number of autograd nodes reachable from tensor.grad_fn, walked iteratively."""
    seen, todo = set(), [tensor.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        todo.extend(n for n, _ in node.next_functions)
    return len(seen)


@pytest.mark.parametrize("regime", ["fused", "split"])
@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_long_sequence_is_one_launch_without_per_step_host_work(monkeypatch, mode, regime):
    """T = 100,000 through the module, forward and backward, with the kernels of each regime
    replaced by recorders.

    Why not run the kernels: the interpreter costs ~12 ms per step even at H = 1, so 100,000
    steps take ~20 minutes per direction and pass -- too slow for the default tier. What makes
    a long sequence work or fail on the host side is checked here at the real length instead:
    one forward and one backward launch whatever T is, T passed as a run-time argument (not a
    constexpr that would compile a kernel per length), an autograd graph whose size does not
    depend on T (no per-step nodes, so no deep recursion in backward), and host time that does
    not grow with T beyond the input GEMMs. The time loop itself is inside the kernel
    (`for s in range(T)`), with int64 time offsets -- those are executed past 2^31 elements in
    test_offsets_past_2_31 below, and the real 100,000-step run is the gpu-tier test
    test_long_sequence_on_gpu.

    The split regime (W_hh too large for one program, forced here) is one launch per sequence
    too, whatever the grid: test_split_launch_layout checks how it lays programs out.
    """
    fwd, bwd = _RecordingKernel(), _RecordingKernel()
    monkeypatch.setattr(recurrence, f"{regime}_forward_kernel", fwd)
    monkeypatch.setattr(recurrence, f"{regime}_backward_kernel", bwd)
    if regime == "split":
        monkeypatch.setattr(config, "_forced_split", config.ForcedSplit(16))
    mod = getattr(tritonrnn, mode)(1, 1)
    seen = {}
    for T in (5, 100_000):
        fwd.calls.clear()
        bwd.calls.clear()
        x = torch.randn(T, 1, 1, requires_grad=True)
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(200 + _stack_depth())  # any recursion over T would hit this
        try:
            start = time.perf_counter()
            out, _ = mod(x)
            nodes = _graph_size(out)
            out.backward(torch.ones_like(out))
            elapsed = time.perf_counter() - start
        finally:
            sys.setrecursionlimit(limit)
        assert len(fwd.calls) == 1 and len(bwd.calls) == 1, (T, len(fwd.calls), len(bwd.calls))
        (grid, args, meta), = fwd.calls
        ints = lambda values: [v for v in values if type(v) is int]  # noqa: E731
        assert T in ints(args) and T not in ints(meta.values()), \
            "T must be a run-time kernel argument, not a constexpr"
        seen[T] = (grid, bwd.calls[0][0], nodes, elapsed)
    assert seen[5][:3] == seen[100_000][:3], seen
    assert seen[100_000][3] < 5.0, f"host time at T=100,000: {seen[100_000][3]:.2f}s"


def _stack_depth():
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    return depth


@pytest.mark.gpu
@pytest.mark.parametrize("regime", ["fused", "split"])
@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_long_sequence_on_gpu(mode, regime, monkeypatch):
    """The real run: 100,000 steps forward and backward on the compiled kernels, against
    torch.nn on the CPU with the same weights (cuDNN refuses this length: an H200 with torch
    2.11 raised CUDNN_STATUS_NOT_SUPPORTED, 2026-11-30). Outputs of a contracting recurrence
    stay O(1), so the fp32 tolerance holds over the whole length."""
    torch.manual_seed(0)
    ref = getattr(torch.nn, mode)(2, 8)
    tri = getattr(tritonrnn, mode)(2, 8).cuda()
    tri.load_state_dict(ref.state_dict())
    x = torch.randn(100_000, 2, 2)
    if regime == "split":  # the exchange-synchronised form, one launch for all steps
        monkeypatch.setattr(config, "_forced_split", config.ForcedSplit(16))
    outs = {}
    with testing.count_launches() as launched:
        for name, mod, device in (("ref", ref, "cpu"), ("tri", tri, "cuda")):
            xi = x.to(device).clone().requires_grad_()
            y, state = mod(xi)
            (y.sum() + sum(s.sum() for s in flat_state(state))).backward()
            outs[name] = {"y": y.cpu(), "h_n": flat_state(state)[0].cpu(),
                          "grad x": xi.grad.cpu()}
    assert launched[f"{regime}_forward"] == 1
    assert launched[f"{regime}_backward"] == 1
    assert_all_close("", outs["tri"], outs["ref"], "tf32")


# -- tensors past 2^31 elements ---------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="needs Linux's lazily backed MAP_NORESERVE mappings")
def test_offsets_past_2_31():
    """Every kernel (fused and split, forward and backward; LSTM, LSTM-proj, GRU) run on
    buffers of 2^33 to 2^37 elements whose rows past 2^31 are really read and written, compared
    bit for bit with the same rows computed at B = 16; see tests/offsets_worker.py for how
    this needs almost no memory. In a subprocess, so that a wrapped 32-bit offset (a read
    outside the mapping) fails this test rather than crashing pytest."""
    proc = subprocess.run([sys.executable, "-m", "tests.offsets_worker"], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert proc.stdout.startswith("OK"), proc.stdout
