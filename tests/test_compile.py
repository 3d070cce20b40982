"""The GPU-only kernel forms compile for H100 (sm_90) and fit its shared memory, with no GPU.

The split regime's persistent launch waits on a grid barrier, which the interpreter cannot
run; compiling it ahead of time is the check available here. Runs in a subprocess because
kernels defined under TRITON_INTERPRET=1 (as in this test session) cannot be compiled.
"""
import os
import subprocess
import sys
from pathlib import Path


def test_kernels_compile_for_sm90_within_shared_memory():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "bench.compile_check", "--arch", "90"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(" ok ") == 12, proc.stdout
