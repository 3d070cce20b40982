"""Functional entry point: one recurrent layer (all directions), on the Triton kernels where
they run (tritonrnn/runtime.py's policy decides; tritonrnn/native.py elsewhere).

Legend: T time, B batch, I input, H hidden, K width of h (P if projecting else H),
G gates, D directions.
"""
import torch

from tritonrnn.kernels import cells

from . import native, reference, runtime
from .ops import project, recurrence_forward


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
    anywhere else, and while torch.jit.trace or torch.onnx.export records it, torch's own
    implementation with the same weights (lengths must then be positive, as torch packs the
    sequences); an LSTM with projections exported to ONNX records the reference loop
    (runtime.layer_path).
    """
    _check_same_device(x, weights, h0, c0)
    path = runtime.layer_path(x, projects=weights[0][4] is not None)
    if path == runtime.KERNELS:
        return _on_kernels(x, weights, mode, h0, c0, lengths)
    if path == runtime.REFERENCE:
        return reference.recurrent_layer(x, weights, mode, h0, c0, lengths)
    return native.recurrent_layer(x, weights, mode, h0, c0, lengths)


def _input_bias(cell, b_ih, b_hh, H):
    """Bias added to the input projection: b_ih + b_hh, except GRU's b_hn, which sits inside
    r * (W_hn h + b_hn) and goes to the kernel separately."""
    if cell == "GRU":
        return b_ih + torch.cat([b_hh[:2 * H], torch.zeros_like(b_hh[2 * H:])])
    return b_ih + b_hh


def _joined(join, tensors):
    """join(tensors) (torch.cat or torch.stack), contiguous. One direction needs no join: the
    weight itself (or a view of it) is used and saved, so training holds no copy of it."""
    if len(tensors) == 1:
        return (tensors[0] if join is torch.cat else tensors[0].unsqueeze(0)).contiguous()
    return join(tensors).contiguous()


def _on_kernels(x, per_direction, cell, h0, c0, lengths):
    """recurrent_layer on the kernels: one GEMM projects every timestep's input for both
    directions at once (ordinary torch ops, so autograd differentiates it and torch.compile
    sees it), then one launch of the recurrence op runs the layer (directions are a grid
    axis); its backward is registered with the op (tritonrnn/ops.py)."""
    T, B, I = x.shape
    D = len(per_direction)
    G = cells.lookup(cell).gates
    w_hh0, b_ih0, w_hr0 = per_direction[0][1], per_direction[0][2], per_direction[0][4]
    H = w_hh0.shape[0] // G
    w_ih = _joined(torch.cat, [w[0] for w in per_direction])  # [D*G*H, I]
    x2d = x.reshape(T * B, I)
    b_in = None  # [D*G*H]
    if b_ih0 is not None:
        b_in = torch.cat([_input_bias(cell, w[2], w[3], H) for w in per_direction])
    xp = project(x2d, w_ih, b_in).view(T, B, D, G, H)
    whh = _joined(torch.stack, [w[1] for w in per_direction])  # [D, G*H, K]
    bhn = None
    if cell == "GRU" and b_ih0 is not None:
        bhn = torch.stack([w[3][2 * H:] for w in per_direction])  # [D, H]
    whr = None  # [D, K, H] when projecting
    if w_hr0 is not None:
        whr = _joined(torch.stack, [w[4] for w in per_direction])
    lengths = None if lengths is None else lengths.to(device=x.device, dtype=torch.int32)
    # Keep what backward reads only when a gradient can be asked for. Under torch.compile
    # requires_grad is known while tracing, so this is a constant of the graph.
    training = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (xp, whh, bhn, whr, h0, c0))
    # y comes out as [T, B, D*K], not a view of the op's output: wrappers such as FSDP2 hook
    # the layer's output and warn about views (an in-place op on one would skip the hook).
    y, h_n, c_n, _, _ = recurrence_forward(xp, whh, bhn, whr, h0, c0, lengths, cell, training,
                                           x2d, w_ih, b_in)
    return y, h_n, (c_n if cells.lookup(cell).has_c else None)
