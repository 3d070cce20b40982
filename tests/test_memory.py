"""Memory: training keeps only what backward needs, never more per step than torch.nn, and
repeated forward/backward calls leave nothing behind.

Saved bytes are measured by bench.memory (saved_tensors_hooks: every tensor autograd keeps).
What backward needs per step, per sample and direction, in the layer's dtype:
  LSTM: the gates i, f, g, o (4H), the cell state c (H: backward needs c_t and c_{t-1}) and
        the output h (K: the previous step's h for the W_hh gradient);
  GRU:  r, z, n and W_hn h + b_hn (4H: the last for the gradient of r) and h (H);
  RNN:  h only (H: tanh'/relu' are functions of h, and h_{t-1} is the previous output);
plus the layer's input (I), which the W_ih gradient needs; a later layer's input is the
previous layer's output, already counted.
"""
import gc
import warnings
import weakref

import pytest
import torch

import tritonrnn
from bench.memory import saved_bytes_per_step

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

_PER_STEP_STATE = {"LSTM": lambda H, K: 4 * H + H + K, "GRU": lambda H, K: 4 * H + H,
                   "RNN_TANH": lambda H, K: H, "RNN_RELU": lambda H, K: H}

# (id, mode, I, H, proj, bidirectional, layers)
CONFIGS = [
    ("lstm", "LSTM", 6, 8, 0, False, 1),
    ("lstm-proj", "LSTM", 6, 8, 3, False, 1),
    ("gru-bidir", "GRU", 6, 8, 0, True, 1),
    ("rnn-relu", "RNN_RELU", 6, 8, 0, False, 1),
    ("lstm-bidir-2layers", "LSTM", 6, 8, 0, True, 2),
]


@pytest.mark.parametrize("mode,I,H,P,bidir,L,dtype", [
    *[pytest.param(*c[1:], torch.float32, id=c[0]) for c in CONFIGS],
    pytest.param(*CONFIGS[1][1:], torch.float16, id=CONFIGS[1][0] + "-fp16")])
def test_saved_bytes_per_step_is_what_backward_needs(mode, I, H, P, bidir, L, dtype):
    kw = dict(num_layers=L, bidirectional=bidir, proj_size=P, dtype=dtype)
    ours = saved_bytes_per_step("tritonrnn", mode, I, H, 2, **kw)["per_step_per_sample"]
    D, K = (2 if bidir else 1), (P or H)
    need = I + L * D * _PER_STEP_STATE[mode](H, K)
    itemsize = torch.empty((), dtype=dtype).element_size()
    assert ours == need * itemsize, f"saves {ours} bytes per step and sample, needs " \
                                    f"{need * itemsize}"
    if dtype == torch.float32:  # torch.nn's CPU kernels do not all exist in fp16
        theirs = saved_bytes_per_step("torch.nn", mode, I, H, 2, **kw)["per_step_per_sample"]
        assert ours <= theirs, f"tritonrnn saves {ours} bytes per step and sample, " \
                               f"torch.nn {theirs}"


def _live_tensors():
    gc.collect()
    with warnings.catch_warnings():  # isinstance on some lazily-imported modules warns
        warnings.simplefilter("ignore")
        return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))


@pytest.mark.parametrize("mode", ["LSTM"])
def test_no_growth_across_repeated_calls(mode):
    """Three training steps: after each, every tensor autograd saved is freed (weak references
    die) and the number of live tensors is the same as after the first (no cache, counter or
    saved context that grows per call)."""
    mod = getattr(tritonrnn, mode)(3, 4, num_layers=2, dropout=0.3)
    mod.train()
    counts = []
    for _ in range(3):
        saved = []

        def pack(t):
            saved.append(weakref.ref(t))
            return t

        x = torch.randn(3, 2, 3, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out, state = mod(x)
        loss = out.sum() + sum(s.sum() for s in (state if isinstance(state, tuple) else (state,)))
        loss.backward()
        del x, out, state, loss
        gc.collect()
        assert saved, "nothing was saved: the hook saw no training forward"
        alive = sum(r() is not None for r in saved)
        # parameters are saved too and stay alive with the module; nothing else may
        params = {id(p) for p in mod.parameters()}
        leaked = [r() for r in saved if r() is not None and id(r()) not in params]
        assert not leaked, f"{len(leaked)} of {alive} saved tensors outlive backward: " \
                           f"{[tuple(t.shape) for t in leaked]}"
        for p in mod.parameters():
            p.grad = None
        counts.append(_live_tensors())
    assert len(set(counts[1:])) == 1, f"live tensors after each call: {counts}"


@pytest.mark.parametrize("mode,proj", [("LSTM", 3), ("GRU", 0)], ids=["lstm-proj", "gru"])
def test_one_direction_keeps_no_weight_copy(mode, proj):
    """Apart from the parameters themselves, everything a one-directional layer saves grows
    with T (input, activations, outputs): no copy of a weight is held until backward.
    (Bidirectional layers join both directions' weights into one tensor for the kernel and
    keep that; see the README.)"""
    kw = dict(proj_size=proj) if proj else {}
    mod = getattr(tritonrnn, mode)(3, 8, num_layers=2, **kw)
    params = {p.untyped_storage().data_ptr() for p in mod.parameters()}

    def non_parameter_bytes(T):
        storages = {}

        def pack(t):
            s = t.untyped_storage()
            if s.data_ptr() not in params:
                storages[s.data_ptr()] = s.nbytes()
            return t

        x = torch.randn(T, 2, 3, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            mod(x)
        return sum(storages.values())

    assert non_parameter_bytes(4) == 2 * non_parameter_bytes(2)
