"""Export of converted models.

- torch.onnx.export (torch's default exporter): the layers record torch's own recurrent ops, so
  the ONNX model holds the same operators as torch.nn's export (ONNX LSTM and GRU nodes, the
  cells' Gemm graphs) and onnxruntime gives the same outputs; an LSTM with projections, which
  no ONNX operator expresses (torch.nn's own export of one fails in onnxruntime), is recorded
  as a plain-op loop and matches torch.nn's eager outputs.
- torch.export.export keeps tritonrnn's custom op, and the exported program runs.
"""
import copy
import io
import warnings

import pytest
import torch
from torch import nn

import tritonrnn
from tests.common import flat_state
from tests.tolerances import assert_close

ort = pytest.importorskip("onnxruntime", reason="onnxruntime has no wheel for this platform")
onnx = pytest.importorskip("onnx", reason="onnx has no wheel for this platform")
pytest.importorskip("onnxscript", reason="torch.onnx.export needs onnxscript")

pytestmark = [pytest.mark.filterwarnings("ignore:LSTM with projections is not supported"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning")]

# name -> (torch.nn class, constructor options)
CASES = {
    "rnn_relu": (nn.RNN, dict(nonlinearity="relu")),
    "lstm_bidirectional_2_layers": (nn.LSTM, dict(num_layers=2, bidirectional=True)),
    "gru_batch_first": (nn.GRU, dict(batch_first=True)),
    "lstm_proj": (nn.LSTM, dict(proj_size=2)),
    "rnn_cell": (nn.RNNCell, {}),
    "lstm_cell": (nn.LSTMCell, {}),
    "gru_cell": (nn.GRUCell, {}),
}


def _pair(case):
    cls, options = CASES[case]
    torch.manual_seed(0)
    ref = cls(3, 4, **options)
    return ref, tritonrnn.convert(copy.deepcopy(ref))


def _example(module):
    return torch.randn(2, 3) if isinstance(module, nn.RNNCellBase) else torch.randn(5, 2, 3)


def _flat(out):
    return [t for o in flat_state(out) for t in flat_state(o)]


def _onnx(module, x, **options):
    """(ONNX operator types, onnxruntime's outputs) of the exporter's model (torch's default
    exporter unless options say otherwise)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, (x,), **({"f": buffer} if options else {}),
                                    **options)
    proto = program.model_proto if program is not None else onnx.load_from_string(
        buffer.getvalue())
    session = ort.InferenceSession(proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    outs = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    return {node.op_type for node in proto.graph.node}, [torch.from_numpy(o) for o in outs]


@pytest.mark.parametrize("case", CASES)
def test_onnx_export_runs_in_onnxruntime_like_torch_nn(case):
    ref, tri = _pair(case)
    x = _example(ref)
    ops, outs = _onnx(tri, x)
    assert not any("tritonrnn" in op for op in ops)
    with torch.no_grad():
        expected = _flat(ref(x))
    assert len(outs) == len(expected)
    for o, e in zip(outs, expected):
        assert_close(case, o, e)
    if case == "lstm_proj":
        assert "LSTM" not in ops  # ONNX's LSTM has no projection: recorded as plain ops
        return
    ref_ops, ref_outs = _onnx(ref, x)
    assert ops == ref_ops
    if ref.__class__ in (nn.LSTM, nn.GRU):
        assert ref.__class__.__name__ in ops  # the standard ONNX operator
    for o, r in zip(outs, ref_outs):
        assert torch.equal(o, r)


@pytest.mark.parametrize("case", ["lstm_bidirectional_2_layers", "lstm_proj"])
def test_torchscript_based_onnx_exporter_too(case):
    """torch.onnx.export(..., dynamo=False), the exporter that was the default before torch
    2.9, records through torch.jit.trace: the same switch applies."""
    ref, tri = _pair(case)
    x = _example(ref)
    ops, outs = _onnx(tri, x, dynamo=False)
    assert ("LSTM" in ops) == (case != "lstm_proj")
    with torch.no_grad():
        for o, e in zip(outs, _flat(ref(x))):
            assert_close(case, o, e)


@pytest.mark.parametrize("case", ["lstm_bidirectional_2_layers", "gru_cell"])
def test_onnx_export_leaves_the_eager_model_on_the_kernels(case):
    """The export switches paths only while it records: afterwards the model runs the kernels
    again."""
    import tritonrnn.functional
    _, tri = _pair(case)
    x = _example(tri)
    _onnx(tri, x)
    calls = []
    op = tritonrnn.functional.recurrence_forward
    try:
        tritonrnn.functional.recurrence_forward = lambda *a: calls.append(a) or op(*a)
        tri(x)
    finally:
        tritonrnn.functional.recurrence_forward = op
    assert calls


@pytest.mark.parametrize("case", CASES)
def test_torch_export_keeps_the_custom_op_and_runs(case):
    ref, tri = _pair(case)
    x = _example(ref)
    program = torch.export.export(tri, (x,))
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert "tritonrnn.recurrence_forward.default" in targets
    x2 = _example(ref)
    with torch.no_grad():
        outs, expected = _flat(program.module()(x2)), _flat(ref(x2))
    for o, e in zip(outs, expected):
        assert_close(case, o, e)
