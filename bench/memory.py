"""Bytes that training keeps for backward, per timestep: tritonrnn against torch.nn.

Measured, not derived from the code: a ``torch.autograd.graph.saved_tensors_hooks`` pack hook
sees every tensor autograd saves during one forward pass, and each distinct storage is counted
once at its full size (views of one buffer, and a layer's output saved again as the next
layer's input, count once; a slice keeps its whole buffer alive, so the whole buffer counts).
Two sequence lengths are measured; the difference divided by the difference in steps is the
per-step figure, and what is left (parameters, states, per-call workspace) is the fixed part.

On CPU, tritonrnn's numbers need Triton's interpreter (``TRITON_INTERPRET=1`` before import;
``python -m bench.memory`` sets it when there is no GPU), else the layers delegate to torch's
native code and the measurement would be torch's. torch.nn on CPU has two paths: PyTorch's
own loop of ATen ops (measured with oneDNN off, the default here: its saved tensors grow
linearly with T) and oneDNN's fused RNN (used when oneDNN is on), whose workspace grows in
large chunks, so it only has an amortised per-step figure over long sequences. cuDNN keeps
yet another (opaque) reserve buffer; these torch.nn figures are for the CPU paths.

    python -m bench.memory            # table for a few configurations
"""
import os
import warnings

if __name__ == "__main__" and "TRITON_INTERPRET" not in os.environ:
    import torch as _torch  # noqa: E402
    if not _torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"  # before tritonrnn/triton are imported

import torch  # noqa: E402
from torch import nn  # noqa: E402

import tritonrnn  # noqa: E402
from tritonrnn import runtime  # noqa: E402

# mode -> (class name in torch.nn and tritonrnn, extra constructor arguments)
_CLASSES = {"RNN_TANH": ("RNN", {"nonlinearity": "tanh"}),
            "RNN_RELU": ("RNN", {"nonlinearity": "relu"}),
            "LSTM": ("LSTM", {}), "GRU": ("GRU", {})}


def saved_bytes(module, x, hx=None):
    """Bytes of the distinct storages autograd saves during module(x, hx) (forward only)."""
    storages = {}

    def pack(t):
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x, hx)
    return sum(storages.values())


def saved_bytes_per_step(impl, mode, input_size, hidden_size, batch, *, num_layers=1,
                         bidirectional=False, proj_size=0, dtype=torch.float32, device="cpu",
                         steps=(2, 6), onednn=False):
    """Bytes saved for backward by one training forward, split into a per-timestep part and a
    fixed part.

    impl: "tritonrnn" or "torch.nn". mode: "LSTM", "GRU", "RNN_TANH" or "RNN_RELU".
    The input requires grad and the parameters do (training). Returns a dict with
    ``per_step`` (bytes per timestep, whole batch), ``per_step_per_sample`` (per_step / batch)
    and ``fixed`` (bytes independent of T), measured at the two lengths in ``steps``.
    onednn: for torch.nn on CPU, measure oneDNN's fused RNN instead of the ATen loop (give
    long ``steps`` then, e.g. (64, 128): its workspace grows in chunks).
    Raises RuntimeError for impl="tritonrnn" where its kernels would not run (CPU without
    TRITON_INTERPRET=1): the figure would silently be torch's.
    """
    name, extra = _CLASSES[mode]
    if proj_size:
        extra = dict(extra, proj_size=proj_size)
    lib = {"tritonrnn": tritonrnn, "torch.nn": nn}[impl]
    torch.manual_seed(0)
    module = getattr(lib, name)(input_size, hidden_size, num_layers=num_layers,
                                bidirectional=bidirectional, device=device, dtype=dtype, **extra)
    module.train()
    probe = torch.empty(0, device=device)
    if impl == "tritonrnn" and not runtime.triton_enabled(probe):
        raise RuntimeError("tritonrnn delegates to torch's native path on this device without "
                           "TRITON_INTERPRET=1; its saved bytes would be torch's")
    totals = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "TF32 acceleration on top of oneDNN")  # flags() says so
        with torch.backends.mkldnn.flags(enabled=onednn):
            for T in steps:
                x = torch.randn(T, batch, input_size, device=device, dtype=dtype,
                                requires_grad=True)
                totals.append(saved_bytes(module, x))
    (t0, t1), (b0, b1) = steps, totals
    per_step = (b1 - b0) / (t1 - t0)
    return {"per_step": per_step, "per_step_per_sample": per_step / batch,
            "fixed": b0 - per_step * t0}


CONFIGS = [  # (mode, input, hidden, batch, proj, bidirectional, layers)
    ("LSTM", 32, 64, 4, 0, False, 1),
    ("LSTM", 32, 64, 4, 16, False, 1),
    ("GRU", 32, 64, 4, 0, False, 1),
    ("RNN_TANH", 32, 64, 4, 0, False, 1),
    ("LSTM", 32, 64, 4, 0, True, 2),
]


def main():
    print("bytes saved for backward per timestep and sample (fp32); torch.nn on CPU: ATen loop, "
          "and oneDNN amortised over T=64..128")
    print(f"{'config':34s} {'tritonrnn':>10s} {'torch ATen':>10s} {'ratio':>6s} "
          f"{'torch oneDNN':>12s}")
    for mode, I, H, B, P, bidir, L in CONFIGS:
        kw = dict(num_layers=L, bidirectional=bidir, proj_size=P)
        ours = saved_bytes_per_step("tritonrnn", mode, I, H, B, **kw)["per_step_per_sample"]
        ref = saved_bytes_per_step("torch.nn", mode, I, H, B, **kw)["per_step_per_sample"]
        onednn = saved_bytes_per_step("torch.nn", mode, I, H, B, steps=(64, 128), onednn=True,
                                      **kw)["per_step_per_sample"]
        label = f"{mode} I={I} H={H}" + (f" P={P}" if P else "") + (" bidir" if bidir else "") \
            + (f" L={L}" if L > 1 else "")
        print(f"{label:34s} {ours:10.0f} {ref:10.0f} {ours / ref:6.2f} {onednn:12.0f}")


if __name__ == "__main__":
    main()
