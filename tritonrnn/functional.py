"""Functional entry point: one recurrent layer (all directions) on the Triton kernels."""
from . import reference
from . import autograd
from .runtime import kernels_run


def _check_same_device(x, weights, h0, c0):
    """torch.nn's device checks, with its messages: a kernel handed pointers to two devices
    would read the wrong memory or crash inside the kernel, so refuse before any launch."""
    for w in (w for direction in weights for w in direction if w is not None):
        if w.device != x.device:
            raise RuntimeError("Input and parameter tensors are not at the same device, found "
                               f"input tensor at {x.device} and parameter tensor at {w.device}")
    for s in (h0, c0):
        if s is not None and s.device != x.device:
            raise RuntimeError("Input and hidden tensors are not at the same device, found "
                               f"input tensor at {x.device} and hidden tensor at {s.device}")


def recurrent_layer(x, weights, mode, h0=None, c0=None, lengths=None):
    """Run one recurrent layer over a padded, time-major sequence.

    x: [T, B, I]. weights: one tuple per direction (forward first, then reverse):
    (w_ih [G*H, I], w_hh [G*H, K], b_ih [G*H] | None, b_hh [G*H] | None, w_hr [P, H] | None),
    in torch.nn's gate order (LSTM i,f,g,o; GRU r,z,n).
    mode: "RNN_TANH" | "RNN_RELU" | "LSTM" | "GRU".
    h0: [D, B, K] or None (zeros). c0: [D, B, H] or None (zeros; LSTM only).
    lengths: int64 [B] or None: valid length of each batch element (<= T). Outputs at
    t >= lengths[b] are zero; h_n/c_n hold each element's state at its own last valid step;
    the reverse direction starts at lengths[b] - 1.
    Returns (y [T, B, D*K], h_n [D, B, K], c_n [D, B, H] or None); differentiable in
    x, h0, c0 and every weight.

    Runs the Triton kernels on CUDA tensors, and on CPU tensors under TRITON_INTERPRET=1;
    anywhere else, and while torch.jit.trace or torch.onnx.export records it, it runs the
    plain-PyTorch reference loop.
    """
    _check_same_device(x, weights, h0, c0)
    if not kernels_run(x):
        return reference.recurrent_layer(x, weights, mode, h0, c0, lengths)
    flat = [w for direction in weights for w in direction]
    return autograd.layer(mode, lengths, x, h0, c0, flat)
