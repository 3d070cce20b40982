"""Traffic report: launches per sequence and global-memory bytes per timestep of the forward
recurrence, against the lower bound (read the step's input projection, write h).

CPU interpreter — not a speed measure. Run: python -m bench.traffic
"""
import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import torch  # noqa: E402

from tritonrnn.kernels import cells, config, forward, testing  # noqa: E402


def measure(cell, H, B, T, P=0, training=False, dtype=torch.float16):
    """(launches, Traffic) of one forward recurrence, one direction, no lengths."""
    G, K = cells.lookup(cell).gates, P or H
    xp = torch.randn(T, B, 1, G, H, dtype=dtype)
    whh = torch.randn(1, G * H, K, dtype=dtype)
    whr = torch.randn(1, K, H, dtype=dtype) if P else None
    with testing.count_launches() as launched, testing.count_traffic() as moved:
        forward(xp, whh, None, whr, None, None, None, cell, training)
    return sum(launched.values()), moved


def per_step(cell, H, B, P=0, training=False, dtype=torch.float16, T=(3, 6)):
    """Launches at two lengths, bytes per step (difference of the two runs, so one-off weight
    loads drop out) and the lower bound per step."""
    (n1, a), (n2, b) = (measure(cell, H, B, t, P, training, dtype) for t in T)
    elt = torch.empty((), dtype=dtype).element_size()
    kind = cells.lookup(cell)
    G, K = kind.gates, P or H
    bound = B * (G * H + K) * elt
    if training:  # activations (and c) backward needs
        bound += B * (kind.saved + kind.has_c) * H * elt
    return (n1, n2), (b.total - a.total) / (T[1] - T[0]), bound


def main():
    print("CPU interpreter — not a speed measure (bytes counted from the kernels' loads/stores)")
    print(f"{'cell':9}{'H':>6}{'P':>4}{'mode':>10}{'regime':>8}{'launches T=3/6':>16}"
          f"{'bytes/step':>12}{'bound':>10}{'ratio':>7}")
    for cell, H, P in [("LSTM", 64, 0), ("LSTM", 128, 0), ("LSTM", 128, 32), ("GRU", 128, 0),
                       ("RNN_TANH", 128, 0), ("LSTM", 256, 0)]:
        for training in (False, True):
            plan = config.plan(cells.lookup(cell).code, H, P or H, torch.float16)
            regime = "split" if plan.split else "fused"
            n, per, bound = per_step(cell, H, 16, P, training)
            print(f"{cell:9}{H:>6}{P:>4}{'train' if training else 'infer':>10}{regime:>8}"
                  f"{f'{n[0]}/{n[1]}':>16}{per:>12.0f}{bound:>10}{per / bound:>7.2f}")


if __name__ == "__main__":
    main()
