"""torch.compile(fullgraph=True) takes models built on these layers in one graph, with no
graph break, and the compiled forward and backward match eager (and torch.nn).

The kernels are the custom ops tritonrnn::recurrence_forward / recurrence_backward
(tritonrnn/ops.py), opaque to TorchDynamo. The default tier compiles with the "aot_eager"
backend: Dynamo and AOTAutograd trace exactly as with inductor (fake tensors through the ops'
fake implementations, the backward graph from their registered autograd), without inductor's
C++ compile of the CPU glue, which costs ~40 s here. Inductor itself runs in the gpu tier.
"""
import pytest
import torch
from torch import nn

import tritonrnn
from torch._dynamo.testing import CompileCounterWithBackend
from tests.common import KINDS, cell_pair, flat_state, layer_pair
from tests.tolerances import assert_close

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _compile(fn):
    """fullgraph=True: any graph break raises. The counter checks it is one graph, compiled
    once."""
    counter = CompileCounterWithBackend("aot_eager")
    return torch.compile(fn, fullgraph=True, backend=counter), counter


def _loss(outs):
    return sum((o * torch.linspace(-1, 1, o.numel(), device=o.device).view(o.shape)).sum()
               for o in outs)


def _outputs_and_grads(fn, module, inputs):
    inputs = [t.detach().clone().requires_grad_(True) for t in inputs]
    out = fn(*inputs)
    outs = [out[0], *flat_state(out[1])] if isinstance(module, nn.RNNBase) else flat_state(out)
    grads = torch.autograd.grad(_loss(outs), [*inputs, *module.parameters()])
    return outs, grads


LAYER_CASES = {
    # kind -> (module options, whether h0 is given)
    "rnn_tanh": (dict(num_layers=2), False),
    "rnn_relu": (dict(batch_first=True), True),
    "lstm": (dict(bidirectional=True), True),
    "lstm_proj": (dict(num_layers=2, bidirectional=True), False),
    "gru": (dict(num_layers=2, batch_first=True), True),
}


@pytest.mark.parametrize("kind", KINDS)
def test_layer_compiles_fullgraph_and_matches_eager_and_torch(kind):
    options, with_h0 = LAYER_CASES[kind]
    ref, tri = layer_pair(kind, 3, 5, proj_size=2, **options)
    D = 2 if tri.bidirectional else 1
    x = torch.randn(2, 4, 3) if tri.batch_first else torch.randn(4, 2, 3)
    inputs = [x]
    if with_h0:
        K = tri.proj_size or tri.hidden_size
        inputs.append(torch.randn(tri.num_layers * D, 2, K))
        if kind.startswith("lstm"):
            inputs.append(torch.randn(tri.num_layers * D, 2, tri.hidden_size))

    def call(module):
        if len(inputs) == 3:
            return lambda x, h, c: module(x, (h, c))
        return module

    compiled, counter = _compile(call(tri))
    outs, grads = _outputs_and_grads(compiled, tri, inputs)
    assert counter.frame_count == 1
    eager_outs, eager_grads = _outputs_and_grads(call(tri), tri, inputs)
    ref_outs, ref_grads = _outputs_and_grads(call(ref), ref, inputs)
    for i, (a, e, r) in enumerate(zip(outs, eager_outs, ref_outs)):
        assert_close(f"out{i} vs eager", a, e)
        assert_close(f"out{i} vs torch.nn", a, r)
    for i, (a, e, r) in enumerate(zip(grads, eager_grads, ref_grads)):
        assert_close(f"grad{i} vs eager", a, e)
        assert_close(f"grad{i} vs torch.nn", a, r)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_cell_compiles_fullgraph_and_matches_eager(kind):
    ref, tri = cell_pair(kind, 3, 5)
    x = torch.randn(2, 3)
    compiled, counter = _compile(tri)
    outs, grads = _outputs_and_grads(compiled, tri, [x])
    assert counter.frame_count == 1
    ref_outs, ref_grads = _outputs_and_grads(ref, ref, [x])
    for i, (a, r) in enumerate(zip(outs, ref_outs)):
        assert_close(f"out{i}", a, r)
    for i, (a, r) in enumerate(zip(grads, ref_grads)):
        assert_close(f"grad{i}", a, r)


class TaggerWithCell(nn.Module):
    """A converted model mixing a layer and a cell loop, trained by a compiled step."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(7, 4)
        self.lstm = nn.LSTM(4, 6, batch_first=True)
        self.cell = nn.GRUCell(6, 6)
        self.head = nn.Linear(6, 7)

    def forward(self, tokens):  # tokens: [B, T]
        y, (h, _) = self.lstm(self.embed(tokens))
        h = h[0]
        for t in range(y.shape[1]):
            h = self.cell(y[:, t], h)
        return self.head(h)


def test_converted_model_compiles_fullgraph_and_trains_like_eager():
    torch.manual_seed(0)
    model = tritonrnn.convert(TaggerWithCell())
    tokens = torch.randint(0, 7, (2, 3))
    target = torch.randint(0, 7, (2,))
    compiled, counter = _compile(model)
    loss = nn.functional.cross_entropy(compiled(tokens), target)
    assert counter.frame_count == 1
    grads = torch.autograd.grad(loss, list(model.parameters()))
    loss_eager = nn.functional.cross_entropy(model(tokens), target)
    grads_eager = torch.autograd.grad(loss_eager, list(model.parameters()))
    assert_close("loss", loss, loss_eager)
    for (name, _), g, e in zip(model.named_parameters(), grads, grads_eager):
        assert_close(f"grad {name}", g, e)


def test_new_sequence_length_and_batch_reuse_or_recompile_correctly():
    """A second shape must not be served by the first shape's graph (the fake impls give
    symbolic shapes); results match eager."""
    _, tri = layer_pair("lstm", 3, 5)
    compiled, counter = _compile(tri)
    for T, B in ((4, 2), (6, 3), (3, 4)):  # (no size 1: Dynamo specialises on it)
        x = torch.randn(T, B, 3)
        y, (h, c) = compiled(x)
        y_e, (h_e, c_e) = tri(x)
        assert y.shape == (T, B, 5)
        assert_close("y", y, y_e)
        assert_close("c", c, c_e)
    assert counter.frame_count <= 2  # static first shape, then one dynamic-shape graph


def test_custom_ops_pass_torch_library_opcheck():
    """torch.library.opcheck: schema, fake implementation and autograd registration agree
    with what the real kernels do."""
    from tritonrnn.ops import recurrence_backward, recurrence_forward
    T, B, D, G, H = 2, 2, 2, 4, 3
    xp = torch.randn(T, B, D, G, H, requires_grad=True)
    whh = torch.randn(D, G * H, H, requires_grad=True)
    h0 = torch.randn(D, B, H, requires_grad=True)
    c0 = torch.randn(D, B, H, requires_grad=True)
    lengths = torch.tensor([2, 1], dtype=torch.int32)
    args = (xp, whh, None, None, h0, c0, lengths, "LSTM", True)
    torch.library.opcheck(recurrence_forward, args)
    y, h_n, c_n, act, cs = recurrence_forward(*args)
    assert y.shape == (T, B, D * H) and act.shape == (D, T, B, 4, H) and cs.shape == (D, T, B, H)
    y = y.detach().view(T, B, D, H)
    bwd_args = (torch.randn_like(y), torch.randn_like(h_n), torch.randn_like(c_n),
                act.detach(), cs.detach(), y, h0.detach(), c0.detach(), lengths,
                whh.detach(), None, "LSTM")
    torch.library.opcheck(recurrence_backward, bwd_args)


@pytest.mark.gpu
@pytest.mark.parametrize("kind", KINDS)
def test_layer_compiles_with_inductor_on_cuda(kind):
    options, _ = LAYER_CASES[kind]
    ref, tri = layer_pair(kind, 8, 16, proj_size=4, **options)
    ref, tri = ref.cuda(), tri.cuda()
    x = torch.randn(3, 5, 8, device="cuda")
    compiled = torch.compile(tri, fullgraph=True)
    outs, grads = _outputs_and_grads(compiled, tri, [x])
    ref_outs, ref_grads = _outputs_and_grads(ref, ref, [x])
    for i, (a, r) in enumerate(zip(outs, ref_outs)):
        assert_close(f"out{i}", a, r, "tf32")
    for i, (a, r) in enumerate(zip(grads, ref_grads)):
        assert_close(f"grad{i}", a, r, "tf32")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_compiles_fullgraph_under_cpu_autocast(kind):
    """The autocast rules (tritonrnn/amp.py) trace too: same dtypes and values as eager."""
    _, tri = layer_pair(kind, 3, 5)
    x = torch.randn(4, 2, 3)

    def run(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y, state = tri(x)
        return [y, *flat_state(state)]

    compiled, counter = _compile(run)
    outs, eager = compiled(x), run(x)
    assert counter.frame_count == 1
    for i, (a, e) in enumerate(zip(outs, eager)):
        assert a.dtype == e.dtype
        assert_close(f"out{i}", a, e)


@pytest.mark.parametrize("kind,enforce_sorted", [("lstm_proj", False), ("gru", True)],
                         ids=["lstm_proj-unsorted", "gru-sorted"])
def test_packed_input_compiles_fullgraph(kind, enforce_sorted):
    """A PackedSequence handed to the compiled layer: one graph (our unpack/re-pack are
    traceable gathers). With an initial state it is not: torch.nn's RNNBase.check_forward_args
    compares the state's size with batch_sizes[0], a data-dependent value."""
    ref, tri = layer_pair(kind, 3, 5, proj_size=2, bidirectional=True)
    lengths = torch.tensor([4, 3, 1] if enforce_sorted else [3, 4, 1])
    x = torch.randn(4, 3, 3)
    pack = lambda x: nn.utils.rnn.pack_padded_sequence(  # noqa: E731
        x, lengths, enforce_sorted=enforce_sorted)
    compiled, counter = _compile(lambda packed: tri(packed))
    results = []
    for fn in (compiled, ref):
        x_leaf = x.clone().requires_grad_(True)
        out, state = fn(pack(x_leaf))
        outs = [out.data, *flat_state(state)]
        results.append((outs, torch.autograd.grad(_loss(outs), x_leaf)[0]))
    assert counter.frame_count == 1
    (outs, grad), (ref_outs, ref_grad) = results
    for i, (a, e) in enumerate(zip(outs, ref_outs)):
        assert_close(f"out{i}", a, e)
    assert_close("grad x", grad, ref_grad)
