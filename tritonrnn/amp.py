"""Autocast: run the layers in the dtypes torch.nn's own layers use under ``torch.autocast``.

The kernels compute in one dtype (input, states and weights alike), while autocast would cast
only some of the ops around them (our input projection is an ``addmm``, which autocast lowers,
the recurrence op is not in its lists). So inside a layer autocast is switched off, and the
layer casts its inputs, states and weights to one compute dtype and its outputs to the dtypes
torch.nn returns in the same situation:

CUDA (``torch.autocast("cuda", dtype)``)
  - RNN, LSTM, GRU: torch.nn runs them through cuDNN, whose autocast wrapper
    (aten/src/ATen/cudnn/AutocastRNN.cpp, ``_cudnn_rnn_cast_reflatten``) casts input, states
    and weights to **float16, whatever the autocast dtype** (bfloat16 included); every
    output is float16.
  - the cells: ``lstm_cell``, ``gru_cell``, ``rnn_tanh_cell``, ``rnn_relu_cell`` are in
    autocast's lower-precision list, so they compute in the autocast dtype and return it.
CPU (``torch.autocast("cpu", dtype)``, bfloat16 by default)
  torch.nn's CPU layers are compositions of ops, and only their matmuls (``linear``) are in
  the lower-precision list; the pointwise cell math then follows type promotion with the
  state, which starts in the input's dtype unless given. Outputs therefore are:
  - RNN, RNNCell: h = act(linear + linear): the autocast dtype.
  - GRU, GRUCell: h = (h_prev - n) * z + n: the state's dtype (float32 for float32 input).
  - LSTM, LSTMCell: c = f * c_prev + i * g and h = o * tanh(c): the state's dtype; with
    ``proj_size`` h = linear(...) is in the autocast dtype while c keeps the state's dtype.
    Except that torch.nn.LSTM without projections on padded (not packed) input takes
    oneDNN's LSTM (``mkldnn_rnn_layer``, itself in the list) whenever
    ``torch.backends.mkldnn`` is enabled: then every output is in the autocast dtype.
  We compute in the dtype of the state (h for GRU/RNN, c for LSTM) and cast outputs to the
  dtypes above.

float64 (and non-floating) inputs are left alone by autocast and by us.
"""
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Cast:
    """How to run one layer under autocast: compute dtype and the dtype of each output."""
    device_type: str
    compute: torch.dtype
    y: torch.dtype
    h: torch.dtype
    c: torch.dtype

    def inputs(self, *tensors):
        return tuple(None if t is None else t.to(self.compute) for t in tensors)

    def weights(self, by_layer):
        """Per layer, recurrent_layer's per-direction weight tuples cast to the compute dtype
        (autograd-tracked, so the fp32 parameters receive the gradients)."""
        return [[tuple(None if w is None else w.to(self.compute) for w in tup) for tup in layer]
                for layer in by_layer]


def run(cast, layers, x, h0, c0, weights):
    """The one autocast wrapper, for layers and cells alike: layers(x, h0, c0, weights) ->
    (y, h_n, c_n or None), run as it is when `cast` is None (autocast off, or x not a dtype it
    changes), else with autocast switched off, its tensors in cast.compute and its outputs in
    the dtypes torch.nn returns. weights: per layer, the per-direction weight tuples."""
    if cast is None:
        return layers(x, h0, c0, weights)
    with torch.autocast(cast.device_type, enabled=False):
        y, h_n, c_n = layers(*cast.inputs(x, h0, c0), cast.weights(weights))
    return y.to(cast.y), h_n.to(cast.h), (None if c_n is None else c_n.to(cast.c))


def _eligible(t):
    return t.is_floating_point() and t.dtype != torch.float64


@torch.compiler.assume_constant_result
def _onednn_enabled():
    """Whether torch.nn's CPU LSTM would take oneDNN. Read as a constant while torch.compile
    traces (Dynamo does not trace torch.backends); flipping the flag later does not
    recompile."""
    return torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled


def plan(mode, device_type, x, state_dtype, proj=False, for_cell=False, packed=False):
    """The Cast for a layer (for_cell=False) or cell (for_cell=True) with input x (packed: the
    layer's input was a PackedSequence), or None when autocast is off for x's device or x
    is not a dtype autocast changes. mode: torch.nn's mode string ("LSTM", ...)

    state_dtype: dtype of the given initial state (c for LSTM, else h), None if defaulted."""
    if not torch.is_autocast_enabled(device_type) or not _eligible(x):
        return None
    lower = torch.get_autocast_dtype(device_type)
    if device_type == "cuda":
        low = lower if for_cell else torch.float16  # cuDNN's wrapper hard-codes half
        return Cast(device_type, low, low, low, low)
    state = torch.promote_types(lower, state_dtype or x.dtype)
    if mode in ("RNN_TANH", "RNN_RELU"):
        return Cast(device_type, lower, lower, lower, lower)
    if mode == "GRU":
        return Cast(device_type, state, state, state, state)
    if not (for_cell or proj or packed) and _onednn_enabled():
        return Cast(device_type, lower, lower, lower, lower)  # oneDNN LSTM
    h = lower if proj else state
    return Cast(device_type, state, h, h, state)
