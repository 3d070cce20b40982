"""Test tiers, interpreter switch, poisoning and per-test seeding.

Two tiers, chosen by marker:
- default: kernels run on CPU tensors under Triton's interpreter (TRITON_INTERPRET=1). Set here
  when the variable is unset and no CUDA device is present; without the interpreter CPU tensors
  take torch's native path, so the tier would test nothing of ours and is skipped.
- ``gpu``: compiled kernels on CUDA tensors; skipped without CUDA, and skipped under the
  interpreter (which would run the "GPU" kernels on the host).
On a CUDA machine run both with two invocations: ``pytest`` (gpu tier) and
``TRITON_INTERPRET=1 pytest`` (default tier).
"""
import os
import zlib

import torch

# Triton reads TRITON_INTERPRET when a kernel is defined, and tritonrnn.kernels fixes its
# INTERPRET flag at import, so this must happen before anything imports triton or tritonrnn.
_CUDA = torch.cuda.is_available()
if "TRITON_INTERPRET" not in os.environ and not _CUDA:
    os.environ["TRITON_INTERPRET"] = "1"
# Kernel launchers fill fresh outputs with NaN (kernels/testing.py turns this on when it is
# imported with TRITONRNN_POISON=1): an element a kernel forgot to write then fails every
# comparison instead of passing by luck.
os.environ["TRITONRNN_POISON"] = "1"

import pytest  # noqa: E402

import tritonrnn.kernels.testing  # noqa: E402,F401  (switches poisoning on)

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "gpu: compiled kernels on a CUDA device; skipped without CUDA or under "
                   "TRITON_INTERPRET=1")
    config.addinivalue_line(
        "markers", "slow: large sizes that take tens of seconds under the interpreter; "
                   "deselect with -m 'not slow'")


def pytest_collection_modifyitems(config, items):
    no_cuda = pytest.mark.skip(reason="needs a CUDA GPU")
    interpreted = pytest.mark.skip(
        reason="TRITON_INTERPRET=1 runs kernels in the interpreter; unset it to test the "
               "compiled kernels on the GPU")
    no_interpreter = pytest.mark.skip(
        reason="default tier needs Triton's interpreter (TRITON_INTERPRET=1): without it CPU "
               "tensors take torch's native path")
    for item in items:
        if "gpu" in item.keywords:
            if not _CUDA:
                item.add_marker(no_cuda)
            elif INTERPRET:
                item.add_marker(interpreted)
        elif not INTERPRET:
            item.add_marker(no_interpreter)


@pytest.fixture(autouse=True)
def _seed(request):
    """Each test gets its own fixed seed (from its id), so it is reproducible alone or in any
    order, and no two tests draw the same numbers."""
    torch.manual_seed(zlib.crc32(request.node.nodeid.encode()))
