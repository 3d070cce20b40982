"""The library apart from its tooling: importing tritonrnn and running a layer (forward and
backward, on the kernels) loads nothing of the compile report, the tuner, the benchmarks or
the test hooks, and no plotting library; the hooks (launch counting, poisoning) stay off."""
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
import torch
import tritonrnn
lstm = tritonrnn.LSTM(3, 5)
y, (h, c) = lstm(torch.randn(4, 2, 3))
(y.sum() + h.sum() + c.sum()).backward()
assert lstm.weight_hh_l0.grad is not None
from tritonrnn.kernels import launches, memory
assert launches.counter is None, "launches counted without count_launches()"
assert not memory.poison, "outputs poisoned outside the tests"
tooling = ("bench", "tritonrnn.kernels.compile_specs", "tritonrnn.kernels.testing",
           "matplotlib")
print(sorted(m for m in sys.modules if m.split(".")[0] in ("bench", "matplotlib")
             or m in tooling))
"""


def test_runtime_loads_no_tooling():
    # A fresh interpreter without the test session's TRITONRNN_POISON (it belongs to the tests).
    env = {k: v for k, v in os.environ.items() if k != "TRITONRNN_POISON"}
    env["TRITON_INTERPRET"] = "1"
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout
