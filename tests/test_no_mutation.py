"""Nothing lost or mutated: forward and backward never write their inputs, initial states or
weights; outputs never share memory with them (or with each other); gradients exist exactly
for the tensors that require them and equal torch.nn's for every combination.

"Never written" is checked two ways: values (a clone compared bitwise) and autograd's version
counter, which every in-place op bumps even when it writes the same values back.
"""
import itertools

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from tests.common import cell_pair, flat_state, layer_pair, proj_for
from tests.tolerances import assert_close

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")


def _snapshot(tensors):
    return [(t, t.detach().clone(), t._version) for t in tensors]


def _assert_untouched(snapshot, names):
    for (t, copy, version), name in zip(snapshot, names):
        assert t._version == version, f"{name} was written in place"
        assert torch.equal(t.detach(), copy) or (torch.isnan(copy).any() and torch.equal(
            torch.nan_to_num(t.detach()), torch.nan_to_num(copy))), f"{name} changed"


def _storages(tensors):
    return {t.untyped_storage().data_ptr() for t in tensors if t is not None and t.numel()}


# (id, kind, module kwargs, input form) -- each form of input once, all options switched on.
CASES = [
    ("padded-bidir-2layers-dropout", "lstm_proj", dict(num_layers=2, bidirectional=True,
                                                      dropout=0.5), "padded"),
    ("batch-first-gru", "gru", dict(batch_first=True, num_layers=2), "padded"),
    ("packed-unsorted-bidir", "lstm", dict(bidirectional=True), "packed"),
    ("unbatched-relu", "rnn_relu", dict(bidirectional=True), "unbatched"),
]


@pytest.mark.parametrize("kind,kwargs,form", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_layer_writes_nothing_it_is_given(kind, kwargs, form):
    H, T, B, I = 5, 4, 3, 2
    K = proj_for(H) if kind == "lstm_proj" else H
    _, mod = layer_pair(kind, I, H, proj_size=proj_for(H), **kwargs)
    mod.train()
    D = 2 if kwargs.get("bidirectional") else 1
    L = kwargs.get("num_layers", 1)
    batch = () if form == "unbatched" else (B,)
    x = torch.randn(T, *batch, I)
    if kwargs.get("batch_first"):
        x = x.transpose(0, 1).contiguous()
    states = [torch.randn(L * D, *batch, K)]
    if kind.startswith("lstm"):
        states.append(torch.randn(L * D, *batch, H))
    x.requires_grad_()
    for s in states:
        s.requires_grad_()
    inp = x
    if form == "packed":
        x.data[2:, 1] = float("nan")  # padding: never read, never written
        inp = pack_padded_sequence(x, torch.tensor([T, 2, 3]), enforce_sorted=False)
    hx = tuple(states) if kind.startswith("lstm") else states[0]
    given = [x, *states, *mod.parameters()]
    names = ["input", *[f"hx[{i}]" for i in range(len(states))],
             *[n for n, _ in mod.named_parameters()]]
    snapshot = _snapshot(given)
    if form == "packed":
        packed_snapshot = _snapshot([inp.data])

    out, state = mod(inp, hx)
    out_tensors = [out.data if isinstance(out, PackedSequence) else out, *flat_state(state)]
    sum((t * torch.randn(t.shape)).sum() for t in out_tensors).backward()

    _assert_untouched(snapshot, names)
    if form == "packed":
        _assert_untouched(packed_snapshot, ["packed data"])
    given_storages = _storages(given + ([inp.data] if form == "packed" else []))
    for i, t in enumerate(out_tensors):
        assert t.untyped_storage().data_ptr() not in given_storages, f"output {i} aliases an input"
    assert len(_storages(out_tensors)) == len(out_tensors), "two outputs share memory"


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_cell_writes_nothing_it_is_given(kind):
    _, cell = cell_pair(kind, 3, 4)
    x = torch.randn(2, 3, requires_grad=True)
    states = [torch.randn(2, 4, requires_grad=True) for _ in range(2 if kind == "lstm" else 1)]
    given = [x, *states, *cell.parameters()]
    snapshot = _snapshot(given)
    out = cell(x, tuple(states) if kind == "lstm" else states[0])
    outs = list(out) if isinstance(out, tuple) else [out]
    sum(t.sum() for t in outs).backward()
    _assert_untouched(snapshot, [f"tensor {i}" for i in range(len(given))])
    given_storages = _storages(given)
    assert not _storages(outs) & given_storages, "an output aliases an input"
    assert len(_storages(outs)) == len(outs), "two outputs share memory"


# -- every combination of requires_grad -------------------------------------------------------

_GROUPS = ("input", "h0", "c0", "weights")


def _grads_with(mod, kind, x, states, wants):
    """Forward/backward with requires_grad set per group in `wants`; returns
    (output requires_grad, {name: grad or None})."""
    x = x.detach().requires_grad_("input" in wants)
    states = [s.detach().requires_grad_(g in wants) for s, g in zip(states, ("h0", "c0"))]
    for p in mod.parameters():
        p.grad = None
        p.requires_grad_("weights" in wants)
    if "bias only" in wants:
        for n, p in mod.named_parameters():
            p.requires_grad_(n.startswith("bias_hh"))
    out, state = mod(x, tuple(states) if kind == "lstm" else states[0])
    outs = [out, *flat_state(state)]
    grads = {"input": x, "h0": states[0], **({"c0": states[1]} if len(states) > 1 else {}),
             **dict(mod.named_parameters())}
    requires = outs[0].requires_grad
    if requires:
        gen = torch.Generator().manual_seed(11)
        sum((t * torch.randn(t.shape, generator=gen)).sum() for t in outs).backward()
    return requires, {n: t.grad for n, t in grads.items()}


def _combinations(groups):
    return [set(c) for r in range(len(groups) + 1) for c in itertools.combinations(groups, r)]


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_every_requires_grad_combination(kind):
    """All subsets of {input, h0, c0, weights} (and "only bias_hh"): the same tensors get
    gradients as in torch.nn, with the same values; no gradient for the others; no graph at
    all when nothing requires grad."""
    ref, tri = layer_pair(kind, 2, 4)
    x = torch.randn(2, 2, 2)
    states = [torch.randn(1, 2, 4) for _ in range(2 if kind == "lstm" else 1)]
    groups = _GROUPS if kind == "lstm" else _GROUPS[:2] + _GROUPS[3:]
    combos = _combinations(groups) + [{"input", "bias only"}]
    for wants in combos:
        ref_req, ref_grads = _grads_with(ref, kind, x, states, wants)
        tri_req, tri_grads = _grads_with(tri, kind, x, states, wants)
        label = "+".join(sorted(wants)) or "nothing"
        assert tri_req == ref_req, f"{label}: output requires_grad {tri_req}"
        for name, expected in ref_grads.items():
            got = tri_grads[name]
            assert (got is None) == (expected is None), \
                f"{label}: grad of {name} is {'None' if got is None else 'set'}, torch.nn's is " \
                f"{'None' if expected is None else 'set'}"
            if expected is not None:
                assert_close(f"{label}: grad {name}", got, expected)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_cell_every_requires_grad_combination(kind):
    ref, tri = cell_pair(kind, 3, 4)
    x = torch.randn(2, 3)
    states = [torch.randn(2, 4) for _ in range(2 if kind == "lstm" else 1)]
    groups = ("input", "h0", "c0", "weights") if kind == "lstm" else ("input", "h0", "weights")
    for wants in _combinations(groups):
        results = []
        for cell in (ref, tri):
            xi = x.clone().requires_grad_("input" in wants)
            si = [s.clone().requires_grad_(g in wants) for s, g in zip(states, ("h0", "c0"))]
            for p in cell.parameters():
                p.grad = None
                p.requires_grad_("weights" in wants)
            out = cell(xi, tuple(si) if kind == "lstm" else si[0])
            outs = list(out) if isinstance(out, tuple) else [out]
            if outs[0].requires_grad:
                sum((t * (i + 1)).sum() for i, t in enumerate(outs)).backward()
            results.append((outs[0].requires_grad,
                            [t.grad for t in (xi, *si, *cell.parameters())]))
        (ref_req, ref_grads), (tri_req, tri_grads) = results
        label = "+".join(sorted(wants)) or "nothing"
        assert tri_req == ref_req, label
        for i, (got, expected) in enumerate(zip(tri_grads, ref_grads)):
            assert (got is None) == (expected is None), f"{label}: gradient {i}"
            if expected is not None:
                assert_close(f"{label}: gradient {i}", got, expected)


def test_no_grad_saves_nothing():
    """Under torch.no_grad (or with nothing requiring grad) forward stores no activations."""
    _, tri = layer_pair("lstm", 2, 4)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        with torch.no_grad():
            tri(torch.randn(3, 2, 2))
        for p in tri.parameters():
            p.requires_grad_(False)
        tri(torch.randn(3, 2, 2))
    assert saved == []
