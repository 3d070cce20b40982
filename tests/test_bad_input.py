"""Bad arguments and inputs fail exactly where torch.nn fails, with the same exception type.

A differential test: every entry of BAD_CALLS is one bad call written once against a
namespace (``torch.nn`` or ``tritonrnn``); it runs against torch.nn natively on CPU and against
tritonrnn under the interpreter (the default tier), and the two must raise the same exception
type. Our message must be informative: non-empty, and carrying every number and dtype that
torch's message carries (so "expected (1, 2, 4), got (1, 3, 4)" cannot become "bad hx").

Each call is made on a module that is otherwise valid, so exactly one thing is wrong.
The calls are grouped: constructor arguments (layers and cells), layer forward (batched,
unbatched, packed), cell forward (batched, unbatched). KNOWN_MISMATCHES lists the few calls
where torch raises an exception type we deliberately do not copy, each with the reason.

Devices: torch.nn and tritonrnn both refuse input and weights on different devices. Without a
second real device here, the "meta" device stands in for it: a CPU input reaching a kernel
with meta weights would crash inside the interpreter, so tritonrnn must refuse it first.
"""
import re
import traceback
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import tritonrnn

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

LIBS = {"torch.nn": nn, "tritonrnn": tritonrnn}

# Layer shapes used by the forward cases: I=3 inputs, H=4 hidden, T=5 steps, B=2 batch.
I, H, T, B = 3, 4, 5, 2


def _x(*shape, dtype=torch.float32):
    return torch.randn(*shape, dtype=dtype)


def _packed(lengths=(5, 3), data_dtype=torch.float32, features=I):
    x = torch.randn(T, len(lengths), features, dtype=data_dtype)
    return pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)


def _lstm_state(layers_dirs, batch, h_width=H, c_width=H):
    lead = (layers_dirs,) if batch is None else (layers_dirs, batch)
    return torch.randn(*lead, h_width), torch.randn(*lead, c_width)


# -- the bad calls ------------------------------------------------------------------------------
# Each entry: id -> function(lib) that builds what it needs from `lib` and makes one bad call.

CONSTRUCTOR = {
    # hidden_size / input_size: type and range (RNNBase's checks)
    "RNN-hidden0": lambda nn_: nn_.RNN(I, 0),
    "LSTM-hidden-negative": lambda nn_: nn_.LSTM(I, -2),
    "GRU-hidden-float": lambda nn_: nn_.GRU(I, 4.0),
    "LSTM-hidden-str": lambda nn_: nn_.LSTM(I, "4"),
    "RNN-input0": lambda nn_: nn_.RNN(0, H),
    "GRU-input-float": lambda nn_: nn_.GRU(3.5, H),
    "LSTM-input-none": lambda nn_: nn_.LSTM(None, H),
    # num_layers
    "RNN-layers0": lambda nn_: nn_.RNN(I, H, num_layers=0),
    "LSTM-layers-negative": lambda nn_: nn_.LSTM(I, H, num_layers=-1),
    "GRU-layers-float": lambda nn_: nn_.GRU(I, H, num_layers=1.5),
    # proj_size
    "LSTM-proj-negative": lambda nn_: nn_.LSTM(I, H, proj_size=-1),
    "LSTM-proj-equal-hidden": lambda nn_: nn_.LSTM(I, H, proj_size=H),
    "LSTM-proj-above-hidden": lambda nn_: nn_.LSTM(I, H, proj_size=H + 3),
    "RNN-proj": lambda nn_: nn_.RNN(I, H, proj_size=2),
    "GRU-proj": lambda nn_: nn_.GRU(I, H, proj_size=2),
    # dropout
    "LSTM-dropout-negative": lambda nn_: nn_.LSTM(I, H, num_layers=2, dropout=-0.1),
    "GRU-dropout-above-1": lambda nn_: nn_.GRU(I, H, num_layers=2, dropout=1.5),
    "RNN-dropout-str": lambda nn_: nn_.RNN(I, H, num_layers=2, dropout="0.5"),
    "LSTM-dropout-bool": lambda nn_: nn_.LSTM(I, H, num_layers=2, dropout=True),
    "GRU-dropout-none": lambda nn_: nn_.GRU(I, H, num_layers=2, dropout=None),
    # nonlinearity, by keyword and positionally (4th argument of torch.nn.RNN)
    "RNN-nonlinearity-kw": lambda nn_: nn_.RNN(I, H, nonlinearity="sigmoid"),
    "RNN-nonlinearity-positional": lambda nn_: nn_.RNN(I, H, 1, "gelu"),
    "RNN-nonlinearity-case": lambda nn_: nn_.RNN(I, H, nonlinearity="TANH"),
    # bias / batch_first types
    "LSTM-bias-str": lambda nn_: nn_.LSTM(I, H, bias="yes"),
    "GRU-bias-int": lambda nn_: nn_.GRU(I, H, bias=1),
    "RNN-batch-first-none": lambda nn_: nn_.RNN(I, H, batch_first=None),
    # unknown keyword
    "LSTM-unknown-kwarg": lambda nn_: nn_.LSTM(I, H, hiden_size=3),
    "GRU-too-many-positional": lambda nn_: nn_.GRU(I, H, 1, True, False, 0.0, False, 0, 7, 8, 9),
    # cells (constructors inherited from torch: still checked, a regression would show here)
    "RNNCell-hidden-negative": lambda nn_: nn_.RNNCell(I, -1),
    "LSTMCell-input-float": lambda nn_: nn_.LSTMCell(2.5, H),
    "GRUCell-hidden-str": lambda nn_: nn_.GRUCell(I, "4"),
    "LSTMCell-unknown-kwarg": lambda nn_: nn_.LSTMCell(I, H, proj_size=2),
}


def _call(make, args):
    """Build a valid module with make(lib) and call it with args (args built per call so the
    two libraries see equal but separate tensors)."""
    return lambda nn_: make(nn_)(*args())


LAYER_FORWARD = {
    # input dimensionality and size
    "RNN-input-1d": _call(lambda n: n.RNN(I, H), lambda: (_x(I),)),
    "LSTM-input-4d": _call(lambda n: n.LSTM(I, H), lambda: (_x(T, B, I, 1),)),
    "GRU-input-0d": _call(lambda n: n.GRU(I, H), lambda: (torch.tensor(1.0),)),
    "RNN-input-size-batched": _call(lambda n: n.RNN(I, H), lambda: (_x(T, B, I + 1),)),
    "LSTM-input-size-unbatched": _call(lambda n: n.LSTM(I, H), lambda: (_x(T, I - 1),)),
    "GRU-input-size-batch-first": _call(lambda n: n.GRU(I, H, batch_first=True),
                                        lambda: (_x(B, T, 2 * I),)),
    # dtype: input vs weights, state vs input, integer input
    "RNN-input-float64": _call(lambda n: n.RNN(I, H), lambda: (_x(T, B, I, dtype=torch.float64),)),
    "LSTM-input-float16": _call(lambda n: n.LSTM(I, H),
                                lambda: (_x(T, B, I, dtype=torch.float16),)),
    "GRU-input-int": _call(lambda n: n.GRU(I, H),
                           lambda: (torch.ones(T, B, I, dtype=torch.int64),)),
    "GRU-float64-model-float32-input": _call(lambda n: n.GRU(I, H, dtype=torch.float64),
                                             lambda: (_x(T, B, I),)),
    "RNN-hx-float64": _call(lambda n: n.RNN(I, H),
                            lambda: (_x(T, B, I), _x(1, B, H, dtype=torch.float64))),
    "LSTM-c0-float64": _call(lambda n: n.LSTM(I, H),
                             lambda: (_x(T, B, I), (_x(1, B, H),
                                                    _x(1, B, H, dtype=torch.float64)))),
    "GRU-unbatched-hx-float16": _call(lambda n: n.GRU(I, H),
                                      lambda: (_x(T, I), _x(1, H, dtype=torch.float16))),
    # h0 / c0 shapes, batched
    "RNN-hx-2d-batched": _call(lambda n: n.RNN(I, H), lambda: (_x(T, B, I), _x(B, H))),
    "GRU-hx-wrong-batch": _call(lambda n: n.GRU(I, H), lambda: (_x(T, B, I), _x(1, B + 1, H))),
    "RNN-hx-wrong-hidden": _call(lambda n: n.RNN(I, H), lambda: (_x(T, B, I), _x(1, B, H + 1))),
    "GRU-hx-wrong-layers": _call(lambda n: n.GRU(I, H, num_layers=2),
                                 lambda: (_x(T, B, I), _x(1, B, H))),
    "RNN-hx-not-bidirectional": _call(lambda n: n.RNN(I, H, bidirectional=True),
                                      lambda: (_x(T, B, I), _x(1, B, H))),
    "GRU-hx-batch-first-layout": _call(lambda n: n.GRU(I, H, batch_first=True),
                                       lambda: (_x(B, T, I), _x(B, 1, H))),
    "LSTM-h0-wrong-batch": _call(lambda n: n.LSTM(I, H),
                                 lambda: (_x(T, B, I), _lstm_state(1, B + 1))),
    "LSTM-c0-wrong-hidden": _call(lambda n: n.LSTM(I, H),
                                  lambda: (_x(T, B, I), _lstm_state(1, B, c_width=H + 2))),
    "LSTM-c0-2d-batched": _call(lambda n: n.LSTM(I, H),
                                lambda: (_x(T, B, I), (_x(1, B, H), _x(B, H)))),
    "LSTM-proj-h0-hidden-width": _call(lambda n: n.LSTM(I, H, proj_size=2),
                                       lambda: (_x(T, B, I), _lstm_state(1, B, h_width=H))),
    "LSTM-proj-c0-proj-width": _call(lambda n: n.LSTM(I, H, proj_size=2),
                                     lambda: (_x(T, B, I), _lstm_state(1, B, h_width=2,
                                                                       c_width=2))),
    "LSTM-hx-single-tensor": _call(lambda n: n.LSTM(I, H), lambda: (_x(T, B, I), _x(1, B, H))),
    "LSTM-hx-wrong-layers-bidir": _call(lambda n: n.LSTM(I, H, num_layers=2, bidirectional=True),
                                        lambda: (_x(T, B, I), _lstm_state(2, B))),
    # h0 / c0 shapes, unbatched
    "RNN-unbatched-hx-3d": _call(lambda n: n.RNN(I, H), lambda: (_x(T, I), _x(1, 1, H))),
    "GRU-unbatched-hx-1d": _call(lambda n: n.GRU(I, H), lambda: (_x(T, I), _x(H))),
    "RNN-unbatched-hx-wrong-hidden": _call(lambda n: n.RNN(I, H),
                                           lambda: (_x(T, I), _x(1, H + 1))),
    "LSTM-unbatched-c0-3d": _call(lambda n: n.LSTM(I, H),
                                  lambda: (_x(T, I), (_x(1, H), _x(1, 1, H)))),
    "LSTM-unbatched-h0-wrong-layers": _call(lambda n: n.LSTM(I, H),
                                            lambda: (_x(T, I), _lstm_state(2, None))),
    # zero-length sequences (zero batch is valid: see test_extreme_sizes.py)
    "LSTM-T0": _call(lambda n: n.LSTM(I, H), lambda: (_x(0, B, I),)),
    "GRU-T0-batch-first": _call(lambda n: n.GRU(I, H, batch_first=True), lambda: (_x(B, 0, I),)),
    "RNN-T0-unbatched": _call(lambda n: n.RNN(I, H), lambda: (_x(0, I),)),
    # packed input
    "RNN-packed-input-size": _call(lambda n: n.RNN(I, H), lambda: (_packed(features=I + 2),)),
    "GRU-packed-float64": _call(lambda n: n.GRU(I, H),
                                lambda: (_packed(data_dtype=torch.float64),)),
    "LSTM-packed-float64": _call(lambda n: n.LSTM(I, H),
                                 lambda: (_packed(data_dtype=torch.float64),)),
    "RNN-packed-hx-wrong-batch": _call(lambda n: n.RNN(I, H),
                                       lambda: (_packed(lengths=(5, 3, 2)), _x(1, 2, H))),
    "GRU-packed-hx-wrong-hidden": _call(lambda n: n.GRU(I, H),
                                        lambda: (_packed(), _x(1, 2, H + 1))),
    "GRU-packed-hx-2d": _call(lambda n: n.GRU(I, H), lambda: (_packed(), _x(2, H))),
    "LSTM-packed-c0-wrong-hidden": _call(lambda n: n.LSTM(I, H),
                                        lambda: (_packed(), (_x(1, 2, H), _x(1, 2, H + 1)))),
    "LSTM-packed-hx-2d": _call(lambda n: n.LSTM(I, H),
                               lambda: (_packed(), (_x(2, H), _x(2, H)))),
    "LSTM-packed-h0-float64": _call(lambda n: n.LSTM(I, H),
                                    lambda: (_packed(), (_x(1, 2, H, dtype=torch.float64),
                                                         _x(1, 2, H)))),
    "GRU-packed-hx-float64": _call(lambda n: n.GRU(I, H),
                                   lambda: (_packed(), _x(1, 2, H, dtype=torch.float64))),
    "RNN-packed-hx-missing-direction": _call(lambda n: n.RNN(I, H, bidirectional=True),
                                             lambda: (_packed(), _x(1, 2, H))),
    # more dtypes
    "RNN-input-bool": _call(lambda n: n.RNN(I, H),
                            lambda: (torch.ones(T, B, I, dtype=torch.bool),)),
    "GRU-input-complex": _call(lambda n: n.GRU(I, H),
                               lambda: (torch.ones(T, B, I, dtype=torch.complex64),)),
    "LSTM-float16-model-float32-state": _call(
        lambda n: n.LSTM(I, H, dtype=torch.float16),
        lambda: (_x(T, B, I, dtype=torch.float16), _lstm_state(1, B))),
    # LSTM state arity
    "LSTM-hx-three-tensors": _call(lambda n: n.LSTM(I, H),
                                   lambda: (_x(T, B, I), (*_lstm_state(1, B), _x(1, B, H)))),
    "LSTM-hx-one-tensor-tuple": _call(lambda n: n.LSTM(I, H),
                                      lambda: (_x(T, B, I), (_x(1, B, H),))),
    # not a tensor
    "GRU-input-list": _call(lambda n: n.GRU(I, H), lambda: ([[1.0, 2.0, 3.0]],)),
    "RNN-hx-tuple": _call(lambda n: n.RNN(I, H), lambda: (_x(T, B, I), (_x(1, B, H),))),
    # devices: "meta" stands in for a second device (see the module docstring)
    "LSTM-weights-other-device": _call(lambda n: n.LSTM(I, H, device="meta"),
                                       lambda: (_x(T, B, I),)),
    "GRU-input-other-device": _call(lambda n: n.GRU(I, H), lambda: (_x(T, B, I).to("meta"),)),
    "RNN-hx-other-device": _call(lambda n: n.RNN(I, H),
                                 lambda: (_x(T, B, I), _x(1, B, H).to("meta"))),
    "LSTM-c0-other-device": _call(lambda n: n.LSTM(I, H),
                                  lambda: (_x(T, B, I), (_x(1, B, H), _x(1, B, H).to("meta")))),
    "GRU-packed-hx-other-device": _call(lambda n: n.GRU(I, H),
                                        lambda: (_packed(lengths=(5, 5)), _x(1, 2, H).to("meta"))),
}

# A cell whose nonlinearity was changed after construction: torch.nn only finds out at forward.
def _cell_with_nonlinearity(n, name):
    cell = n.RNNCell(I, H)
    cell.nonlinearity = name
    return cell


CELL_FORWARD = {
    "RNNCell-input-3d": _call(lambda n: n.RNNCell(I, H), lambda: (_x(1, B, I),)),
    "LSTMCell-input-0d": _call(lambda n: n.LSTMCell(I, H), lambda: (torch.tensor(2.0),)),
    "GRUCell-hx-3d": _call(lambda n: n.GRUCell(I, H), lambda: (_x(B, I), _x(1, B, H))),
    "LSTMCell-c-3d": _call(lambda n: n.LSTMCell(I, H), lambda: (_x(B, I), (_x(B, H),
                                                                          _x(1, B, H)))),
    "RNNCell-input-size": _call(lambda n: n.RNNCell(I, H), lambda: (_x(B, I + 1),)),
    "GRUCell-input-size-unbatched": _call(lambda n: n.GRUCell(I, H), lambda: (_x(I + 2),)),
    "RNNCell-batch-mismatch": _call(lambda n: n.RNNCell(I, H), lambda: (_x(B, I), _x(B + 1, H))),
    "GRUCell-batch-mismatch": _call(lambda n: n.GRUCell(I, H), lambda: (_x(B, I), _x(B + 2, H))),
    "LSTMCell-h-batch-mismatch": _call(lambda n: n.LSTMCell(I, H),
                                       lambda: (_x(B, I), (_x(B + 1, H), _x(B, H)))),
    "LSTMCell-c-batch-mismatch": _call(lambda n: n.LSTMCell(I, H),
                                       lambda: (_x(B, I), (_x(B, H), _x(B + 1, H)))),
    "RNNCell-hidden-mismatch": _call(lambda n: n.RNNCell(I, H), lambda: (_x(B, I), _x(B, H + 1))),
    "GRUCell-hidden-mismatch-unbatched": _call(lambda n: n.GRUCell(I, H),
                                               lambda: (_x(I), _x(H - 1))),
    "LSTMCell-c-hidden-mismatch": _call(lambda n: n.LSTMCell(I, H),
                                        lambda: (_x(B, I), (_x(B, H), _x(B, H + 3)))),
    "GRUCell-unbatched-input-batched-hx": _call(lambda n: n.GRUCell(I, H),
                                                lambda: (_x(I), _x(B, H))),
    "RNNCell-batched-input-1d-hx": _call(lambda n: n.RNNCell(I, H), lambda: (_x(B, I), _x(H))),
    "RNNCell-input-float64": _call(lambda n: n.RNNCell(I, H),
                                   lambda: (_x(B, I, dtype=torch.float64),)),
    "LSTMCell-hx-float64": _call(lambda n: n.LSTMCell(I, H),
                                 lambda: (_x(B, I), (_x(B, H, dtype=torch.float64),
                                                     _x(B, H, dtype=torch.float64)))),
    "GRUCell-input-int": _call(lambda n: n.GRUCell(I, H),
                               lambda: (torch.ones(B, I, dtype=torch.int64),)),
    "LSTMCell-hx-single-tensor": _call(lambda n: n.LSTMCell(I, H), lambda: (_x(B, I), _x(B, H))),
    "LSTMCell-hx-one-element-tuple": _call(lambda n: n.LSTMCell(I, H),
                                           lambda: (_x(B, I), (_x(B, H),))),
    "RNNCell-unknown-nonlinearity": _call(lambda n: _cell_with_nonlinearity(n, "gelu"),
                                          lambda: (_x(B, I),)),
    "RNNCell-unknown-nonlinearity-unbatched": _call(
        lambda n: _cell_with_nonlinearity(n, "sigmoid"), lambda: (_x(I), _x(H))),
    "GRUCell-input-list": _call(lambda n: n.GRUCell(I, H), lambda: ([1.0, 2.0, 3.0],)),
    # a 1-D state whose size happens to equal the batch passes the batch check, then fails the
    # hidden-size check on its missing dimension 1
    "RNNCell-1d-hx-size-equals-batch": _call(lambda n: n.RNNCell(I, H), lambda: (_x(B, I), _x(B))),
    "LSTMCell-1d-hx-size-equals-batch": _call(lambda n: n.LSTMCell(I, H),
                                              lambda: (_x(B, I), (_x(B), _x(B)))),
    "LSTMCell-hx-three-tensors": _call(lambda n: n.LSTMCell(I, H),
                                       lambda: (_x(B, I), (_x(B, H), _x(B, H), _x(B, H)))),
    "LSTMCell-unbatched-hx-one-tensor": _call(lambda n: n.LSTMCell(I, H),
                                              lambda: (_x(I), (_x(H),))),
    "GRUCell-hx-int": _call(lambda n: n.GRUCell(I, H),
                            lambda: (_x(B, I), torch.ones(B, H, dtype=torch.int64))),
    "GRUCell-weights-other-device": _call(lambda n: n.GRUCell(I, H, device="meta"),
                                          lambda: (_x(B, I),)),
    "LSTMCell-c-other-device": _call(lambda n: n.LSTMCell(I, H),
                                     lambda: (_x(B, I), (_x(B, H), _x(B, H).to("meta")))),
    "RNNCell-unbatched-hx-other-device": _call(lambda n: n.RNNCell(I, H),
                                               lambda: (_x(I), _x(H).to("meta"))),
}

BAD_CALLS = {**CONSTRUCTOR, **LAYER_FORWARD, **CELL_FORWARD}

# Calls where torch raises an exception type we do not copy, and why (none at present).
KNOWN_MISMATCHES = {}


def _outcome(fn, lib):
    """(exception or None) of calling fn(lib) with fixed random numbers."""
    torch.manual_seed(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(LIBS[lib])
    except Exception as err:  # noqa: BLE001 -- the exception is what we compare
        return err
    return None


# torch's C++ messages name dtypes by their C++ scalar type; ours use torch.dtype names.
_CPP_DTYPES = {"Double": "float64", "Float": "float32", "Half": "float16",
               "BFloat16": "bfloat16", "Long": "int64", "Int": "int32"}


def _facts(message):
    """The sizes and dtype names in a message: what makes it informative. Digits inside words
    ("mat1") are not sizes; "Double" and "torch.float64" are the same fact."""
    sizes = set(re.findall(r"(?<![A-Za-z_\d])\d+", message))
    dtypes = {m for m in re.findall(r"torch\.(\w+)", message)}
    dtypes |= {v for k, v in _CPP_DTYPES.items() if re.search(rf"\b{k}\b", message)}
    return sizes | dtypes


@pytest.mark.parametrize("call_id", list(BAD_CALLS))
def test_bad_call_raises_like_torch(call_id):
    fn = BAD_CALLS[call_id]
    ref = _outcome(fn, "torch.nn")
    ours = _outcome(fn, "tritonrnn")
    assert ref is not None, \
        f"{call_id}: torch.nn accepts this call; it is not a bad call (test bug)"
    if call_id not in CONSTRUCTOR:  # a forward call must fail inside torch, not in our lambda
        raised_at = traceback.extract_tb(ref.__traceback__)[-1].filename
        assert raised_at != __file__, f"{call_id}: the call itself is broken: {ref!r} (test bug)"
    assert ours is not None, f"{call_id}: torch.nn raises {type(ref).__name__}({ref}) but " \
                             f"tritonrnn accepts the call"
    expected_type = type(ref)
    if call_id in KNOWN_MISMATCHES:
        torch_type, our_type = KNOWN_MISMATCHES[call_id]
        assert type(ref) is torch_type, f"{call_id}: torch.nn now raises {type(ref).__name__}; " \
                                        "update KNOWN_MISMATCHES"
        expected_type = our_type
    assert type(ours) is expected_type, (
        f"{call_id}: torch.nn raises {type(ref).__name__}({ref}); tritonrnn raises "
        f"{type(ours).__name__}({ours})")
    message = str(ours)
    assert message.strip(), f"{call_id}: empty message"
    missing = _facts(str(ref)) - _facts(message)
    assert not missing, f"{call_id}: our message {message!r} lacks {sorted(missing)} that " \
                        f"torch's message {str(ref)!r} gives"


@pytest.mark.gpu
@pytest.mark.parametrize("lib", ["torch.nn", "tritonrnn"])
def test_cpu_and_cuda_mixed(lib):
    """With a real second device: CUDA weights with a CPU input, and a CUDA input with a CPU
    state, raise RuntimeError (no kernel launched with a host pointer)."""
    mod = LIBS[lib].LSTM(I, H).cuda()
    with pytest.raises(RuntimeError, match="device"):
        mod(_x(T, B, I))
    with pytest.raises(RuntimeError, match="device"):
        mod(_x(T, B, I).cuda(), _lstm_state(1, B))
