"""Determinism: the same inputs give bitwise identical outputs and gradients, run after run,
in both regimes; the only atomics in the kernels are the split regime's ticket counter, step
flags and status words (never data, so no order-dependent sums); dropout draws its masks from torch's generator exactly as
torch.nn does, so a seed reproduces them and the generator ends in the same state.
"""
import ast
import contextlib
from pathlib import Path

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import tritonrnn
from tests.common import flat_state, layer_pair
from tritonrnn.kernels import config

KERNELS = Path(tritonrnn.kernels.__file__).resolve().parent  # kernels/, installed as tritonrnn.kernels


def _run_once(mod, kind, x, states, packed_lengths=None):
    x = x.detach().clone().requires_grad_()
    states = [s.detach().clone().requires_grad_() for s in states]
    for p in mod.parameters():
        p.grad = None
    inp = x if packed_lengths is None else pack_padded_sequence(x, packed_lengths,
                                                                enforce_sorted=False)
    out, state = mod(inp, tuple(states) if kind == "lstm" else states[0])
    outs = [getattr(out, "data", out), *flat_state(state)]
    gen = torch.Generator().manual_seed(3)
    sum((t * torch.randn(t.shape, generator=gen)).sum() for t in outs).backward()
    return outs + [x.grad, *[s.grad for s in states], *[p.grad for p in mod.parameters()]]


# (id, kind, H, module kwargs, packed, regime)
CASES = [
    ("lstm-bidir-2layers-fused", "lstm", 6, dict(bidirectional=True, num_layers=2), False, "fused"),
    ("gru-packed-fused", "gru", 6, dict(), True, "fused"),
    ("lstm-split", "lstm", 20, dict(), False, "split"),
    ("rnn-packed-split", "rnn_tanh", 20, dict(), True, "split"),
]


@pytest.mark.parametrize("kind,H,kwargs,packed,regime", [pytest.param(*c[1:], id=c[0])
                                                          for c in CASES])
def test_two_runs_are_bitwise_identical(kind, H, kwargs, packed, regime):
    """Split cases use 16 hidden units per program, so H = 20 spreads over two programs that
    exchange h through memory."""
    _, mod = layer_pair(kind, 3, H, **kwargs)
    D = 2 if kwargs.get("bidirectional") else 1
    L = kwargs.get("num_layers", 1)
    x = torch.randn(3, 3, 3)
    states = [torch.randn(L * D, 3, H) for _ in range(2 if kind == "lstm" else 1)]
    lengths = torch.tensor([2, 3, 1]) if packed else None
    split = config.force_split(16) if regime == "split" else contextlib.nullcontext()
    with split:
        first = _run_once(mod, kind, x, states, lengths)
        second = _run_once(mod, kind, x, states, lengths)
    for i, (a, b) in enumerate(zip(first, second)):
        assert torch.equal(a, b), f"tensor {i} differs between two identical runs"


def test_no_atomics_on_data():
    """Every tl.atomic_* call in the kernels sits in claim_work, publish or wait_for_group (the
    split regime's ticket counter, step flags and status words, int32): no floating-point
    value is ever summed in an order that depends on scheduling (the backward's partial
    products are summed by their owner in slice order)."""
    # kernels/capabilities.py's atomic_read/atomic_write only wrap tl.atomic_*: they count as
    # atomics where they are called, not where they are defined.
    wrappers = {("capabilities.py", "atomic_read"), ("capabilities.py", "atomic_write")}
    found = []
    for path in sorted(KERNELS.glob("*.py")):
        tree = ast.parse(path.read_text())
        for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            if (path.name, func.name) in wrappers:
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Call) and (
                        (isinstance(node.func, ast.Attribute)
                         and node.func.attr.startswith("atomic_"))
                        or (isinstance(node.func, ast.Name)
                            and node.func.id.startswith("atomic_"))):
                    found.append((path.name, func.name))
    assert found, "no atomics found at all: the scan is broken"
    assert {f for _, f in found} == {"claim_work", "publish", "wait_for_group"}, found


# -- dropout and torch's generator ----------------------------------------------------------


def _dropout_run(mod, seed, x):
    torch.manual_seed(seed)
    out, _ = mod(x)
    return out, torch.rand(4)  # the generator's next draws: same state <=> same consumption


@pytest.mark.parametrize("kind", ["lstm"])
def test_dropout_follows_torch_generator(kind):
    """Training with dropout between layers: for a seed, our output equals torch.nn's (native
    CPU) bitwise-close and the generator is left in the same state; the same seed repeats our
    masks exactly; another seed changes them."""
    ref, tri = layer_pair(kind, 3, 5, num_layers=3, dropout=0.5)
    ref.train()
    tri.train()
    x = torch.randn(4, 2, 3)
    with torch.no_grad():
        ref_out, ref_next = _dropout_run(ref, 10, x)
        out, nxt = _dropout_run(tri, 10, x)
        again, _ = _dropout_run(tri, 10, x)
        other, _ = _dropout_run(tri, 11, x)
    assert torch.equal(nxt, ref_next), "dropout consumed the generator differently from torch.nn"
    assert torch.allclose(out, ref_out, atol=5e-5, rtol=5e-5)  # same masks; TOL fp32
    assert torch.equal(out, again)
    assert not torch.equal(out, other)


def test_dropout_respects_fork_rng():
    """Under torch.random.fork_rng the caller's generator is untouched, as with torch.nn."""
    _, tri = layer_pair("lstm", 3, 5, num_layers=2, dropout=0.5)
    tri.train()
    torch.manual_seed(0)
    expected_next = torch.rand(3)
    torch.manual_seed(0)
    with torch.random.fork_rng(), torch.no_grad():
        tri(torch.randn(3, 2, 3))
    assert torch.equal(torch.rand(3), expected_next)
