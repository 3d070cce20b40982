"""kernels/capabilities.py: what the installed Triton has, and the fallbacks used where it
lacks a feature (interpreted here; compiled for sm_90 with no GPU in a subprocess)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import triton
import triton.language as tl

from tests.capability_kernels import read_add_write
from tritonrnn.kernels import capabilities, config

ROOT = Path(__file__).resolve().parents[1]


def test_flags_say_what_this_triton_has():
    assert bool(capabilities.ATOMIC_LOAD_STORE.value) == hasattr(tl, "atomic_load")
    assert capabilities.TRITON_VERSION == capabilities.version_tuple(triton.__version__)
    if capabilities.TRITON_VERSION == (3, 6):  # the floor: no atomic load/store yet
        assert not capabilities.ATOMIC_LOAD_STORE
    if capabilities.TRITON_VERSION >= (3, 9):
        assert capabilities.ATOMIC_LOAD_STORE
    assert capabilities.version_tuple("3.10.0+git1234") == (3, 10)
    assert capabilities.version_tuple("3.6.0") == (3, 6)
    assert set(capabilities.summary()) == {"triton", "atomic_load_store", "cooperative_grid"}


def test_launch_options():
    assert capabilities.launch_options(False) == {}
    expected = {"launch_cooperative_grid": True} if capabilities.COOPERATIVE_GRID else {}
    assert capabilities.launch_options(True) == expected


@pytest.mark.parametrize("native", [False, True], ids=["fallback", "native"])
def test_atomic_helpers_round_trip(native):
    if not config.INTERPRET:
        pytest.skip("interpreter tier")
    if native and not capabilities.ATOMIC_LOAD_STORE:
        pytest.skip(f"triton {triton.__version__} has no tl.atomic_load/atomic_store")
    src = torch.arange(16, dtype=torch.int32) * 3
    dst = torch.full((16,), -7, dtype=torch.int32)
    read_add_write[(1,)](src, dst, 11, native)
    assert dst[:11].tolist() == (src[:11] + 1).tolist()
    assert dst[11:].tolist() == [-7] * 5  # masked lanes untouched


def test_atomic_helpers_compile_for_sm90():
    """The fallback compiles to atomic read-modify-writes; the native form (where present) to
    plain strong loads and stores, no atomics."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-m", "tests.capability_kernels"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ops = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "ATOMG" in ops["False"]
    if capabilities.ATOMIC_LOAD_STORE:
        assert "ATOMG" not in ops["True"] and {"LDG", "STG"} <= set(ops["True"])
    else:
        assert "True" not in ops
