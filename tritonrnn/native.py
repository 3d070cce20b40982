"""torch's own recurrent implementation run with tritonrnn's weights: the fallback where the
Triton kernels cannot run (runtime.layer_path), for the modules and the functional API.

Dimension legend: T time, B batch, I input, H hidden, K width of h, D directions.
"""
import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

# PyTorch's native multi-layer implementations, one per mode; all take
# (input, [batch_sizes,] hx, weights, has_biases, num_layers, dropout, train, bidirectional
#  [, batch_first]).
_VF_LAYERS = {
    "RNN_TANH": torch._VF.rnn_tanh,
    "RNN_RELU": torch._VF.rnn_relu,
    "LSTM": torch._VF.lstm,
    "GRU": torch._VF.gru,
}


def layers(mode, input, batch_sizes, hx, flat_weights, has_biases, num_layers, dropout, train,
           bidirectional, batch_first=False):
    """Every layer in torch's implementation. input: padded ([T, B, I], or batch first) or,
    with batch_sizes, packed data. hx: the state ((h, c) for LSTM). flat_weights: torch.nn's
    _flat_weights order. Returns (output, state)."""
    leading = (input,) if batch_sizes is None else (input, batch_sizes)
    trailing = () if batch_sizes is not None else (batch_first,)
    result = _VF_LAYERS[mode](*leading, hx, flat_weights, has_biases, num_layers, dropout,
                              train, bidirectional, *trailing)
    if mode == "LSTM":
        return result[0], (result[1], result[2])
    return result[0], result[1]


def recurrent_layer(x, weights, mode, h0=None, c0=None, lengths=None):
    """functional.recurrent_layer's contract (one layer, all directions) in torch's
    implementation. Lengths must be positive (torch packs the sequences)."""
    T, B, _ = x.shape
    D = len(weights)
    w_hh0, b_ih0, w_hr0 = weights[0][1], weights[0][2], weights[0][4]
    K = w_hh0.shape[1]
    H = w_hr0.shape[1] if w_hr0 is not None else K
    lstm = mode == "LSTM"
    h0 = x.new_zeros(D, B, K) if h0 is None else h0
    c0 = (x.new_zeros(D, B, H) if c0 is None else c0) if lstm else None
    flat = [w for direction in weights for w in direction if w is not None]
    run = lambda data, batch_sizes, h, c: layers(  # noqa: E731
        mode, data, batch_sizes, (h, c) if lstm else h, flat, b_ih0 is not None, 1, 0.0, False,
        D == 2)
    if lengths is None:
        y, state = run(x, None, h0, c0)
    else:
        packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
        order = packed.sorted_indices
        y, state = run(packed.data, packed.batch_sizes, h0.index_select(1, order),
                       None if c0 is None else c0.index_select(1, order))
        y, _ = pad_packed_sequence(PackedSequence(y, packed.batch_sizes, order,
                                                  packed.unsorted_indices), total_length=T)
        back = packed.unsorted_indices
        state = tuple(s.index_select(1, back) for s in state) if lstm else \
            state.index_select(1, back)
    h_n, c_n = state if lstm else (state, None)
    return y, h_n, c_n
