"""Plain-PyTorch recurrence loop: the oracle for tests and benchmarks.

Same contract as :func:`tritonrnn.functional.recurrent_layer`, written with ordinary
autograd-tracked torch ops, one Python step per timestep, in whatever dtype it is given
(float64 makes it the high-precision reference).

Dimension legend: T time, B batch, I input, H hidden, P projection, K = P if projecting
else H (width of h), G gates (LSTM 4, GRU 3, RNN 1), D directions.
"""
import torch

from tritonrnn.kernels import cells


def cell_step(mode, x_proj, h, c, w_hh, b_hh, w_hr):
    """One step of one cell.

    x_proj: [B, G*H] input projection including b_ih (but not b_hh).
    h: [B, K]; c: [B, H] or None. Returns (h_new [B, K], c_new or None).
    """
    h_proj = h @ w_hh.t()
    if b_hh is not None:
        h_proj = h_proj + b_hh
    if mode == "LSTM":
        i, f, g, o = (x_proj + h_proj).chunk(4, dim=1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        if w_hr is not None:
            h_new = h_new @ w_hr.t()
        return h_new, c_new
    if mode == "GRU":
        xr, xz, xn = x_proj.chunk(3, dim=1)
        hr, hz, hn = h_proj.chunk(3, dim=1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return (1 - z) * n + z * h, None
    pre = x_proj + h_proj
    return (torch.tanh(pre) if mode == "RNN_TANH" else torch.relu(pre)), None


def recurrent_layer(x, weights, mode, h0=None, c0=None, lengths=None):
    """One layer, all directions (len(weights) == D). See functional.recurrent_layer."""
    T, B, _ = x.shape
    D = len(weights)
    w_hh0, w_hr0 = weights[0][1], weights[0][4]
    H = w_hh0.shape[0] // cells.lookup(mode).gates
    K = w_hr0.shape[0] if w_hr0 is not None else H
    if h0 is None:
        h0 = x.new_zeros(D, B, K)
    if mode == "LSTM" and c0 is None:
        c0 = x.new_zeros(D, B, H)
    outputs, h_n, c_n = [], [], []
    for d, (w_ih, w_hh, b_ih, b_hh, w_hr) in enumerate(weights):
        x_proj = x @ w_ih.t()
        if b_ih is not None:
            x_proj = x_proj + b_ih
        c = c0[d] if mode == "LSTM" else None
        y_d, h, c = direction(mode, x_proj, h0[d], c, w_hh, b_hh, w_hr, lengths, d == 1)
        outputs.append(y_d)
        h_n.append(h)
        c_n.append(c)
    y = torch.cat(outputs, dim=2)
    return y, torch.stack(h_n), (torch.stack(c_n) if mode == "LSTM" else None)


def direction(mode, x_proj, h, c, w_hh, b_hh, w_hr, lengths, reverse):
    """One direction over the whole sequence. x_proj: [T, B, G*H] input projection including
    b_ih; h: [B, K]; c: [B, H] or None; lengths: int [B] or None (all T); reverse: run from
    each element's last valid step back to 0. Returns (y [T, B, K], h_n [B, K], c_n or None)."""
    T, B, _ = x_proj.shape
    if lengths is None:
        lengths = torch.full((B,), T, dtype=torch.int64)
    lengths = lengths.to(x_proj.device)
    steps = range(T - 1, -1, -1) if reverse else range(T)
    ys = [None] * T
    for t in steps:
        valid = (t < lengths).unsqueeze(1)  # [B, 1]
        h_new, c_new = cell_step(mode, x_proj[t], h, c, w_hh, b_hh, w_hr)
        ys[t] = torch.where(valid, h_new, torch.zeros_like(h_new))
        h = torch.where(valid, h_new, h)
        if c is not None:
            c = torch.where(valid, c_new, c)
    y = torch.stack(ys) if T > 0 else x_proj.new_zeros(0, B, h.shape[1])
    return y, h, c
