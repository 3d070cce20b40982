"""Small demo: a tritonrnn.LSTM against torch.nn.LSTM on the same weights.

    python -m bench.demo

With CUDA it runs the Triton kernels on the GPU. Without CUDA it turns Triton's interpreter on
(TRITON_INTERPRET=1, which must happen before triton or tritonrnn is imported) and runs the
same kernels on CPU tensors: a correctness check, not a speed measure. It times nothing.
"""
import os

import torch

CUDA = torch.cuda.is_available()
if not CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import tritonrnn  # noqa: E402  (after TRITON_INTERPRET is set)
from tritonrnn import runtime  # noqa: E402


def main():
    device = "cuda" if CUDA else "cpu"
    torch.manual_seed(0)
    T, B, I, H = 12, 3, 16, 32  # time, batch, input, hidden
    ref = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True, device=device)
    ours = tritonrnn.LSTM(I, H, num_layers=2, bidirectional=True, device=device)
    ours.load_state_dict(ref.state_dict())

    x = torch.randn(T, B, I, device=device)
    x_ref = x.clone().requires_grad_(True)
    x_ours = x.clone().requires_grad_(True)
    y_ref, (h_ref, c_ref) = ref(x_ref)
    y_ours, (h_ours, c_ours) = ours(x_ours)
    (y_ref.sum() + h_ref.sum() + c_ref.sum()).backward()
    (y_ours.sum() + h_ours.sum() + c_ours.sum()).backward()

    if CUDA:
        where = f"CUDA ({torch.cuda.get_device_name()}): Triton kernels vs torch.nn.LSTM (cuDNN)"
    elif runtime.triton_enabled(x):
        where = "CPU interpreter — not a speed measure: Triton kernels vs torch.nn.LSTM"
    else:
        where = "CPU, TRITON_INTERPRET=0: PyTorch's native LSTM on both sides"
    print(f"tritonrnn {tritonrnn.__version__}, torch {torch.__version__}")
    print(where)
    print(f"LSTM(input={I}, hidden={H}, layers=2, bidirectional), T={T}, B={B}, float32")
    diffs = {
        "output": (y_ours - y_ref),
        "h_n": (h_ours - h_ref),
        "c_n": (c_ours - c_ref),
        "grad input": (x_ours.grad - x_ref.grad),
    }
    worst_param = max(
        (p.grad - q.grad).abs().max().item()
        for p, q in zip(ours.parameters(), ref.parameters())
    )
    for name, d in diffs.items():
        print(f"  max |difference| {name:<12} {d.abs().max().item():.2e}")
    print(f"  max |difference| {'grad weights':<12} {worst_param:.2e}")


if __name__ == "__main__":
    main()
