"""Saving and loading, and the parameter-handling entry points a PyTorch user reaches for:
torch.save of a whole model and of its state_dict, torch.load(weights_only=True) of the
state_dict (into tritonrnn and into torch.nn), flatten_parameters(), and
torch.func.functional_call with swapped parameters.
"""
import io

import pytest
import torch
from torch import nn

import tritonrnn
from tests.common import KINDS, cell_pair, flat_state, layer_pair
from tests.tolerances import assert_close

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")


def _roundtrip(obj, **load_kwargs):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, **load_kwargs)


def _outputs(module, x):
    out = module(x)
    return [out[0], *flat_state(out[1])] if isinstance(module, nn.RNNBase) else flat_state(out)


@pytest.mark.parametrize("kind", KINDS)
def test_whole_model_save_load(kind):
    _, tri = layer_pair(kind, 3, 4, proj_size=2, bidirectional=True)
    tri.eval()
    loaded = _roundtrip(tri, weights_only=False)
    assert type(loaded) is type(tri) and not loaded.training
    x = torch.randn(3, 2, 3)
    for i, (a, e) in enumerate(zip(_outputs(loaded, x), _outputs(tri, x))):
        assert torch.equal(a, e), i


def test_whole_converted_model_save_load():
    model = tritonrnn.convert(nn.Sequential(nn.Linear(3, 3), nn.GRU(3, 4)))
    loaded = _roundtrip(model, weights_only=False)
    assert type(loaded[1]) is tritonrnn.GRU
    x = torch.randn(3, 2, 3)
    assert torch.equal(loaded(x)[0], model(x)[0])


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_weights_only_load_both_ways(kind):
    ref_a, tri_a = layer_pair(kind, 3, 4, proj_size=2, num_layers=2)
    ref_b, tri_b = layer_pair(kind, 3, 4, proj_size=2, num_layers=2)  # other weights
    # tritonrnn -> file -> torch.nn and torch.nn -> file -> tritonrnn, with the safe loader.
    ref_b.load_state_dict(_roundtrip(tri_a.state_dict(), weights_only=True))
    tri_b.load_state_dict(_roundtrip(ref_a.state_dict(), weights_only=True))
    x = torch.randn(3, 2, 3)
    for i, (a, e) in enumerate(zip(_outputs(tri_b, x), _outputs(ref_b, x))):
        assert_close(f"out{i}", a, e)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_cell_state_dict_weights_only(kind):
    ref, tri = cell_pair(kind, 3, 4)
    fresh = type(tri)(3, 4, **({"nonlinearity": "tanh"} if kind == "rnn_tanh" else {}))
    fresh.load_state_dict(_roundtrip(ref.state_dict(), weights_only=True))
    x = torch.randn(2, 3)
    for i, (a, e) in enumerate(zip(_outputs(fresh, x), _outputs(ref, x))):
        assert_close(f"out{i}", a, e)


def test_flatten_parameters_is_harmless():
    ref, tri = layer_pair("lstm", 3, 4, num_layers=2, bidirectional=True)
    params = [p for p in tri.parameters()]
    values = [p.detach().clone() for p in params]
    tri.flatten_parameters()
    assert all(a is b for a, b in zip(tri.parameters(), params))
    assert all(torch.equal(p, v) for p, v in zip(tri.parameters(), values))
    x = torch.randn(3, 2, 3)
    assert_close("y", tri(x)[0], ref(x)[0])


@pytest.mark.parametrize("kind", ["lstm_proj", "gru"])
def test_functional_call_uses_the_swapped_parameters(kind):
    ref, tri = layer_pair(kind, 3, 4, proj_size=2, bidirectional=True)
    swapped = {n: torch.randn_like(p) for n, p in tri.named_parameters()}
    x = torch.randn(3, 2, 3)
    got = torch.func.functional_call(tri, swapped, (x,))
    expected = torch.func.functional_call(ref, swapped, (x,))
    plain = tri(x)
    for i, (a, e) in enumerate(zip([got[0], *flat_state(got[1])],
                                   [expected[0], *flat_state(expected[1])])):
        assert_close(f"out{i}", a, e)
    assert not torch.allclose(got[0], plain[0])  # the module's own weights were not used
    # Gradients flow to the swapped tensors.
    leaves = {n: t.clone().requires_grad_(True) for n, t in swapped.items()}
    y = torch.func.functional_call(tri, leaves, (x,))[0]
    grads = torch.autograd.grad(y.sum(), list(leaves.values()))
    leaves_ref = {n: t.clone().requires_grad_(True) for n, t in swapped.items()}
    y_ref = torch.func.functional_call(ref, leaves_ref, (x,))[0]
    grads_ref = torch.autograd.grad(y_ref.sum(), list(leaves_ref.values()))
    for n, g, e in zip(leaves, grads, grads_ref):
        assert_close(f"grad {n}", g, e)


def test_functional_call_on_a_cell():
    ref, tri = cell_pair("lstm", 3, 4)
    swapped = {n: torch.randn_like(p) for n, p in tri.named_parameters()}
    x = torch.randn(2, 3)
    got = torch.func.functional_call(tri, swapped, (x,))
    expected = torch.func.functional_call(ref, swapped, (x,))
    for i, (a, e) in enumerate(zip(got, expected)):
        assert_close(f"out{i}", a, e)
